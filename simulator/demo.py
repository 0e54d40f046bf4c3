"""``shipper-sim demo``: the outbound flow running by itself, to watch.

Three parts in one process, all on 127.0.0.1:

- a simulator whose orders move on their own (``Config(auto=True)``),
- a webhook receiver standing in for the client's endpoint, set as every
  fixture client's webhook URL; it prints one line per webhook that arrives,
- a stream of fake orders (:mod:`simulator.fakedata`) from B2C and B2B
  clients, sent through Shipper's API with each client's own key, now and
  then with a mistake in it or followed by a cancel, so that the dashboard
  shows refusals and their reasons too.

Ctrl-C (SIGINT) or SIGTERM stops the stream, closes both servers and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import random
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

import requests

from .app import create_app
from .clock import JAKARTA
from .config import Config
from .fakedata import fake_b2b_body, fake_b2c_body, fake_lines, make_faker
from .serving import BackgroundServer, make_simulator_server

log = logging.getLogger(__name__)

KINDS = ("B2C", "B2B")
CREATE_PATH = {
    "B2C": "/v3/fulfillment/outbound/oms",
    "B2B": "/v3/fulfillment/outbound/wms",
}
CANCEL_PATH = {kind: f"{path}/cancel" for kind, path in CREATE_PATH.items()}
NUMBER_FIELD = {"B2C": "so_number", "B2B": "doc_no"}
EXPRESS_TYPE = {"B2C": "OMS", "B2B": "WMS"}

# What a mistaken order gets wrong, and what Shipper answers to it.
MISTAKES = {
    "unknown_sku": "3013 SKU Does Not Exist",
    "unknown_express": "3015 Express Code Does Not Exist",
    "missing_phone": "810 Invalid Input",
    "duplicate_number": "3011 Order Number Already Exists",
    "wrong_key": "802 Unauthorized",
}

# A SKU whose free stock falls below this is topped up, as an inbound would.
RESTOCK_BELOW = 10
RESTOCK_QTY = 200
REQUEST_TIMEOUT = 5.0


def add_demo_parser(sub) -> argparse.ArgumentParser:
    """The ``demo`` subcommand's options (called by :mod:`simulator.cli`)."""
    demo = sub.add_parser(
        "demo",
        help="run a live demo: orders stream in and move on their own",
        description="Start a simulator with automatic progression, a local "
        "webhook receiver and a stream of fake orders; open the dashboard URL "
        "it prints. Ctrl-C stops it.",
    )
    demo.add_argument("--port", type=int, default=8080, help="simulator port")
    demo.add_argument(
        "--step-delay",
        type=_non_negative,
        default=2.0,
        help="seconds between two warehouse steps of an order (default 2)",
    )
    demo.add_argument(
        "--rate",
        type=_positive,
        default=12.0,
        help="orders per minute sent through Shipper's API (default 12)",
    )
    demo.add_argument(
        "--seed", type=int, default=20221, help="seed for the fake orders"
    )
    demo.add_argument(
        "--mistakes",
        type=_fraction,
        default=0.1,
        help="share of orders sent with a mistake, 0 to 1 (default 0.1)",
    )
    demo.add_argument(
        "--cancels",
        type=_fraction,
        default=0.1,
        help="share of orders followed by a cancel, 0 to 1 (default 0.1)",
    )
    demo.add_argument(
        "--fail-rate",
        type=_fraction,
        default=0.0,
        help="share of webhooks the receiver answers with 500, to show "
        "Shipper's retries (default 0)",
    )
    demo.add_argument("-v", "--verbose", action="store_true", help="log requests")
    return demo


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


# ---------------------------------------------------------------- receiver


