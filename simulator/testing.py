"""Test helpers: a simulator to run, a client of your own, a webhook receiver.

The pytest plugin (:mod:`simulator.pytest_plugin`) hands these out as
fixtures; they work just as well without pytest::

    with SimulatorServer() as sim, WebhookReceiver() as hooks:
        shop = sim.new_client(webhook_url=hooks)
        order = shop.create_b2c()
        shop.advance(order, to="SHIPPED")
        pgi = hooks.wait_for(event="pgi", order_no=order.order_no)

The rule that keeps tests apart: every test gets a **client of its own**
(``POST /_sim/clients`` with fresh ids). A client sees only its own orders,
stock, deliveries and journal, so tests never need to reset each other, and
resetting one client (``POST /_sim/reset?client_id=``) leaves the rest alone.
Only the clock belongs to the whole simulator; a :class:`SimClient` on a
simulator marked ``shared`` refuses to move it.

Every refusal is raised in the calling thread as an :class:`AssertionError`
subclass that carries the simulator's own words (which field, which value,
the closest requests), so a failing test says why.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .clock import parse_iso_utc
from .config import Config
from .serving import BackgroundServer

__all__ = [
    "B2B_SAMPLE",
    "B2C_SAMPLE",
    "TEST_SETTINGS",
    "Order",
    "ReceivedWebhook",
    "RemoteSimulator",
    "SharedClockError",
    "SimClient",
    "SimClock",
    "SimulatorError",
    "SimulatorServer",
    "WebhookReceiver",
]

API_PREFIX = "/v3/fulfillment"

# What a simulator started for tests differs in from ``shipper-sim serve``:
# a failing webhook runs its whole retry ladder in a fraction of a second.
TEST_SETTINGS: dict[str, Any] = {
    "retry_delays": (0.05, 0.05, 0.05),
    "webhook_timeout": 2.0,
}

# Shipper's documented request bodies (docs/samples/, kept equal by a test).
# A client's own codes, warehouse and a fresh order number replace the
# sample's when a body is made for it.
B2C_SAMPLE: dict[str, Any] = {
    "warehouse_id": "WH-TGR04",
    "customer_id": "CS674",
    "so_number": "SHOPEE-2207-000123",
    "order_type": "SO",
    "order_source": "",
    "platform": "SHOPEE",
    "order_identification_code": 1,
    "internal_order_status": "Pending",
    "express_code": "JNE",
    "tenant_name": "Toko Contoh",
    "seller_nick": "",
    "consignee": "Budi Santoso",
    "consignee_phone": "081200000001",
    "consignee_mobile": "",
    "consignee_email": "budi@example.com",
    "consignee_full_address": (
        "Jl. Contoh No. 5, Tanah Abang, Jakarta Pusat, DKI Jakarta"
    ),
    "consignee_state": "Indonesia",
    "consignee_province": "DKI Jakarta",
    "consignee_city": "Jakarta Pusat",
    "area": "",
    "town": "",
    "zip_code": "10250",
    "consignee_doc_type": 1,
    "consignee_doc_no": "",
    "seller_flag": "",
    "buyer_remark": "tolong dibungkus rapi",
    "seller_remark": "",
    "order_price": 185000,
    "pre_tax_price": 0,
    "tax_price": 0,
    "discount_price": 0,
    "postage": 10000,
    "cod_price": 0,
    "order_time": "2022-07-15 11:58:40",
    "payment_time": "2022-07-15 12:01:02",
    "payment_type": 0,
    "payment_way": "",
    "details": [
        {"sku": "SKU-TSHIRT-M", "qty_ordered": 2, "price": 75000},
        {"sku": "SKU-CAP-01", "qty_ordered": 1, "price": 35000},
    ],
}

B2B_SAMPLE: dict[str, Any] = {
    "warehouse_id": "WH-TGR04",
    "customer_id": "HJ",
    "order_type": "CSO",
    "doc_no": "ERP-SO-0042",
    "order_time": "2021-05-07T00:00:00Z",
    "consignee_id": "ERP",
    "consignee_name": "PT Contoh Retail",
    "consignee_tel": "0213000000",
    "consignee_mail": "gudang@example.com",
    "consignee_zip": 12345,
    "consignee_address": (
        "Jl. Contoh Raya 10, Kebayoran Baru, Jakarta Selatan, DKI Jakarta"
    ),
    "consignee_state": "ID",
    "consignee_province": "DKI Jakarta",
    "consignee_city": "Jakarta Selatan",
    "delivery_no": "",
    "carrier_id": "SICEPAT",
    "carrier_name": "SiCepat",
    "priority": "",
    "notes": "",
    "details": [
        {
            "line_no": 1,
            "sku": "SKU-TSHIRT-M",
            "qty_ordered": 40,
            "price": 60000,
            "mfg_date": "",
            "exp_date": "",
            "batch_no": "",
            "serial_no": "",
        },
        {
            "line_no": 2,
            "sku": "SKU-CAP-01",
            "qty_ordered": 25,
            "price": 30000,
            "mfg_date": "",
            "exp_date": "",
            "batch_no": "",
            "serial_no": "",
        },
    ],
}

# How often a server thread looks for a stop request: stopping a server
# waits up to this long, once per test for a receiver.
POLL_INTERVAL = 0.02

# Client ids handed out to tests: far above the fixtures' six-digit ones.
_CLIENT_IDS = (100_000_000, 2**31 - 1)
_random = random.SystemRandom()


class SimulatorError(AssertionError):
    """The simulator refused a call; the message is its own explanation."""


class SharedClockError(RuntimeError):
    """A test tried to move the clock of a simulator other tests share."""


# -- talking to a simulator ---------------------------------------------------


@dataclasses.dataclass
class _Answer:
    status: int
    body: Any
    headers: Any


class _HttpTransport:
    """Control calls over HTTP, to a simulator in another process."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()

    def send(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
    ) -> _Answer:
        reply = self.session.request(
            method,
            self.base_url + path,
            json=json,
            params=params,
            headers=headers,
            timeout=self.timeout,
        )
        try:
            body = reply.json()
        except ValueError:
            body = reply.text
        return _Answer(reply.status_code, body, reply.headers)

    def close(self) -> None:
        self.session.close()


