"""The app factory: ``create_app(config)`` builds one simulator.

Each app has its own store, clock, backend and workers, so a test (or a
second simulator in the same process) gets clean state without a restart.
"""

from __future__ import annotations

import hmac
import importlib.util
import itertools
import json
import logging
import os
import re
import sqlite3
import time

from flask import Flask, current_app, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from . import envelope, jsontext
from .backend import Backend
from .clock import Clock
from .config import Config
from .errors import ShipperError
from .faults import Faults
from .fixtures import load_fixtures
from .journal import Journal
from .store import Checkpointer, Store
from .webhooks import Dispatcher, Outbox
from .workers import Workers

log = logging.getLogger("simulator.http")

# Not on every system (not on Windows): there, one process only, with its
# journal spool in memory.
HAS_FLOCK = importlib.util.find_spec("fcntl") is not None

SHIPPER_PREFIX = "/v3/"


class RequestIds:
    """32 hex digits, unique per request: a random half per process, a count.

    As unique as a random UUID for this purpose, without asking the system
    for random bytes on every request. A forked process (a gunicorn worker)
    draws its own random half.
    """

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


request_ids = RequestIds()


class Simulator:
    """The parts of one running simulator, shared by every route."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = Clock()
        if config.freeze_at is not None:
            self.clock.freeze(config.freeze_at)
        self.store = Store(config.db_path, shared=config.multi_process)
        # With a file, the process that runs the background loop copies its
        # WAL back (the background process, under --workers).
        self.checkpointer: Checkpointer | None = None
        if config.db_path and config.multi_process:
            self.store.leave_checkpoints_to_background()
        self.backend = Backend(
            config, self.store, self.clock, load_fixtures(config.fixtures_dir)
        )
        self.outbox = Outbox(self.store, self.clock, config)
        self.faults = Faults()
        self.dispatcher = Dispatcher(self.outbox, self.clock, config, self.faults)
        # With a file, every process's spool is a file beside it, which any
        # process reading the journal takes in (where files can be locked).
        spool = f"{config.db_path}-requests" if config.db_path and HAS_FLOCK else None
        self.journal = Journal(self.store, config.journal_size, spool)
        self.workers = Workers(
            self.backend,
            self.dispatcher,
            self.clock,
            config.poll_interval,
            watch_other_processes=config.multi_process,
        )

    def start(self) -> None:
        self.workers.start()
        self.journal.start()
        if self.config.db_path:
            self.checkpointer = Checkpointer(self.store)
            self.checkpointer.start()

    def stop(self) -> None:
        self.workers.stop()
        self.journal.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def reset(self, client_id: int | None = None) -> dict:
        """Drop orders, deliveries and journal (one client's, or everyone's).

        What is still spooled for the journal is taken in first, in the same
        transaction, so that it goes too.
        """
        with self.store.transaction():
            self.journal.take_spooled()
            return self.backend.reset(client_id)

    def remove_client(self, client_id: int) -> dict:
        with self.store.transaction():
            self.journal.take_spooled()
            return self.backend.remove_client(client_id)

    # -- shapes shared by the control API and the dashboard
    def detail_envelope(self, path: str, outbound: dict) -> dict:
        return envelope.success(path, {"outbound": outbound})

    def success_envelope(self, path: str) -> dict:
        return envelope.success(path)

    def error_envelope(self, path: str, exc: ShipperError) -> tuple[dict, int]:
        return envelope.error(path, exc.code)

    def timeline(self, order: dict) -> dict:
        """One order: its view, every status reached, every webhook sent.

        All of it as of one moment (the journal's entry aside, which taking
        in what is spooled may write).
        """
        created_by = None
        if order["request_id"]:
            created_by = self.journal.find(order["request_id"])
        with self.store.snapshot():
            view = self.backend.order_view(order["id"])  # 404 if gone meanwhile
            return {
                "order": view,
                "kind": order["kind"],
                "client_id": order["client_id"],
                "group_key": order["group_key"],
                "events": self.store.rows(
                    "SELECT time, code, name, status, note FROM order_events "
                    "WHERE order_id = ? ORDER BY id",
                    (order["id"],),
                ),
                "webhooks": self.outbox.list(order_id=order["id"]),
                "lines": self.backend.order_lines(order["id"]),
                "created_by": created_by,
            }


def create_app(config: Config | None = None) -> Flask:
    config = config or Config()
    app = Flask(__name__)
    app.json = _JSONProvider(app)
    # "//" in a path is a 404 in the envelope, not an HTML redirect to "/".
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes

    simulator = Simulator(config)
    app.extensions["shipper_sim"] = simulator

    from . import api, control, dashboard

    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(dashboard.bp)
    _register_hooks(app, simulator)

    if config.start_workers:
        simulator.start()
    return app


class _JSONProvider(DefaultJSONProvider):
    """Flask's JSON, keys in the order given and characters as they are;
    compact answers (all but in debug mode) written by orjson if it can."""

    sort_keys = False
    ensure_ascii = False

    def dumps(self, obj: object, **kwargs: object) -> str:
        if kwargs == _COMPACT:
            text = jsontext.fast_dumps(obj)
            if text is not jsontext.SLOW:
                return text
        return super().dumps(obj, **kwargs)


_COMPACT = {"separators": (",", ":")}


def _register_hooks(app: Flask, simulator: Simulator) -> None:
    @app.before_request
    def start_request():
        state = g._get_current_object()
        state.request_id = request_ids.next()
        state.started = time.perf_counter()
        if simulator.config.admin_token and request.path.startswith("/_sim"):
            return _require_admin_token(simulator.config.admin_token)
        return None

    @app.after_request
    def finish_request(response):
        # Read often below: the objects behind the proxies, looked up once.
        state, req = g._get_current_object(), request._get_current_object()
        response.headers["x-request-id"] = state.get("request_id") or request_ids.next()
        if state.get("set_admin_cookie"):
            response.set_cookie(
                ADMIN_COOKIE, state.set_admin_cookie, httponly=True, samesite="Strict"
            )
        reason = state.get("sim_reason")
        if reason:
            # Header values must be latin-1, on one line and free of control
            # characters (a reason can quote a client's "\r" or "\x00"); a
            # character outside latin-1 is written as its escape (\u0661).
            safe = reason.encode("latin-1", "backslashreplace").decode("latin-1")
            safe = re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", safe)
            response.headers["x-sim-error"] = safe[:500]
        if req.path.startswith(SHIPPER_PREFIX):
            _journal(simulator, req, state, response, reason)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _http_error(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        g.sim_reason = f"the simulator failed: {type(exc).__name__}: {exc}"
        if isinstance(exc, sqlite3.OperationalError):
            g.sim_reason += f"; {simulator.store.space_hint()}"
        return _envelope_or_json(803, 500)


ADMIN_COOKIE = "shipper_sim_admin"


def _require_admin_token(token: str):
    """The control API and dashboard of a widely bound simulator need a token."""
    if request.path == "/_sim/health":
        return None
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    given = [
        request.headers.get("x-admin-token", ""),
        bearer,
        request.cookies.get(ADMIN_COOKIE, ""),
        request.args.get("token", ""),
    ]
    if any(hmac.compare_digest(t, token) for t in given if t):
        if request.args.get("token"):
            # Opened once with ?token=: the page's own calls carry a cookie.
            g.set_admin_cookie = token
        return None
    return {
        "error": "this simulator needs its admin token: send it as the "
        "x-admin-token header (or open the dashboard with ?token=...)"
    }, 401


def _http_error(exc: HTTPException):
    status = exc.code or 500
    if status == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        g.sim_reason = f"body: larger than the {limit:,} bytes the simulator accepts"
        return _envelope_or_json(810, 413)
    if status in (404, 405):
        if request.path.startswith(SHIPPER_PREFIX) and not _has_valid_key():
            g.sim_reason = "x-api-key: missing or unknown"
            return envelope.unauthorized(request.method, request.path), 401
        g.sim_reason = f"no route {request.method} {request.path}"
        return _envelope_or_json(10004, 404)
    original = getattr(exc, "original_exception", None)
    if status >= 500 and original is not None:  # raised after the handler
        g.sim_reason = f"the simulator failed: {type(original).__name__}: {original}"
    else:
        g.sim_reason = exc.description or exc.name
    return _envelope_or_json(810 if status < 500 else 803, status)


def _has_valid_key() -> bool:
    from flask import current_app

    key = request.headers.get("x-api-key", "")
    backend = current_app.extensions["shipper_sim"].backend
    return bool(key) and backend.client_by_key(key) is not None


def _envelope_or_json(code: int, status: int):
    """Shipper's envelope on Shipper's paths, plain JSON on the control API."""
    query = request.query_string.decode("latin-1")
    path = request.path + (f"?{query}" if query else "")
    if request.path.startswith("/_sim/"):
        return {"error": g.get("sim_reason", "")}, status
    return envelope.error(path, code, status)


def _journal(simulator: Simulator, req, state, response, reason: str | None) -> None:
    """Journal the request (``req``, with ``state``: flask's request and g)."""
    status = response.status_code
    body_text = response.get_data(as_text=True) if response.is_json else ""
    code = _error_code(body_text) if body_text and status >= 400 else None
    query = req.query_string.decode("latin-1")
    started = state.get("started")
    duration_ms = (time.perf_counter() - started) * 1e3 if started else 0.0
    try:
        unreadable = state.get("body_unreadable")
        request_text = "" if unreadable else req.get_data(cache=True, as_text=True)
    except Exception:  # a body too large to read is not journalled
        request_text = ""
    client = state.get("client")
    entry = {
        "time": simulator.clock.now(),
        "request_id": state.get("request_id", ""),
        "client_id": client["client_id"] if client else None,
        "method": req.method,
        "path": req.path + (f"?{query}" if query else ""),
        "status": status,
        "code": code,
        "reason": reason or "",
        "request_body": request_text,
        "response_body": body_text,
        "duration_ms": round(duration_ms, 2),
    }
    try:
        simulator.journal.record(entry)
    except (sqlite3.Error, OSError) as exc:  # the answer still goes; the log says why
        log.error("could not journal %s %s: %s", req.method, req.path, exc)
    if reason:
        log.warning("%s %s -> %s %s: %s", req.method, req.path, status, code, reason)
    else:
        log.info("%s %s -> %s (%.1f ms)", req.method, req.path, status, duration_ms)


def _error_code(body_text: str) -> int | None:
    """The Shipper error code an error answer carries, if any."""
    try:
        md = json.loads(body_text).get("metadata", {})
        errors = md.get("errors") or ([md["error"]] if "error" in md else [])
        return errors[0]["code"] if errors else None
    except (ValueError, AttributeError, KeyError, IndexError, TypeError):
        return None