def describe_webhook(body: dict) -> tuple[str, str, str]:
    """``(event, order, summary)`` of a webhook, read the way a client would."""
    if "pgi_date" in body:
        lines = body.get("details") or []
        units = sum(int(d.get("qty_shipped") or 0) for d in lines)
        order = f"{body.get('warehouse_id', '')}/{body.get('so_reference_a', '')}"
        summary = (
            f"PGI {units} unit{'s' if units != 1 else ''} on {len(lines)} "
            f"line{'s' if len(lines) != 1 else ''}, AWB {body.get('delivery_no', '')}"
        )
        return "pgi", order, summary

    if "status_code" in body:
        order = f"{body.get('warehouse_id', '')}/{body.get('order_no', '')}"
        return "status", order, f"{body['status_code']} {body.get('status', '')}"

    if "group_key" in body and body.get("items"):
        try:
            stored = json.loads(body["items"][0]["payload"])
        except (ValueError, KeyError, TypeError):
            stored = {}
        number = stored.get("so_number") or stored.get("doc_no") or "?"
        kind = "B2C" if "so_number" in stored else "B2B"
        order = f"{stored.get('warehouse_id', '')}/{number}"
        return "so_created", order, f"SO created ({kind}), {stored.get('so_status')}"

    return "unknown", "", json.dumps(body)[:80]