class _InProcessTransport:
    """Control calls straight into an app in this process (no socket).

    The same routes, validation and answers as over HTTP, ten times faster,
    which is what keeps a fresh client per test cheap.
    """

    def __init__(self, app) -> None:
        self.client = app.test_client()

    def send(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
    ) -> _Answer:
        options: dict[str, Any] = {"method": method, "headers": headers or {}}
        if json is not None:
            options["json"] = json
        if params:
            options["query_string"] = params
        reply = self.client.open(path, **options)
        body = reply.get_json(silent=True)
        if body is None:
            body = reply.get_data(as_text=True)
        return _Answer(reply.status_code, body, reply.headers)

    def set_stock_rows(self, rows: list[dict]) -> None:
        """Many ``PUT /_sim/stock`` bodies in one store transaction.

        The route's own backend call without its per-request cost (a new
        client copies a dozen SKUs); the rows are already valid, being
        another client's stock.
        """
        backend = self.client.application.extensions["shipper_sim"].backend
        with backend.store.transaction():
            for row in rows:
                backend.set_stock(row)

    def close(self) -> None:
        pass


def _refusal(method: str, path: str, answer: _Answer) -> str:
    body = answer.body
    if isinstance(body, dict) and "error" in body:
        reason = body["error"]
        if body.get("field"):
            reason += f" (field: {body['field']})"
    else:
        reason = str(body)[:500]
    return f"{method} {path} answered {answer.status}: {reason}"


def _without_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _as_unix(at: float | str | datetime | None) -> float | None:
    if at is None or isinstance(at, int | float):
        return at
    if isinstance(at, datetime):
        return at.timestamp() if at.tzinfo else at.replace(tzinfo=UTC).timestamp()
    try:
        return parse_iso_utc(at)
    except ValueError:
        raise ValueError(
            f"expected Unix seconds or a UTC time like 2022-07-15T04:00:00Z, got {at!r}"
        ) from None


