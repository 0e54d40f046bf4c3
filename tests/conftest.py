"""Shared fixtures: a fresh simulator per test, Shipper's client, a receiver.

``app`` is a simulator without background threads (nothing moves or is sent
unless a test says so); ``live_app`` runs its workers with fast retries and
delivers webhooks to ``receiver``, a real HTTP server on 127.0.0.1 that
records every request and answers as a test tells it to.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from simulator.app import Simulator, create_app
from simulator.config import Config
from simulator.serving import BackgroundServer

# Shipper's documented sample requests, as the README's tour uses them.
SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "samples"

DEMO_ID = 112233
DEMO_KEY = "demo-key-toko-contoh"
SECOND_ID = 445566
SECOND_KEY = "demo-key-second-client"
WAREHOUSE = "WH-TGR04"

# Fast enough that a whole retry ladder runs in a fraction of a second.
FAST_RETRIES = (0.05, 0.05, 0.05)
WEBHOOK_TIMEOUT = 0.5


# -- request bodies -------------------------------------------------------------


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def b2c_body(
    so_number: str = "SHOPEE-2207-000123",
    lines: list[tuple[str, int]] | None = None,
    **fields: object,
) -> dict:
    """The B2C sample, renamed and with other lines or fields if asked."""
    body = sample("create_b2c_request.json")
    body["so_number"] = so_number
    if lines is not None:
        body["details"] = [
            {"sku": sku, "qty_ordered": qty, "price": 1000} for sku, qty in lines
        ]
    body.update(fields)
    return body


def b2b_body(
    doc_no: str = "ERP-SO-0042",
    lines: list[tuple[str, int]] | None = None,
    **fields: object,
) -> dict:
    """The B2B sample, renamed and with other lines or fields if asked."""
    body = sample("create_b2b_request.json")
    body["doc_no"] = doc_no
    if lines is not None:
        body["details"] = [
            {"line_no": n, "sku": sku, "qty_ordered": qty, "price": 1000}
            for n, (sku, qty) in enumerate(lines, start=1)
        ]
    body.update(fields)
    return body


def cancel_body(
    order_no: str, warehouse_id: str = WAREHOUSE, reason: str = "customer changed mind"
) -> dict:
    return {
        "data": {
            "cancellation": {
                "order_no": order_no,
                "warehouse_id": warehouse_id,
                "cancel_reason": reason,
            }
        }
    }


# -- Shipper's API as a client calls it ------------------------------------------


class ShipperClient:
    """One client's calls to Shipper's API, over a Flask test client."""

    def __init__(self, http: FlaskClient, api_key: str = DEMO_KEY) -> None:
        self.http = http
        self.api_key = api_key

    def call(self, method: str, path: str, body: object = None, **kwargs):
        headers = {"x-api-key": self.api_key, **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return self.http.open(
            "/v3/fulfillment" + path, method=method, headers=headers, **kwargs
        )

    def create(self, kind: str, body: dict):
        return self.call("POST", f"/outbound/{kind}", body)

    def create_ok(self, kind: str, body: dict) -> dict:
        response = self.create(kind, body)
        assert response.status_code == 200, response.headers.get("x-sim-error")
        return response.get_json()

    def update(self, kind: str, body: dict):
        return self.call("PUT", f"/outbound/{kind}", body)

    def cancel(self, kind: str, order_no: str, warehouse_id: str = WAREHOUSE):
        return self.call(
            "PATCH", f"/outbound/{kind}/cancel", cancel_body(order_no, warehouse_id)
        )

    def detail(self, kind: str, order_no: str, warehouse_id: str = WAREHOUSE):
        return self.call("GET", f"/warehouse/{warehouse_id}/outbound/{kind}/{order_no}")

    def outbound(self, kind: str, order_no: str, warehouse_id: str = WAREHOUSE):
        """``data.outbound`` of a detail that must exist."""
        response = self.detail(kind, order_no, warehouse_id)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["data"]["outbound"]

    def list(self, outbound_type: str = "WMS", **query: object):
        return self.call("GET", f"/outbounds/{outbound_type}", query_string=query)

    def listed(self, outbound_type: str = "WMS", **query: object) -> list[dict]:
        response = self.list(outbound_type, **query)
        assert response.status_code == 200, response.headers.get("x-sim-error")
        return response.get_json()["data"]["outbounds"]

    def stock(self, warehouse_code: str = WAREHOUSE, stock_type: str = "WMS", **q):
        query = {"warehouse_code": warehouse_code, "stock_type": stock_type, **q}
        return self.call("GET", "/inventory/stock", query_string=query)

    def qty(self, sku: str, stock_type: str, warehouse_code: str = WAREHOUSE) -> int:
        response = self.stock(warehouse_code, stock_type, sku=sku)
        assert response.status_code == 200, response.headers.get("x-sim-error")
        (row,) = response.get_json()["data"]["stock"]
        return row["qty"]


# -- the control API --------------------------------------------------------------


def advance(http: FlaskClient, order_no: str, warehouse_id: str = WAREHOUSE, **body):
    """POST /_sim/orders/{wh}/{no}/advance; ``client_id`` goes to the query."""
    client_id = body.pop("client_id", None)
    query = {"client_id": client_id} if client_id is not None else {}
    return http.post(
        f"/_sim/orders/{warehouse_id}/{order_no}/advance",
        json=body,
        query_string=query,
    )


def advance_ok(http: FlaskClient, order_no: str, warehouse_id: str = WAREHOUSE, **body):
    response = advance(http, order_no, warehouse_id, **body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["outbound"]


def set_stock(
    http: FlaskClient,
    sku: str,
    qty: int,
    client_id: int = DEMO_ID,
    warehouse_id=WAREHOUSE,
):
    response = http.put(
        "/_sim/stock",
        json={
            "client_id": client_id,
            "warehouse_id": warehouse_id,
            "sku": sku,
            "qty": qty,
        },
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def webhooks(http: FlaskClient, **query: object) -> list[dict]:
    response = http.get("/_sim/webhooks", query_string=query)
    assert response.status_code == 200
    return response.get_json()["webhooks"]


def sim_stock(http: FlaskClient, sku: str, client_id: int = DEMO_ID, wh=WAREHOUSE):
    """The simulator's own view of one stock row (on hand, allocated, ...)."""
    rows = http.get("/_sim/stock", query_string={"client_id": client_id}).get_json()
    (row,) = [r for r in rows["stock"] if r["sku"] == sku and r["warehouse_id"] == wh]
    return row


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> object:
    """Poll until ``condition()`` is truthy; answers its value or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting")
        time.sleep(0.01)


# -- simulators -----------------------------------------------------------------


def close_app(app: Flask) -> None:
    simulator: Simulator = app.extensions["shipper_sim"]
    simulator.stop()
    simulator.store.close()


@pytest.fixture
def app() -> Iterator[Flask]:
    app = create_app(Config(start_workers=False))
    yield app
    close_app(app)


@pytest.fixture
def sim(app: Flask) -> Simulator:
    return app.extensions["shipper_sim"]


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api(http: FlaskClient) -> ShipperClient:
    return ShipperClient(http, DEMO_KEY)


@pytest.fixture
def second_api(http: FlaskClient) -> ShipperClient:
    return ShipperClient(http, SECOND_KEY)


@pytest.fixture
def live_server(app: Flask) -> Iterator[tuple[str, int]]:
    """``app`` served over a real socket on 127.0.0.1; answers (host, port)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with BackgroundServer(server, name="live-server", poll_interval=0.02) as served:
        yield served.host, served.port


