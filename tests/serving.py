"""Real ``shipper-sim serve`` processes for the concurrency, durability and
production tests, and a webhook receiver that counts what it is sent.

A :class:`SimServer` runs in a session of its own (``start_new_session``), so
every process it starts (the gunicorn arbiter, its workers, the background
process, multiprocessing's resource tracker) carries that session id. The
tests find them through ``/proc`` to prove that none is left behind, and
``kill -9`` them all at once to simulate a crash.

Everything here is bounded: every wait has a timeout, every request one too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

# The demo client of the built-in fixtures, as conftest names it. Repeated
# here rather than imported so that a client process spawned by a test
# starts without importing Flask and the simulator.
DEMO_ID = 112233
DEMO_KEY = "demo-key-toko-contoh"
WAREHOUSE = "WH-TGR04"

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 30.0
START_TIMEOUT = 40.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- processes, seen through /proc ------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[3])


def session_processes(session_id: int) -> list[int]:
    """Live (not zombie) processes of one session."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None and stat[1] == session_id and stat[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


class SimServer:
    """One ``shipper-sim serve`` on 127.0.0.1, started and stopped by a test."""

    def __init__(
        self,
        *options: str,
        db: str | Path | None = None,
        workers: int = 1,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.options = list(options)
        self.env = {**os.environ, **env} if env else None
        self.db = str(db) if db is not None else None
        self.workers = workers
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(
            prefix="shipper-sim-test-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self._log.close()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def command(self) -> list[str]:
        command = [sys.executable, "-m", "simulator", "serve", "--host", HOST]
        command += ["--port", str(self.port), *self.options]
        if self.db:
            command += ["--db", self.db]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        return command

    def start(self, timeout: float = START_TIMEOUT) -> SimServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"shipper-sim exited with {self.process.returncode}:\n"
                    + self.output()
                )
            try:
                if requests.get(self.url + "/_sim/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(
            f"shipper-sim not ready after {timeout}s:\n{self.output()}"
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def processes(self) -> list[int]:
        """Every live process this server started (its session)."""
        return session_processes(self.process.pid) if self.process else []

    def signal(self, signum: int, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``signum`` to the main process; answers its exit code."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"shipper-sim ignored signal {signum} for {timeout}s:\n" + self.output()
            ) from None

    def stop(self) -> int:
        return self.signal(signal.SIGTERM)

    def kill(self) -> None:
        """``kill -9`` of every process of the server, as a crash would."""
        if self.process is None:
            return
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=STOP_TIMEOUT)
        session = self.process.pid
        wait_for(lambda: not session_processes(session), STOP_TIMEOUT, "the kill")

    def close(self) -> None:
        """Leave nothing running, whatever state the test left it in."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.stop()
            except AssertionError:
                pass
        if self.process is not None and self.processes():
            self.kill()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- Shipper's API and the control API over HTTP ----------------------------------


class Api:
    """One client's calls to a running simulator, over real HTTP."""

    def __init__(self, base_url: str, api_key: str = DEMO_KEY) -> None:
        self.base = base_url
        self.api_key = api_key

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"x-api-key": self.api_key, **kwargs.pop("headers", {})}
        return requests.request(
            method,
            self.base + "/v3/fulfillment" + path,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
            **kwargs,
        )

    def create(self, kind: str, body: dict) -> requests.Response:
        return self.call("POST", f"/outbound/{kind}", json=body)

    def cancel(self, kind: str, order_no: str) -> requests.Response:
        cancellation = {
            "order_no": order_no,
            "warehouse_id": WAREHOUSE,
            "cancel_reason": "customer changed mind",
        }
        return self.call(
            "PATCH",
            f"/outbound/{kind}/cancel",
            json={"data": {"cancellation": cancellation}},
        )

    def detail(self, kind: str, order_no: str) -> requests.Response:
        return self.call("GET", f"/warehouse/{WAREHOUSE}/outbound/{kind}/{order_no}")

    def outbound(self, kind: str, order_no: str) -> dict:
        response = self.detail(kind, order_no)
        assert response.status_code == 200, (order_no, response.text)
        return response.json()["data"]["outbound"]

    def stock_qty(self, sku: str, stock_type: str) -> int:
        response = self.call(
            "GET",
            "/inventory/stock",
            params={"warehouse_code": WAREHOUSE, "stock_type": stock_type, "sku": sku},
        )
        assert response.status_code == 200, response.text
        (row,) = response.json()["data"]["stock"]
        return row["qty"]

    # -- the control API
    def sim(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, self.base + "/_sim" + path, timeout=REQUEST_TIMEOUT, **kwargs
        )

    def advance(self, order_no: str, **body: object) -> requests.Response:
        return self.sim("POST", f"/orders/{WAREHOUSE}/{order_no}/advance", json=body)

    def set_stock(self, sku: str, qty: int) -> None:
        response = self.sim(
            "PUT",
            "/stock",
            json={
                "client_id": DEMO_ID,
                "warehouse_id": WAREHOUSE,
                "sku": sku,
                "qty": qty,
                "sku_descr": f"test stock {sku}",
            },
        )
        assert response.status_code == 200, response.text

    def sim_stock(self, sku: str) -> dict:
        response = self.sim("GET", "/stock", params={"client_id": DEMO_ID})
        assert response.status_code == 200, response.text
        (row,) = [
            r
            for r in response.json()["stock"]
            if r["sku"] == sku and r["warehouse_id"] == WAREHOUSE
        ]
        return row

    def point_webhooks(self, url: str) -> None:
        response = self.sim("PATCH", f"/clients/{DEMO_ID}", json={"webhook_url": url})
        assert response.status_code == 200, response.text

    def deliveries(self, **query: object) -> list[dict]:
        response = self.sim("GET", "/webhooks", params={"limit": 100_000, **query})
        assert response.status_code == 200, response.text
        return response.json()["webhooks"]