class _Simulator:
    """What a running simulator offers, wherever it runs."""

    url: str
    # Other tests use this simulator too: whole-simulator settings (the
    # clock) must not be moved by one of them.
    shared: bool

    def _transport(self):
        raise NotImplementedError

    def control(
        self, method: str, path: str, json: Any = None, params: dict | None = None
    ) -> Any:
        """Any ``/_sim`` call; answers its JSON, raises if it is refused."""
        transport = self._transport()
        try:
            answer = transport.send(method, path, json=json, params=params)
        finally:
            transport.close()
        if answer.status >= 400:
            raise SimulatorError(_refusal(method, path, answer))
        return answer.body

    def health(self) -> dict:
        return self.control("GET", "/_sim/health")

    def reset(self) -> None:
        """Reset the whole simulator: every client's orders, stock, journal."""
        self.control("POST", "/_sim/reset")

    def clients(self) -> list[dict]:
        return self.control("GET", "/_sim/clients")["clients"]

    def new_client(
        self,
        *,
        warehouses: Iterable[str] = ("WH-TGR04",),
        stock: str | dict[str, int] | None = "demo",
        webhook_url: str | WebhookReceiver = "",
        progression: str = "manual",
        step_delay: float | None = None,
        tenant_name: str = "Toko Uji",
    ) -> SimClient:
        """A client of its own, with fresh ids, for one test.

        ``stock="demo"`` copies the demo client's SKUs and quantities in
        these warehouses; a ``{sku: qty}`` dict sets exactly those (in the
        first warehouse); ``None`` leaves the client with no stock.
        ``webhook_url`` may be a :class:`WebhookReceiver`.
        """
        warehouses = list(warehouses)
        receiver = webhook_url if isinstance(webhook_url, WebhookReceiver) else None
        transport = self._transport()
        try:
            described = self._add_client(
                transport,
                {
                    "tenant_name": tenant_name,
                    "warehouses": warehouses,
                    "webhook_url": receiver.url if receiver else webhook_url,
                    "progression": progression,
                    "step_delay": step_delay,
                },
            )
            # In the order asked for: the first is the client's default.
            described = {**described, "warehouses": warehouses}
            client = SimClient(self, transport, described)
            if stock == "demo":
                client._copy_stock_of(self._demo_client_id(client))
            elif stock:
                for sku, qty in stock.items():
                    client.set_stock(sku, qty)
        except BaseException:
            transport.close()
            raise
        if receiver is not None:
            receiver._report_with(client.describe_deliveries)
        return client

    def _add_client(self, transport, settings: dict) -> dict:
        for _ in range(5):
            client_id = _random.randrange(*_CLIENT_IDS)
            body = _without_none(
                {
                    "api_key": f"sim-test-{secrets.token_hex(8)}",
                    "client_id": client_id,
                    "oms_customer_id": f"CS{client_id}",
                    "wms_customer_id": f"T{client_id}",
                    **settings,
                }
            )
            answer = transport.send("POST", "/_sim/clients", json=body)
            if answer.status == 201:
                return answer.body
            taken = isinstance(answer.body, dict) and answer.body.get("field") in (
                "client_id",
                "api_key",
            )
            if not (answer.status == 400 and taken and "taken" in str(answer.body)):
                raise SimulatorError(_refusal("POST", "/_sim/clients", answer))
        raise SimulatorError("could not find a free client_id in 5 tries")

    def _demo_client_id(self, client: SimClient) -> int:
        # The fixtures' first client; looked up once, since the list grows by
        # one client per test.
        cached = getattr(self, "_demo_id", None)
        if cached is None:
            others = [c for c in self.clients() if c["client_id"] != client.client_id]
            if not others:
                raise SimulatorError(
                    "stock='demo' copies the demo client's stock, but this "
                    "simulator has no other client; pass stock={sku: qty} instead"
                )
            cached = self._demo_id = min(c["client_id"] for c in others)
        return cached


