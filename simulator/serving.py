"""The development server's request handler, which answers in JSON too.

werkzeug's server (``http.server`` underneath) refuses some requests itself,
before any WSGI app sees them: a request line over 64 KB (414), a header line
over 64 KB or more than 100 headers (431), a malformed request line (400),
HTTP/2 (505). Its answer is an HTML page. :class:`ShipperRequestHandler`
answers those as the app would: Shipper's envelope (code 810) on ``/v3``
paths, ``{"error": ...}`` elsewhere, with the reason in ``x-sim-error``.

It also bounds every read from and write to a client's socket
(:attr:`ShipperRequestHandler.timeout`), so a client that promises a body it
never sends holds a thread for that long, not forever; and it sends the
server's per-request line to the ``simulator.http`` logger at INFO (shown
with ``-v``) instead of printing it to stderr.

:class:`BackgroundServer` serves any of these servers (or an ``http.server``
one) from a daemon thread, for the test helpers, the scenario runner and the
demo, which all run a simulator or a webhook receiver next to their own work.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import selectors
import socket
import threading
import uuid
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from . import envelope
from .app import SHIPPER_PREFIX
from .errors import body_timed_out

# The same logger as the app's own request lines.
log = logging.getLogger("simulator.http")

# Seconds a client may leave its socket silent in the middle of a request.
READ_TIMEOUT = 30.0

# http.client's limits, which http.server applies while reading a request.
MAX_LINE = 65536
MAX_HEADERS = 100

# The path echoed in an error body: a 414's request line runs to 64 KB.
MAX_ECHOED_PATH = 2048

# How often a background server looks for a stop request: stop() waits for
# the next look.
STOP_POLL = 0.05

# After a refusal, what the client is still sending is read and dropped so
# that closing the socket does not reset the connection before the client
# has read the answer. At most this many reads of 64 KB.
MAX_DISCARD_READS = 256

_CONTROL_CHARS = str.maketrans(
    {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
)


class TimedInput(io.RawIOBase):
    """A request body whose socket timeout answers 408 instead of failing.

    A read that times out raises :class:`RequestTimeout`, which the app turns
    into its envelope. Every later read raises it at once, so the request
    journal, which reads the body again, does not wait a second time.
    """

    def __init__(self, stream: io.RawIOBase, timeout: float) -> None:
        super().__init__()
        self._stream = stream
        self._timeout = timeout
        self._timed_out = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        return self._guard(self._stream.readinto, buffer)

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guard(self._stream.readline, size)

    def _guard(self, read, argument):
        if not self._timed_out:
            try:
                return read(argument)
            except TimeoutError:
                self._timed_out = True
        raise body_timed_out(self._timeout)


class ShipperRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with JSON refusals, a read timeout and quiet logs.

    Set ``timeout`` on a subclass (or pass ``read_timeout`` to
    :func:`make_simulator_server`) for another bound; ``None`` waits forever.
    """

    timeout: float | None = READ_TIMEOUT

    # What werkzeug picks for a threaded server; every answer still closes
    # the connection.
    protocol_version = "HTTP/1.1"

    _refusing = False

    def make_environ(self):
        environ = super().make_environ()
        if self.timeout is not None:
            environ["wsgi.input"] = TimedInput(environ["wsgi.input"], self.timeout)
        return environ

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # "GET /": no headers, no status
            self.send_error(400, "HTTP/0.9 requests are not served")
            return False
        return True

    def send_error(
        self, code: int, message: str | None = None, explain: str | None = None
    ) -> None:
        """Refuse a request the server could not read, in JSON."""
        # A request line too broken to name its version would get an answer
        # without a status line or headers (HTTP/0.9); answer in HTTP/1.1.
        self.request_version = "HTTP/1.1"
        status = int(code)
        path = self._request_path()
        reason = _refusal_reason(status, message, explain)
        log.warning(
            "%s %s -> %s: %s",
            self.command or "-",
            _for_log(path),
            status,
            reason,
        )

        body = json.dumps(
            self._error_body(path, status, reason),
            ensure_ascii=False,
            separators=(",", ":"),
        )
        data = body.encode("utf-8")
        self._refusing = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", uuid.uuid4().hex)
        self.send_header("x-sim-error", _header_safe(reason))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._discard_unread()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A refusal logs its own line; the app logs every /v3 request.
        path = getattr(self, "path", "")
        if self._refusing or path.startswith(SHIPPER_PREFIX):
            return
        log.info("%s %s -> %s", self.command, _for_log(path), code)

    def log(self, type: str, message: str, *args) -> None:
        # werkzeug's other lines (a timed-out request, a TLS error) are the
        # client's doing, not the simulator's: warnings, not errors.
        level = logging.INFO if type == "info" else logging.WARNING
        log.log(level, "%s: " + message, self.address_string(), *args)

    # -- helpers

    def _request_path(self) -> str:
        """The path and query of the request line, even when it was refused."""
        words = getattr(self, "raw_requestline", b"").split(None, 2)
        target = words[1].decode("latin-1") if len(words) >= 2 else ""
        try:
            parts = urlsplit(target)
        except ValueError:
            return target[:MAX_ECHOED_PATH]
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return path[:MAX_ECHOED_PATH]

    def _error_body(self, path: str, status: int, reason: str) -> dict:
        if not path.startswith(SHIPPER_PREFIX):
            return {"error": reason}
        app = getattr(self.server, "app", None)
        # In the app's context the timestamp is the simulator's clock.
        context = (
            app.app_context() if isinstance(app, Flask) else contextlib.nullcontext()
        )
        with context:
            body, _ = envelope.error(path, 810 if status < 500 else 803, status)
        return body

    def _discard_unread(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            return
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            for _ in range(MAX_DISCARD_READS):
                if not selector.select(timeout=0.05):
                    return
                try:
                    if not self.connection.recv(65536):
                        return
                except OSError:
                    return


def _refusal_reason(status: int, message: str | None, explain: str | None) -> str:
    """The sentence for ``x-sim-error``: what was refused and what the limit is."""
    if status == 414:
        return f"request line: longer than {MAX_LINE} bytes, the most the server reads"
    if status == 431 and message == "Line too long":
        return (
            f"headers: a header line is longer than {MAX_LINE} bytes, "
            "the most the server reads"
        )
    if status == 431:
        return f"headers: more than {MAX_HEADERS}, the most the server reads"
    detail = message or envelope.reason_phrase(status)
    return f"request line: {detail}" + (f" ({explain})" if explain else "")


def _for_log(path: str) -> str:
    """A path for one log line: control characters escaped, 200 at most."""
    shown = (path or "-").translate(_CONTROL_CHARS)
    return shown if len(shown) <= 200 else f"{shown[:200]}... ({len(path)} chars)"


def _header_safe(text: str) -> str:
    """One latin-1 line without control characters, as the app's own rule."""
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", safe)[:500]


def make_simulator_server(
    host: str,
    port: int,
    app,
    fd: int | None = None,
    *,
    read_timeout: float | None = None,
) -> SimulatorServer:
    """A threaded werkzeug server for ``app`` with :class:`ShipperRequestHandler`.

    Give ``fd``, a socket bound and listening already, to report a busy port
    yourself: werkzeug exits the process when it cannot bind. ``read_timeout``
    replaces the handler's default of :data:`READ_TIMEOUT` seconds.
    """
    handler: type[ShipperRequestHandler] = ShipperRequestHandler
    if read_timeout is not None:
        if read_timeout <= 0:
            raise ValueError(f"read_timeout must be above 0 s, got {read_timeout}")
        handler = type(
            "ShipperRequestHandler", (ShipperRequestHandler,), {"timeout": read_timeout}
        )
    return SimulatorServer(host, port, app, handler, fd=fd)


class SimulatorServer(ThreadedWSGIServer):
    """werkzeug's threaded server, able to wait for the requests it is answering.

    Once ``serve_forever`` has returned, :meth:`finish_requests` lets the
    answers under way go out before the caller closes the store under them.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._answering = 0
        self._idle = threading.Condition()

    def process_request(self, request, client_address) -> None:
        with self._idle:  # counted before its thread starts: never missed
            self._answering += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._answering -= 1
            self._idle.notify_all()

    def finish_requests(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds; answers how many are still going."""
        with self._idle:
            self._idle.wait_for(lambda: self._answering == 0, timeout)
            return self._answering


class BackgroundServer:
    """A bound server's ``serve_forever`` in a daemon thread, until :meth:`stop`.

    ``server`` is any :mod:`socketserver` server, bound already: werkzeug's
    (from :func:`make_simulator_server` or ``make_server``) or an
    ``http.server`` one. The thread is named ``{name}-{port}``. :meth:`stop`
    closes the socket even when the server was never started.
    """

    def __init__(self, server, *, name: str, poll_interval: float = STOP_POLL) -> None:
        self.server = server
        self.name = name
        self.poll_interval = poll_interval
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.server.server_address[0]

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=f"{self.name}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (a request in progress runs on) and close the socket."""
        # shutdown() waits for serve_forever to notice, so only a started
        # server is asked to.
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=timeout)
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