class WebhookReceiver:
    """The client's webhook endpoint: answers 200 and prints each arrival."""

    def __init__(self, out: TextIO, fail_rate: float = 0.0, seed: int = 0) -> None:
        self.out = out
        self.fail_rate = fail_rate
        self.count = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.server = BackgroundServer(server, name="demo-receiver")

    @property
    def url(self) -> str:
        return f"{self.server.url}/webhook"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def receive(self, raw: bytes) -> int:
        """Print one line for a webhook body; answers the status to reply."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        event, order, summary = describe_webhook(body if isinstance(body, dict) else {})
        with self._lock:
            self.count += 1
            failing = self._rng.random() < self.fail_rate
            answer = 500 if failing else 200
            at = dt.datetime.now(JAKARTA).strftime("%H:%M:%S")
            note = "  -> answered 500, Shipper will retry" if failing else ""
            print(
                f"{at}  {event:<10} {order:<34} {summary}{note}",
                file=self.out,
                flush=True,
            )
        return answer

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the name http.server calls)
                length = int(self.headers.get("content-length") or 0)
                status = receiver.receive(self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format, *args):  # quiet: one line per webhook
                pass

        return Handler


# ---------------------------------------------------------------- order stream


class OrderStream:
    """Fake orders from every client, through Shipper's API, at a steady rate."""

    def __init__(
        self,
        base_url: str,
        clients: list[dict],
        rate: float,
        seed: int,
        mistakes: float = 0.1,
        cancels: float = 0.1,
    ) -> None:
        self.base_url = base_url
        self.clients = clients
        self.interval = 60.0 / rate
        self.mistakes = mistakes
        self.cancels = cancels
        self.fake = make_faker(seed)
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.stopped = threading.Event()
        self.sent = 0
        self._used: set[tuple[int, str, str]] = set()
        self._recent: list[tuple[dict, str, str, str]] = []
        self._skus: dict[tuple[int, str], list[str]] = {}
        self._carriers: dict[str, list[dict]] = {}
        self._thread = threading.Thread(
            target=self._run, name="demo-orders", daemon=True
        )

        # Every client sends both kinds, in a shuffled but seeded order.
        pairs = [(c, kind) for c in clients for kind in KINDS]
        self.rng.shuffle(pairs)
        self._next_pair = itertools.cycle(pairs).__next__

    def start(self) -> None:
        self._load_master_data()
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(timeout=REQUEST_TIMEOUT + 1)
        self.session.close()

    def _load_master_data(self) -> None:
        for client in self.clients:
            stock = self._get(f"/_sim/stock?client_id={client['client_id']}")["stock"]
            for row in stock:
                if row["qty_available"] > 0:
                    key = (client["client_id"], row["warehouse_id"])
                    self._skus.setdefault(key, []).append(row["sku"])
        key = {"x-api-key": self.clients[0]["api_key"]}
        for kind, express_type in EXPRESS_TYPE.items():
            found = self._get(
                f"/v3/fulfillment/express?express_type={express_type}&limit=100",
                headers=key,
            )
            self._carriers[kind] = found["data"]["express"]

    def _get(self, path: str, headers: dict | None = None) -> dict:
        reply = self.session.get(
            self.base_url + path, headers=headers, timeout=REQUEST_TIMEOUT
        )
        reply.raise_for_status()
        return reply.json()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.send_one()
                if self.sent % 20 == 0:
                    self.restock()
            except requests.RequestException as exc:
                if not self.stopped.is_set():
                    log.warning("demo order not sent: %s", exc)
            self.stopped.wait(self.interval)

    def send_one(self) -> None:
        """Create one order (now and then a mistaken one, or cancel one)."""
        client, kind = self._next_pair()
        mistake = None
        if self.rng.random() < self.mistakes:
            mistake = self.rng.choice(list(MISTAKES))
        body, mistake = self._body(client, kind, mistake)
        key = "demo-key-nobody-has" if mistake == "wrong_key" else client["api_key"]

        self.session.post(
            self.base_url + CREATE_PATH[kind],
            json=body,
            headers={"x-api-key": key},
            timeout=REQUEST_TIMEOUT,
        )
        self.sent += 1
        if mistake is None:
            recent = (client, kind, body["warehouse_id"], body[NUMBER_FIELD[kind]])
            self._recent = [*self._recent[-5:], recent]
        if self._recent and self.rng.random() < self.cancels:
            self.cancel_one()

    def cancel_one(self) -> None:
        """Cancel a recent order: early ones go through, allocated ones are
        refused with 3020, as Shipper does."""
        client, kind, warehouse_id, number = self.rng.choice(self._recent)
        self.session.patch(
            self.base_url + CANCEL_PATH[kind],
            json={
                "data": {
                    "cancellation": {
                        "order_no": number,
                        "warehouse_id": warehouse_id,
                        "cancel_reason": "buyer asked to cancel",
                    }
                }
            },
            headers={"x-api-key": client["api_key"]},
            timeout=REQUEST_TIMEOUT,
        )

    def restock(self) -> None:
        """Top up SKUs that are running out, as an inbound delivery would."""
        for client in self.clients:
            stock = self._get(f"/_sim/stock?client_id={client['client_id']}")["stock"]
            for row in stock:
                if row["qty_available"] < RESTOCK_BELOW:
                    self.session.put(
                        self.base_url + "/_sim/stock",
                        json={
                            "client_id": client["client_id"],
                            "warehouse_id": row["warehouse_id"],
                            "sku": row["sku"],
                            "qty": row["qty_on_hand"] + RESTOCK_QTY,
                        },
                        timeout=REQUEST_TIMEOUT,
                    )

    def _body(
        self, client: dict, kind: str, mistake: str | None
    ) -> tuple[dict, str | None]:
        """A fake body for ``client``; answers it and the mistake it carries."""
        duplicate = None
        if mistake == "duplicate_number":
            duplicate = next(
                (
                    r
                    for r in reversed(self._recent)
                    if r[0]["client_id"] == client["client_id"] and r[1] == kind
                ),
                None,
            )
            mistake = mistake if duplicate else None

        if duplicate:
            warehouse_id = duplicate[2]
        else:
            warehouse_id = self.rng.choice(
                [
                    w
                    for w in client["warehouses"]
                    if (client["client_id"], w) in self._skus
                ]
            )
        skus = self._skus[(client["client_id"], warehouse_id)]
        carrier = self.rng.choice(self._carriers[kind])
        if mistake == "unknown_express":
            carrier = {"express_code": "KILAT", "express_name": "Kilat Kilat"}
        now = dt.datetime.now(JAKARTA).replace(tzinfo=None, microsecond=0)

        for _ in range(10):
            body = self._fake_body(client, kind, warehouse_id, skus, carrier, now)
            used = (client["client_id"], warehouse_id, body[NUMBER_FIELD[kind]])
            if used not in self._used:
                break

        if duplicate:
            body[NUMBER_FIELD[kind]] = duplicate[3]
        if mistake == "unknown_sku":
            body["details"][0]["sku"] = "SKU-NOT-IN-WAREHOUSE"
        if mistake == "missing_phone":
            body.pop("consignee_phone" if kind == "B2C" else "consignee_tel")
        if mistake is None:
            self._used.add(used)
        return body, mistake

    def _fake_body(
        self,
        client: dict,
        kind: str,
        warehouse_id: str,
        skus: list[str],
        carrier: dict,
        now: dt.datetime,
    ) -> dict:
        lines = fake_lines(self.fake, skus)
        if kind == "B2C":
            return fake_b2c_body(
                self.fake,
                warehouse_id=warehouse_id,
                customer_id=client["oms_customer_id"],
                tenant_name=client["tenant_name"],
                express_code=carrier["express_code"],
                lines=lines,
                order_time=now,
            )
        return fake_b2b_body(
            self.fake,
            warehouse_id=warehouse_id,
            customer_id=client["wms_customer_id"],
            carrier_id=carrier["express_code"],
            carrier_name=carrier["express_name"],
            lines=lines,
            order_time=now,
        )