class SimulatorServer(_Simulator):
    """A simulator in this process, on a free 127.0.0.1 port.

    ``SimulatorServer(retry_delays=(1, 2, 4))`` takes any :class:`Config`
    field; without them it uses :data:`TEST_SETTINGS` (fast retries). The
    HTTP server runs threaded in a background thread; control calls made
    through the helpers go straight into the app.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shared: bool = False,
        **settings: Any,
    ) -> None:
        known = {f.name for f in dataclasses.fields(Config)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(
                f"unknown simulator setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        if "freeze_at" in settings:
            settings["freeze_at"] = _as_unix(settings["freeze_at"])
        base = config or Config(**TEST_SETTINGS)
        self.config = dataclasses.replace(base, **settings)
        self.host = host
        self.port = port
        self.shared = shared
        self.app = None
        self._server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://{self.host}:{self._server.port}"

    @property
    def simulator(self):
        """The :class:`simulator.app.Simulator` behind the app."""
        return self.app.extensions["shipper_sim"]

    def start(self) -> SimulatorServer:
        if self._server is not None:
            return self
        self.app = create_app(self.config)
        try:
            server = make_server(
                self.host,
                self.port,
                self.app,
                threaded=True,
                request_handler=_QuietHandler,
            )
        except BaseException:
            self._close_app()
            raise
        self._server = BackgroundServer(
            server, name="shipper-sim-http", poll_interval=POLL_INTERVAL
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._close_app()

    def _close_app(self) -> None:
        if self.app is not None:
            self.simulator.stop()
            self.simulator.store.close()
            self.app = None

    def _transport(self):
        if self.app is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return _InProcessTransport(self.app)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RemoteSimulator(_Simulator):
    """A simulator someone else started (``shipper-sim serve``, a CI service)."""

    def __init__(self, url: str, *, shared: bool = True) -> None:
        self.url = url.rstrip("/")
        self.shared = shared

    def wait_until_ready(self, timeout: float = 10.0) -> RemoteSimulator:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                reply = requests.get(self.url + "/_sim/health", timeout=1.0)
                if reply.ok and reply.json().get("status") == "ok":
                    return self
                last = f"answered {reply.status_code}"
            except (requests.RequestException, ValueError) as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                raise SimulatorError(
                    f"no simulator answered GET {self.url}/_sim/health within "
                    f"{timeout:g}s (last: {last}); is `shipper-sim serve` running?"
                )
            time.sleep(0.1)

    def _transport(self):
        return _HttpTransport(self.url)

    def __enter__(self) -> RemoteSimulator:
        return self.wait_until_ready()

    def __exit__(self, *exc: object) -> None:
        pass


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


# -- one client of one test ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Order:
    """An order a helper created: what to name it by in later calls."""

    kind: str  # "B2C" or "B2B"
    order_no: str  # the so_number (B2C) or doc_no (B2B)
    warehouse_id: str
    group_key: str
    body: dict

    def __str__(self) -> str:
        return self.order_no


class SimClient:
    """One client of a simulator, of one test's own.

    ``base_url`` and ``api_key`` are what the integration under test needs;
    the rest arranges and inspects this client's state through ``/_sim``.
    """

    def __init__(self, simulator: _Simulator, transport, described: dict) -> None:
        self.simulator = simulator
        self.client_id: int = described["client_id"]
        self.api_key: str = described["api_key"]
        self.tenant_name: str = described["tenant_name"]
        self.oms_customer_id: str = described["oms_customer_id"]
        self.wms_customer_id: str = described["wms_customer_id"]
        self.warehouses: list[str] = list(described["warehouses"])
        self.warehouse_id: str = self.warehouses[0]
        self.clock = SimClock(self)
        self._control = transport
        self._http: requests.Session | None = None
        self._numbers = itertools.count(1)
        self._fault_ids: list[int] = []
        self._siblings: list[SimClient] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"<SimClient {self.client_id} on {self.simulator.url}>"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; Shipper's paths start ``/v3/fulfillment``."""
        return self.simulator.url

    @property
    def api_url(self) -> str:
        return self.simulator.url + API_PREFIX

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    # -- Shipper's API, as an integration calls it (real HTTP)
    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request to Shipper's API with this client's key.

        ``path`` may leave out the ``/v3/fulfillment`` prefix.
        """
        if self._http is None:
            self._http = requests.Session()
        headers = {**self.headers, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return self._http.request(
            method,
            self.simulator.url + _api_path(path),
            json=json,
            params=params,
            headers=headers,
            **kwargs,
        )

    # -- sample bodies and orders
    def b2c_body(
        self, *, lines: Iterable[tuple[str, int]] | None = None, **fields: Any
    ) -> dict:
        """Shipper's B2C sample, for this client, with a fresh ``so_number``.

        ``lines=[("SKU-CAP-01", 2)]`` replaces the order lines; any other
        keyword replaces that field.
        """
        body = copy.deepcopy(B2C_SAMPLE)
        body.update(
            warehouse_id=self.warehouse_id,
            customer_id=self.oms_customer_id,
            tenant_name=self.tenant_name,
            so_number=f"SO-{next(self._numbers):04d}",
        )
        if lines is not None:
            body["details"] = [
                {"sku": sku, "qty_ordered": qty, "price": 10000} for sku, qty in lines
            ]
        body.update(fields)
        return body

    def b2b_body(
        self, *, lines: Iterable[tuple[str, int]] | None = None, **fields: Any
    ) -> dict:
        """Shipper's B2B sample, for this client, with a fresh ``doc_no``."""
        body = copy.deepcopy(B2B_SAMPLE)
        body.update(
            warehouse_id=self.warehouse_id,
            customer_id=self.wms_customer_id,
            doc_no=f"DO-{next(self._numbers):04d}",
        )
        if lines is not None:
            body["details"] = [
                {
                    "line_no": n,
                    "sku": sku,
                    "qty_ordered": qty,
                    "price": 10000,
                    "mfg_date": "",
                    "exp_date": "",
                    "batch_no": "",
                    "serial_no": "",
                }
                for n, (sku, qty) in enumerate(lines, start=1)
            ]
        body.update(fields)
        return body

    def create_b2c(
        self, *, lines: Iterable[tuple[str, int]] | None = None, **fields: Any
    ) -> Order:
        """Create a B2C order from the sample; raises if Shipper's API refuses."""
        return self._create("B2C", self.b2c_body(lines=lines, **fields))

    def create_b2b(
        self, *, lines: Iterable[tuple[str, int]] | None = None, **fields: Any
    ) -> Order:
        """Create a B2B order from the sample; raises if Shipper's API refuses."""
        return self._create("B2B", self.b2b_body(lines=lines, **fields))

    def _create(self, kind: str, body: dict) -> Order:
        path = API_PREFIX + ("/outbound/oms" if kind == "B2C" else "/outbound/wms")
        answer = self._control.send("POST", path, json=body, headers=self.headers)
        if answer.status != 200:
            code = ""
            if isinstance(answer.body, dict):
                errors = answer.body.get("metadata", {}).get("errors") or [{}]
                code = f" (code {errors[0].get('code')})"
            reason = answer.headers.get("x-sim-error", "")
            raise SimulatorError(
                f"create_{kind.lower()}: POST {path} answered "
                f"{answer.status}{code}: {reason}"
            )
        number = body["so_number"] if kind == "B2C" else body["doc_no"]
        return Order(
            kind, number, body["warehouse_id"], answer.body["data"]["group_key"], body
        )

    # -- moving orders
    def advance(
        self,
        order: Order | str,
        *,
        to: str | None = None,
        step: str | None = None,
        lines: dict[str, int] | None = None,
        warehouse_id: str | None = None,
    ) -> dict:
        """Run warehouse steps; answers the order as the WMS detail shows it.

        ``to="SHIPPED"`` runs every step up to that status; ``step="pick",
        lines={"SKU-A": 1}`` runs one step, the named lines short.
        """
        body = _without_none({"to": to, "step": step, "lines": lines})
        path = self._order_path(order, warehouse_id) + "/advance"
        return self._sim("POST", path, json=body, params=self._mine())["data"][
            "outbound"
        ]

    def order(self, order: Order | str, *, warehouse_id: str | None = None) -> dict:
        """One order's timeline: statuses reached, webhooks, the creating request."""
        path = self._order_path(order, warehouse_id)
        return self._sim("GET", path, params=self._mine())

    def set_progression(
        self, mode: str, *, step_delay: float | None = None
    ) -> SimClient:
        """``"auto"`` moves this client's new orders on by themselves."""
        changes = _without_none({"progression": mode, "step_delay": step_delay})
        self._sim("PATCH", f"/_sim/clients/{self.client_id}", json=changes)
        return self

    # -- stock
    def set_stock(
        self,
        sku: str,
        qty: int,
        *,
        warehouse_id: str | None = None,
        sku_descr: str = "",
    ) -> dict:
        """Set one SKU's physical stock (creating the SKU if new)."""
        body = {
            "client_id": self.client_id,
            "warehouse_id": warehouse_id or self.warehouse_id,
            "sku": sku,
            "qty": qty,
        }
        if sku_descr:
            body["sku_descr"] = sku_descr
        return self._sim("PUT", "/_sim/stock", json=body)

    def stock(self) -> list[dict]:
        """Every SKU: ``qty_on_hand``, ``qty_allocated``, ``qty_available``..."""
        return self._sim("GET", "/_sim/stock", params=self._mine())["stock"]

    def stock_of(self, sku: str, *, warehouse_id: str | None = None) -> dict:
        warehouse_id = warehouse_id or self.warehouse_id
        for row in self.stock():
            if row["sku"] == sku and row["warehouse_id"] == warehouse_id:
                return row
        raise SimulatorError(f"client {self.client_id} has no {sku} in {warehouse_id}")

    def _copy_stock_of(self, source_client_id: int) -> None:
        source = self._sim("GET", "/_sim/stock", params={"client_id": source_client_id})
        rows = [
            {
                "client_id": self.client_id,
                "warehouse_id": row["warehouse_id"],
                "sku": row["sku"],
                "qty": row["qty_on_hand"],
                "sku_descr": row["sku_descr"],
            }
            for row in source["stock"]
            if row["warehouse_id"] in self.warehouses
        ]
        bulk = getattr(self._control, "set_stock_rows", None)
        if bulk is not None:
            bulk(rows)
            return
        for row in rows:
            self._sim("PUT", "/_sim/stock", json=row)

    # -- webhooks
    def point_webhooks(self, target: str | WebhookReceiver) -> SimClient:
        """Send this client's webhooks to a URL or a :class:`WebhookReceiver`."""
        url = target.url if isinstance(target, WebhookReceiver) else target
        self._sim("PATCH", f"/_sim/clients/{self.client_id}", json={"webhook_url": url})
        if isinstance(target, WebhookReceiver):
            target._report_with(self.describe_deliveries)
        return self

    def deliveries(
        self,
        order_no: Order | str | None = None,
        *,
        event: str | None = None,
        state: str | None = None,
    ) -> list[dict]:
        """The simulator's delivery log for this client, oldest first.

        ``event`` is ``so_created``, ``status`` or ``pgi``; ``state`` is
        ``pending``, ``delivered``, ``failed`` or ``no_url``.
        """
        query = self._mine(
            order_no=str(order_no) if order_no is not None else None,
            event=event,
            state=state,
        )
        return self._sim("GET", "/_sim/webhooks", params=query)["webhooks"]

    def wait_for_delivery(
        self,
        order_no: Order | str | None = None,
        *,
        event: str | None = None,
        state: str = "delivered",
        timeout: float = 5.0,
    ) -> dict:
        """The first delivery that reaches ``state``; raises, listing all, if none."""
        deadline = time.monotonic() + timeout
        while True:
            for delivery in self.deliveries(order_no, event=event):
                if delivery["state"] == state:
                    return delivery
            if time.monotonic() > deadline:
                wanted = ", ".join(
                    f"{k}={v!r}"
                    for k, v in (("order_no", order_no), ("event", event))
                    if v is not None
                )
                raise AssertionError(
                    f"no delivery{' with ' + wanted if wanted else ''} reached "
                    f"{state!r} within {timeout:g}s\n"
                    + self.describe_deliveries(order_no)
                )
            time.sleep(0.01)

    def wait_for_deliveries(self, *, timeout: float = 5.0) -> list[dict]:
        """Wait until none of this client's deliveries is pending; answers all.

        Retries due later on a frozen clock stay pending until it moves.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.deliveries()
            if all(d["state"] != "pending" for d in found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"webhooks still pending after {timeout:g}s (on a frozen "
                    "clock, retries wait for clock.advance)\n"
                    + self.describe_deliveries()
                )
            time.sleep(0.01)

    def describe_deliveries(self, order_no: Order | str | None = None) -> str:
        """The delivery log as text: one line per delivery and its attempts."""
        found = self.deliveries(order_no)
        if not found:
            return f"the simulator queued no webhook for client {self.client_id}"
        lines = [f"the simulator's deliveries for client {self.client_id}:"]
        for d in found:
            tries = ", ".join(
                str(a["status_code"]) if a["status_code"] else a["error"] or "?"
                for a in d["attempts"]
            )
            lines.append(
                f"  #{d['id']} {d['event']} {d['order_no']}: {d['state']}"
                + (f" (attempts: {tries})" if tries else "")
            )
        return "\n".join(lines)

    # -- the request journal
    def requests(
        self,
        path: str | None = None,
        *,
        method: str | None = None,
        status: int | None = None,
        limit: int = 100,
    ) -> list[dict]:
        """This client's requests to Shipper's API, newest first."""
        query = self._mine(path=path, method=method, status=status, limit=limit)
        return self._sim("GET", "/_sim/requests", params=query)["requests"]

    def verify(
        self,
        path: str,
        *,
        method: str | None = None,
        body: dict | None = None,
        status: int | None = None,
        count: int | None = None,
        at_least: int | None = None,
    ) -> int:
        """Assert that ``path`` was called as expected; answers how many matched.

        ``body`` matches as a subset; ``count`` is exact, ``at_least`` a
        minimum (at least one by default). On failure the AssertionError
        carries the simulator's message, with the closest requests.
        """
        spec = _without_none(
            {
                "path": _api_path(path),
                "method": method,
                "client_id": self.client_id,
                "body": body,
                "status": status,
                "count": count,
                "at_least": at_least,
            }
        )
        found = self._sim("POST", "/_sim/requests/verify", json=spec)
        if not found["ok"]:
            raise AssertionError(found["message"])
        return found["matched"]

    # -- faults
    def fault(self, **spec: Any) -> dict:
        """Add a fault for this client (``POST /_sim/faults``); removed at close.

        ``fault(endpoint="create_sales_order", status=503)``, or with
        ``target="webhook"``. It matches this client only; pass
        ``client_id=None`` to match every client.
        """
        spec.setdefault("client_id", self.client_id)
        if isinstance(spec.get("order_no"), Order):
            spec["order_no"] = spec["order_no"].order_no
        added = self._sim("POST", "/_sim/faults", json=_without_none(spec))
        self._fault_ids.append(added["id"])
        return added

    def faults(self) -> list[dict]:
        """This client's faults still waiting (used-up ones are gone)."""
        everyone = self._sim("GET", "/_sim/faults")["faults"]
        return [f for f in everyone if f["id"] in self._fault_ids]

    def clear_faults(self) -> None:
        """Remove every fault this client added, and any aimed at it."""
        for fault in self._sim("GET", "/_sim/faults")["faults"]:
            aimed_here = fault.get("client_id") == self.client_id
            if fault["id"] in self._fault_ids or aimed_here:
                answer = self._control.send("DELETE", f"/_sim/faults/{fault['id']}")
                if answer.status not in (200, 404):  # 404: used up meanwhile
                    raise SimulatorError(
                        _refusal("DELETE", f"/_sim/faults/{fault['id']}", answer)
                    )
        self._fault_ids.clear()

    # -- reset and close
    def reset(self) -> None:
        """Back to a fresh start for this client only.

        Its orders, deliveries and journal go, its stock returns to what was
        last set, and its faults are removed; other clients are untouched.
        """
        self.clear_faults()
        self._sim("POST", "/_sim/reset", params=self._mine())

    def another_client(self, **options: Any) -> SimClient:
        """A second client on the same simulator, closed when this one is."""
        other = self.simulator.new_client(**options)
        self._siblings.append(other)
        return other

    def summary(self, limit: int = 15) -> str:
        """The latest requests and every delivery, as text for a failing test."""
        lines = [
            f"client {self.client_id} on {self.base_url}",
            "requests (newest first):",
        ]
        journal = self.requests(limit=limit)
        for r in journal:
            code = f" code {r['code']}" if r["code"] else ""
            reason = f": {r['reason']}" if r["reason"] else ""
            lines.append(f"  {r['method']} {r['path']} -> {r['status']}{code}{reason}")
        if not journal:
            lines.append("  (none)")
        lines.append(self.describe_deliveries())
        return "\n".join(lines)

    def close(self) -> None:
        """Clear this client's faults and remove it; for a test's teardown."""
        if self._closed:
            return
        self._closed = True
        try:
            for other in self._siblings:
                other.close()
            self.clear_faults()
            self._sim("DELETE", f"/_sim/clients/{self.client_id}")
        finally:
            self._control.close()
            if self._http is not None:
                self._http.close()

    # -- plumbing
    def _mine(self, **query: Any) -> dict:
        return _without_none({"client_id": self.client_id, **query})

    def _order_path(self, order: Order | str, warehouse_id: str | None) -> str:
        if isinstance(order, Order):
            warehouse_id = warehouse_id or order.warehouse_id
            order = order.order_no
        warehouse_id = warehouse_id or self.warehouse_id
        return f"/_sim/orders/{quote(warehouse_id, safe='')}/{quote(order, safe='')}"

    def _sim(
        self, method: str, path: str, json: Any = None, params: dict | None = None
    ) -> Any:
        answer = self._control.send(method, path, json=json, params=params)
        if answer.status >= 400:
            raise SimulatorError(_refusal(method, path, answer))
        return answer.body