# -- a webhook receiver -------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> object:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent.

    By default it answers 200. ``fail(n)`` answers the next ``n`` requests
    with a 500 (or another status), ``answer(status)`` changes the default
    and ``hang(seconds)`` makes every answer wait that long.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._plan: list[int] = []
        self._status = 200
        self._hang = 0.0
        self._choose: Callable[[Received], int] | None = None
        self._changed = threading.Condition()
        self._closing = threading.Event()
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server = BackgroundServer(
            server, name="test-receiver", poll_interval=0.02
        ).start()

    @property
    def url(self) -> str:
        return f"{self._server.url}/webhook"

    def fail(self, times: int, status: int = 500) -> Receiver:
        with self._changed:
            self._plan.extend([status] * times)
        return self

    def answer(self, status: int) -> Receiver:
        self._status = status
        return self

    def hang(self, seconds: float) -> Receiver:
        self._hang = seconds
        return self

    def respond(self, choose: Callable[[Received], int]) -> Receiver:
        """Answer each request with the status ``choose(request)`` names."""
        self._choose = choose
        return self

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The first ``count`` requests, once that many have come."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: len(self.requests) >= count, timeout=timeout
            ):
                raise AssertionError(
                    f"expected {count} webhook requests, got {len(self.requests)}"
                )
            return list(self.requests[:count])

    def bodies(self) -> list[object]:
        with self._changed:
            return [r.json() for r in self.requests]

    def close(self) -> None:
        self._closing.set()
        self._server.stop()

    def _next_status(self, received: Received) -> int:
        with self._changed:
            if self._plan:
                return self._plan.pop(0)
        return self._choose(received) if self._choose else self._status

    def _record(self, received: Received) -> None:
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                receiver._record(received)
                status = receiver._next_status(received)
                if receiver._hang:
                    receiver._closing.wait(receiver._hang)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the simulator gave up waiting

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def make_live_app(**config: object) -> Flask:
    settings = {
        "start_workers": True,
        "retry_delays": FAST_RETRIES,
        "webhook_timeout": WEBHOOK_TIMEOUT,
        **config,
    }
    return create_app(Config(**settings))


def point_webhooks(http: FlaskClient, client_id: int, url: str) -> None:
    response = http.patch(f"/_sim/clients/{client_id}", json={"webhook_url": url})
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def live_app(receiver: Receiver) -> Iterator[Flask]:
    """A simulator with its workers running, sending to ``receiver``."""
    app = make_live_app()
    point_webhooks(app.test_client(), DEMO_ID, receiver.url)
    yield app
    close_app(app)


@pytest.fixture
def live_http(live_app: Flask) -> FlaskClient:
    return live_app.test_client()


@pytest.fixture
def live_api(live_http: FlaskClient) -> ShipperClient:
    return ShipperClient(live_http, DEMO_KEY)


def copy_of(body: dict) -> dict:
    return copy.deepcopy(body)