# ---------------------------------------------------------------- the command


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run until SIGINT or SIGTERM; answers the exit status."""
    _quiet_logging(args.verbose)
    stop = threading.Event()

    receiver = WebhookReceiver(out, fail_rate=args.fail_rate, seed=args.seed)
    config = Config(
        auto=True,
        step_delay=args.step_delay,
        seed=args.seed,
        # The fallback for clients without a URL, so a reset from the
        # dashboard (which reloads the fixtures) keeps the webhooks coming.
        webhook_url=receiver.url,
    )
    app = create_app(config)
    simulator = app.extensions["shipper_sim"]
    try:
        listener = _listen(args.port)
    except OSError as exc:
        print(
            f"shipper-sim demo: cannot listen on 127.0.0.1:{args.port}: "
            f"{exc.strerror or exc}; pick another with --port",
            file=sys.stderr,
        )
        simulator.stop()
        receiver.stop()
        return 2
    # Werkzeug reports a busy port by exiting the process; a socket bound
    # here first lets the demo say so itself.
    server = BackgroundServer(
        make_simulator_server("127.0.0.1", args.port, app, fd=listener.fileno()),
        name="demo-simulator",
    )
    listener.close()

    base_url = server.url
    previous = _stop_on_signals(stop)
    receiver.start()
    server.start()

    clients = simulator.backend.clients()
    for client in clients:
        simulator.backend.update_client(
            client["client_id"], {"webhook_url": receiver.url}
        )
    stream = OrderStream(
        base_url,
        clients,
        rate=args.rate,
        seed=args.seed,
        mistakes=args.mistakes,
        cancels=args.cancels,
    )

    _print_banner(out, base_url, receiver.url, clients, args)
    try:
        stream.start()
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        stream.stop()
        simulator.stop()
        server.stop()
        receiver.stop()
        _restore_signals(previous)
        # The temporary store is left to the process exit: a delivery the
        # dispatcher had in flight may still record its attempt.
        print(
            f"shipper-sim demo stopped: {stream.sent} orders sent, "
            f"{receiver.count} webhooks received.",
            file=out,
            flush=True,
        )
    return 0


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def _print_banner(
    out: TextIO, base_url: str, hook_url: str, clients: list[dict], args
) -> None:
    names = ", ".join(f"{c['tenant_name']} ({c['client_id']})" for c in clients)
    print(
        "shipper-sim demo\n"
        f"  dashboard:   {base_url}/_sim/\n"
        f"  Shipper API: {base_url}/v3/fulfillment\n"
        f"  webhooks to: {hook_url} (printed below as they arrive)\n"
        f"  orders:      {args.rate:g} a minute, B2C and B2B, from {names}\n"
        f"  progression: automatic, one step every {args.step_delay:g}s\n"
        "Ctrl-C to stop.\n",
        file=out,
        flush=True,
    )


def _quiet_logging(verbose: bool) -> None:
    from .cli import setup_logging

    setup_logging(verbose)
    if not verbose:
        # Refused requests are the demo's own doing; the dashboard's journal
        # shows each with its reason.
        logging.getLogger("simulator.http").setLevel(logging.ERROR)


def _stop_on_signals(stop: threading.Event) -> dict:
    def handle(signum, frame):
        stop.set()

    return {
        signum: signal.signal(signum, handle)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }


def _restore_signals(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