def _api_path(path: str) -> str:
    return path if path.startswith(API_PREFIX) else API_PREFIX + path


class SimClock:
    """The simulator's clock, as seen from one client.

    Reading it is always allowed. Moving it changes every timed step and
    retry of the whole simulator, so on a simulator other tests share it
    raises :class:`SharedClockError`.
    """

    def __init__(self, client: SimClient) -> None:
        self._client = client

    def _state(self) -> dict:
        return self._client._sim("GET", "/_sim/clock")

    def now(self) -> float:
        return self._state()["now"]

    @property
    def is_frozen(self) -> bool:
        return self._state()["frozen"]

    def freeze(self, at: float | str | datetime | None = None) -> float:
        """Stop time, now or at ``at`` (Unix seconds or ``2022-07-15T04:00:00Z``)."""
        self._check_owned("freeze")
        state = self._client._sim(
            "POST", "/_sim/clock/freeze", json=_without_none({"at": _as_unix(at)})
        )
        return state["now"]

    def advance(
        self,
        seconds: float = 0.0,
        *,
        minutes: float = 0.0,
        hours: float = 0.0,
        days: float = 0.0,
    ) -> int:
        """Move time on, running every step and retry due on the way.

        Answers how many ran. A real clock is frozen first.
        """
        self._check_owned("advance")
        total = seconds + 60 * minutes + 3600 * hours + 86_400 * days
        state = self._client._sim(
            "POST", "/_sim/clock/advance", json={"seconds": total}
        )
        return state["ran"]

    def unfreeze(self) -> None:
        self._check_owned("unfreeze")
        self._client._sim("POST", "/_sim/clock/unfreeze")

    def _check_owned(self, action: str) -> None:
        if self._client.simulator.shared:
            raise SharedClockError(
                f"cannot {action} the clock: it belongs to the whole simulator, "
                "and this simulator is shared with other tests (moving it would "
                "change their retries and timed steps). Give this test a "
                "simulator of its own: the `shipper_sim_isolated` fixture, "
                "@pytest.mark.shipper_sim(isolated=True), or SimulatorServer()."
            )