def error_code(response: requests.Response) -> int | None:
    try:
        return response.json()["metadata"]["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


# -- running calls at the same moment -----------------------------------------------


def at_once(calls: Iterable[Callable[[], object]], timeout: float = 60.0) -> list:
    """Run every call in its own thread, all released by one barrier.

    Answers the results in the order of ``calls``; a call that raised
    answers its exception.
    """
    calls = list(calls)
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait(timeout=timeout)
        try:
            return call()
        except Exception as exc:  # the test decides what an error means
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, c) for c in calls]
        return [f.result(timeout=timeout) for f in futures]


def create_burst(base_url: str, kind: str, body: dict, count: int, start, results):
    """In a client process: ``count`` creates from threads once ``start`` opens.

    Puts ``(status, error code)`` per request on ``results``. A top-level
    function, so that a spawned process can run it; ``start`` is a barrier
    shared with the test, which waits at it too.
    """
    api = Api(base_url)
    start.wait(timeout=60)
    answers = at_once([lambda: api.create(kind, body) for _ in range(count)])
    results.put(
        [
            (r.status_code, error_code(r))
            if isinstance(r, requests.Response)
            else (None, repr(r))
            for r in answers
        ]
    )


# -- a receiver that counts deliveries ------------------------------------------------


def webhook_key(body: dict) -> tuple[str, str, str]:
    """(order number, event, status code) of one webhook body, as a client reads it."""
    if "group_key" in body:
        stored = json.loads(body["items"][0]["payload"])
        return stored.get("so_number") or stored["doc_no"], "so_created", ""
    if "pgi_date" in body:
        return body["so_reference_a"], "pgi", ""
    return body["order_no"], "status", body["status_code"]


class CountingReceiver:
    """A webhook receiver on 127.0.0.1 that counts each (order, event, code).

    ``CountingReceiver.down()`` holds a port without listening on it, so
    deliveries are refused, until :meth:`up` starts serving there.
    """

    def __init__(self, port: int | None = None) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.arrivals: list[tuple[str, str, str]] = []
        self._changed = threading.Condition()
        self._placeholder: socket.socket | None = None
        self._server = None  # a BackgroundServer, once up
        self.port = port or 0
        if port is None:
            self.up()

    @classmethod
    def down(cls) -> CountingReceiver:
        placeholder = socket.socket()
        placeholder.bind((HOST, 0))  # bound, not listening: connections refused
        receiver = cls(port=placeholder.getsockname()[1])
        receiver._placeholder = placeholder
        return receiver

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/webhook"

    @property
    def total(self) -> int:
        with self._changed:
            return len(self.arrivals)

    def up(self) -> CountingReceiver:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        # Imported here: a client process spawned from this module starts
        # without Flask and the simulator (see DEMO_ID above).
        from simulator.serving import BackgroundServer

        server = ThreadingHTTPServer((HOST, self.port), self._handler())
        server.daemon_threads = True
        self._server = BackgroundServer(server, name="counting-receiver").start()
        self.port = self._server.port
        return self

    def wait_total(self, count: int, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(
                lambda: len(self.arrivals) >= count, timeout=timeout
            ):
                raise AssertionError(
                    f"expected {count} webhooks within {timeout}s, "
                    f"got {len(self.arrivals)}"
                )

    def codes_in_arrival_order(self, order_no: str) -> list[str]:
        with self._changed:
            return [
                k[2] for k in self.arrivals if k[0] == order_no and k[1] == "status"
            ]

    def close(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
        if self._server is not None:
            self._server.stop()

    def _record(self, key: tuple[str, str, str]) -> None:
        with self._changed:
            self.counts[key] += 1
            self.arrivals.append(key)
            self._changed.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length") or 0)
                receiver._record(webhook_key(json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