# -- a webhook receiver -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReceivedWebhook:
    """One request the receiver got, and what it answered."""

    n: int
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any  # the parsed body, or None if it was not JSON
    answered: int
    at: float  # Unix seconds (real time)

    @property
    def event(self) -> str:
        """``so_created``, ``status`` or ``pgi``, from a header or the body."""
        named = self.headers.get("x-sim-event")
        if named:
            return named
        body = self.json if isinstance(self.json, dict) else {}
        if "pgi_date" in body:
            return "pgi"
        if "status_code" in body:
            return "status"
        if "group_key" in body:
            return "so_created"
        return ""

    @property
    def order_no(self) -> str:
        """The client's order number (so_number or doc_no) this webhook is about."""
        body = self.json if isinstance(self.json, dict) else {}
        if body.get("so_reference_a"):  # PGI: the client's own number
            return body["so_reference_a"]
        if body.get("order_no"):  # status change
            return body["order_no"]
        for item in body.get("items") or []:  # SO created: a JSON string
            try:
                stored = json.loads(item.get("payload") or "{}")
            except (TypeError, ValueError, AttributeError):
                continue
            return stored.get("so_number") or stored.get("doc_no") or ""
        return ""

    @property
    def delivery_id(self) -> int | None:
        value = self.headers.get("x-sim-delivery-id")
        return int(value) if value and value.isdigit() else None

    def matches(
        self,
        predicate: Callable[[ReceivedWebhook], bool] | None = None,
        event: str | None = None,
        order_no: str | None = None,
    ) -> bool:
        return (
            (event is None or self.event == event)
            and (order_no is None or self.order_no == str(order_no))
            and (predicate is None or bool(predicate(self)))
        )

    def describe(self) -> str:
        status = self.json.get("status_code") if isinstance(self.json, dict) else None
        detail = f" {status}" if status else ""
        return (
            f"#{self.n} {self.method} {self.path} {self.event or '?'}{detail} "
            f"{self.order_no or '?'} -> answered {self.answered}"
        )


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every request it gets.

    It answers 200 unless told otherwise: ``fail_next(2)`` answers the next
    two with a 500, ``respond_with(503)`` changes the default. The methods
    that configure it return it, so they chain.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, path: str = "/webhook"
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self._received: list[ReceivedWebhook] = []
        self._plan: list[int] = []
        self._status = 200
        self._changed = threading.Condition()
        self._server: BackgroundServer | None = None
        # Callables that describe, for a timeout message, what the
        # simulator did about webhooks meant for this receiver.
        self._reporters: list[Callable[[], str]] = []

    # -- running
    def start(self) -> WebhookReceiver:
        if self._server is None:
            server = ThreadingHTTPServer((self.host, self.port), self._handler())
            server.daemon_threads = True
            self._server = BackgroundServer(
                server, name="webhook-receiver", poll_interval=POLL_INTERVAL
            ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            self.start()
        return f"http://{self.host}:{self._server.port}{self.path}"

    # -- answering
    def fail_next(self, n: int = 1, status: int = 500) -> WebhookReceiver:
        """Answer the next ``n`` requests with ``status``."""
        with self._changed:
            self._plan.extend([status] * n)
        return self

    def respond_with(self, status: int) -> WebhookReceiver:
        """Answer every request (after any ``fail_next``) with ``status``."""
        with self._changed:
            self._status = status
        return self

    def clear(self) -> WebhookReceiver:
        """Forget what was received and answer 200 again."""
        with self._changed:
            self._received.clear()
            self._plan.clear()
            self._status = 200
        return self

    # -- looking
    @property
    def received(self) -> list[ReceivedWebhook]:
        with self._changed:
            return list(self._received)

    def matching(
        self,
        predicate: Callable[[ReceivedWebhook], bool] | None = None,
        *,
        event: str | None = None,
        order_no: str | None = None,
    ) -> list[ReceivedWebhook]:
        order_no = _number(order_no)
        return [r for r in self.received if r.matches(predicate, event, order_no)]

    def wait_for(
        self,
        predicate: Callable[[ReceivedWebhook], bool] | None = None,
        *,
        event: str | None = None,
        order_no: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
    ) -> ReceivedWebhook:
        """Wait until ``count`` matching requests came; answers the first.

        On timeout, raises an AssertionError listing what did come and, when
        a simulator client points here, its delivery log.
        """
        order_no = _number(order_no)

        def enough() -> bool:
            return (
                sum(r.matches(predicate, event, order_no) for r in self._received)
                >= count
            )

        with self._changed:
            arrived = self._changed.wait_for(enough, timeout=timeout)
        if not arrived:
            raise AssertionError(
                self._explain(
                    f"expected {count} webhook(s) "
                    f"{_criteria(predicate, event, order_no)}within {timeout:g}s"
                )
            )
        return self.matching(predicate, event=event, order_no=order_no)[0]

    def assert_received(
        self,
        predicate: Callable[[ReceivedWebhook], bool] | None = None,
        *,
        event: str | None = None,
        order_no: str | None = None,
        count: int | None = None,
    ) -> list[ReceivedWebhook]:
        """Assert (without waiting) what arrived: at least one, or exactly ``count``."""
        order_no = _number(order_no)
        found = self.matching(predicate, event=event, order_no=order_no)
        ok = len(found) == count if count is not None else bool(found)
        if not ok:
            wanted = f"exactly {count}" if count is not None else "at least 1"
            raise AssertionError(
                self._explain(
                    f"expected {wanted} webhook(s) "
                    f"{_criteria(predicate, event, order_no)}; found {len(found)}"
                )
            )
        return found

    def assert_not_received(
        self,
        predicate: Callable[[ReceivedWebhook], bool] | None = None,
        *,
        event: str | None = None,
        order_no: str | None = None,
    ) -> None:
        self.assert_received(predicate, event=event, order_no=order_no, count=0)

    def _explain(self, headline: str) -> str:
        """The headline, what came, and what the simulator did about it."""
        received = self.received
        lines = [headline, f"received {len(received)}:"]
        lines += [f"  {r.describe()}" for r in received] or ["  (nothing)"]
        for report in self._reporters:
            try:
                lines.append(report())
            except Exception as exc:  # the simulator may be gone by now
                lines.append(f"(no delivery log: {exc})")
        return "\n".join(lines)

    def _report_with(self, reporter: Callable[[], str]) -> None:
        if reporter not in self._reporters:
            self._reporters.append(reporter)

    # -- serving
    def _answer_for(self, method: str, path: str, headers: dict, body: bytes) -> int:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._changed:
            status = self._plan.pop(0) if self._plan else self._status
            self._received.append(
                ReceivedWebhook(
                    len(self._received) + 1,
                    method,
                    path,
                    headers,
                    body,
                    parsed,
                    status,
                    time.time(),
                )
            )
            self._changed.notify_all()
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _receive(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer_for(self.command, self.path, headers, body)
                reply = b'{"status": "ok"}' if status < 400 else b'{"status": "error"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the sender gave up waiting

            do_POST = do_PUT = do_PATCH = _receive

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def _number(order_no: Order | str | None) -> str | None:
    return None if order_no is None else str(order_no)


def _criteria(predicate, event, order_no) -> str:
    parts = [
        f"{name}={value!r}"
        for name, value in (("event", event), ("order_no", order_no))
        if value is not None
    ]
    if predicate is not None:
        parts.append(f"matching {getattr(predicate, '__name__', 'predicate')}")
    return f"with {', '.join(parts)} " if parts else ""
