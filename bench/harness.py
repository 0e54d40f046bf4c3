"""What the benchmarks share: servers, a bare Flask baseline, clients, seeding.

Every figure a benchmark prints comes with a baseline measured in the same
run on the same machine, because absolute numbers on a shared 2-core box
say little on their own. The pieces here start the simulator the way
``shipper-sim serve`` starts it (werkzeug's threaded server, or gunicorn
gthread workers with ``--workers``), serve a bare Flask app the same way,
drive both with the same keep-alive client, and fill a store with many
orders without going through HTTP.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
DEMO_ID = 112233
DEMO_KEY = "demo-key-toko-contoh"
WAREHOUSE = "WH-TGR04"
SAMPLES = ROOT / "docs" / "samples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def b2b_body(doc_no: str, sku: str | None = None) -> dict:
    """The B2B sample renamed; with ``sku``, one line of 1 of that SKU."""
    body = sample("create_b2b_request.json")
    body["doc_no"] = doc_no
    if sku is not None:
        body["details"] = [{"line_no": 1, "sku": sku, "qty_ordered": 1, "price": 1000}]
    return body


def b2c_body(so_number: str) -> dict:
    body = sample("create_b2c_request.json")
    body["so_number"] = so_number
    return body


# -- figures ------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    what: str
    figure: float
    unit: str
    baseline: float | None
    baseline_what: str
    target: str
    met: bool | None
    # How the ratio reads: "figure/baseline" (higher is better for rates,
    # lower for times; the target says which).
    ratio: float | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def print_rows(rows: list[Row], title: str) -> None:
    print(f"\n{title}")
    print(render_table(rows))


def render_table(rows: list[Row], markdown: bool = False) -> str:
    header = ["what", "figure", "baseline", "ratio", "target", "met?"]
    lines = []
    for r in rows:
        base = (
            f"{r.baseline:.4g} {r.unit} ({r.baseline_what})"
            if (r.baseline is not None)
            else r.baseline_what
        )
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append([r.what, f"{r.figure:.4g} {r.unit}", base, ratio, r.target, met])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)


def emit(rows: list[Row], title: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.as_dict() for r in rows]))
    else:
        print_rows(rows, title)


def machine_note() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the start"
    )


# -- processes ------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def deleted_files_mb(pid: int) -> float:
    """Size of the unlinked files a process holds open, in MB.

    Where a simulator without ``--db`` keeps the pages of its private
    temporary database that are not in memory.
    """
    total = 0
    folder = Path(f"/proc/{pid}/fd")
    for fd in folder.iterdir():
        try:
            if os.readlink(fd).endswith(" (deleted)"):
                total += fd.stat().st_size
        except OSError:  # closed meanwhile, or not a file
            continue
    return total / 1024 / 1024


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


class Server:
    """A server process on 127.0.0.1 that answers ``ready_path`` once up."""

    def __init__(self, command: list[str], port: int, ready_path: str) -> None:
        self.command = command
        self.port = port
        self.ready_path = ready_path
        self.process: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()
        self.started_in = 0.0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                output = self.log.read().decode(errors="replace")
                raise RuntimeError(f"{self.command} exited:\n{output}")
            if answers(self.port, self.ready_path):
                self.started_in = time.perf_counter() - started
                return self
            time.sleep(0.002)
        raise RuntimeError(f"{self.command} not ready after {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)
        self.log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def answers(port: int, path: str) -> bool:
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=1)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def simulator_server(*options: str, workers: int = 1, db: str | None = None) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "simulator", "serve", "--host", HOST]
    command += ["--port", str(port), *options]
    if db:
        command += ["--db", db]
    if workers > 1:
        command += ["--workers", str(workers)]
    return Server(command, port, "/_sim/health")


def bare_server(workers: int = 1) -> Server:
    """The bare Flask baseline (bench/bare_app.py), served as ``serve`` would be."""
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    return Server(command, port, "/health")


# -- a keep-alive client ------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection, as light as a client gets."""

    def __init__(self, port: int, api_key: str = DEMO_KEY) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)
        self.headers = {"x-api-key": api_key, "content-type": "application/json"}

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=self.headers)
        reply = self.conn.getresponse()
        return reply.status, reply.read()

    def ok(self, method: str, path: str, body: object = None) -> bytes:
        status, data = self.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def timed_calls(call: Callable[[], object], count: int) -> list[float]:
    """Milliseconds per call, ``count`` calls one after the other."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# -- seeding many orders fast ------------------------------------------------------

# The mix of a shared simulator that CI jobs and demos have used for a while:
# many orders nobody moved on, some part-way, many finished. (kind, status)
STATUS_MIX: list[tuple[tuple[str, str], int]] = [
    (("B2C", "REGISTERED"), 15),
    (("B2B", "CREATED"), 20),
    (("B2C", "CREATED"), 5),
    (("B2B", "ALLOCATED"), 5),
    (("B2C", "PICKED"), 5),
    (("B2B", "PACKED"), 5),
    (("B2C", "SHIPPED"), 10),
    (("B2B", "CLOSED"), 15),
    (("B2C", "CLOSED"), 15),
    (("B2B", "CANCELLED"), 5),
]

SEED_SPAN = 30 * 86400  # orders spread over the last 30 days


def seed_orders(simulator, count: int, seed: int = 1) -> None:
    """Store ``count`` orders of the demo client as creates and steps leave them.

    One template order per (kind, status) of :data:`STATUS_MIX` goes through
    the real backend (create, steps, cancel), so its lines, events and
    webhook payloads are what the simulator writes. Every other order is a
    copy of one of them with a new id, number and creation time, inserted
    in one transaction with ``executemany``; its webhooks are marked
    delivered, each with one attempt. No HTTP, no journal.
    """
    backend, store = simulator.backend, simulator.store
    from simulator import schemas

    client = backend.client(DEMO_ID)
    templates = []
    for n, ((kind, status), _) in enumerate(STATUS_MIX):
        number = f"TPL{n:02d}{kind}"
        raw = b2b_body(number) if kind == "B2B" else b2c_body(number)
        schema = schemas.B2BCreateSchema if kind == "B2B" else schemas.B2CCreateSchema
        backend.create_sales_order(client, kind, schemas.load_body(schema, raw))
        order = store.row("SELECT * FROM orders WHERE order_no = ?", (number,))
        if status == "CANCELLED":
            backend.cancel_sales_order(
                client,
                kind,
                {"order_no": number, "warehouse_id": WAREHOUSE, "cancel_reason": "x"},
            )
        elif status != "REGISTERED":
            backend.advance_order(order["id"], {"to": status})
        templates.append(template_rows(store, order["id"]))
    if count <= len(templates):
        return

    rng = random.Random(seed)
    weights = [w for _, w in STATUS_MIX]
    now = simulator.clock.now()
    next_ids = {
        t: (store.value(f"SELECT COALESCE(MAX(id), 0) FROM {t}") or 0) + 1
        for t in ("orders", "order_events", "deliveries", "delivery_attempts")
    }
    ids = {t: itertools.count(start) for t, start in next_ids.items()}
    tables = (
        "orders",
        "order_lines",
        "order_events",
        "deliveries",
        "delivery_attempts",
    )
    batches: dict[str, list[tuple]] = {t: [] for t in tables}
    columns: dict[str, list[str]] = {}

    with store.transaction():
        for i in range(count - len(templates)):
            tpl = rng.choices(templates, weights)[0]
            add_copy(
                batches,
                columns,
                ids,
                tpl,
                f"BULK{i:08d}",
                now - rng.uniform(0, SEED_SPAN),
            )
            if i % 5000 == 4999:  # keep the Python side small
                flush(store, batches, columns)
        flush(store, batches, columns)


def add_copy(
    batches: dict, columns: dict, ids: dict, tpl: dict, number: str, created: float
) -> None:
    """The rows of one copy of a template order, renamed and re-timed."""
    order_id = next(ids["orders"])
    rename = (tpl["order"]["order_no"], number)
    order = dict(
        tpl["order"],
        id=order_id,
        order_no=number,
        created=created,
        updated=created,
        body=tpl["order"]["body"].replace(*rename),
    )
    add(batches, columns, "orders", order)
    for line in tpl["lines"]:
        add(batches, columns, "order_lines", dict(line, order_id=order_id))
    for event in tpl["events"]:
        add(
            batches,
            columns,
            "order_events",
            dict(event, id=next(ids["order_events"]), order_id=order_id, time=created),
        )
    for delivery in tpl["deliveries"]:
        delivery_id = next(ids["deliveries"])
        add(
            batches,
            columns,
            "deliveries",
            dict(
                delivery,
                id=delivery_id,
                order_id=order_id,
                order_no=number,
                payload=delivery["payload"].replace(*rename),
                state="delivered",
                attempts=1,
                next_attempt_at=None,
                created=created,
            ),
        )
        add(
            batches,
            columns,
            "delivery_attempts",
            {
                "id": next(ids["delivery_attempts"]),
                "delivery_id": delivery_id,
                "n": 1,
                "time": created,
                "url": "http://127.0.0.1:9/hook",
                "status_code": 200,
                "duration_ms": 3.1,
                "error": "",
            },
        )


def flush(store, batches: dict, columns: dict) -> None:
    for table, rows in batches.items():
        if rows:
            cols = columns[table]
            marks = ", ".join("?" for _ in cols)
            store.db.conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows
            )
            rows.clear()


def template_rows(store, order_id: int) -> dict:
    return {
        "order": store.row("SELECT * FROM orders WHERE id = ?", (order_id,)),
        "lines": store.rows(
            "SELECT * FROM order_lines WHERE order_id = ?", (order_id,)
        ),
        "events": store.rows(
            "SELECT * FROM order_events WHERE order_id = ?", (order_id,)
        ),
        "deliveries": store.rows(
            "SELECT * FROM deliveries WHERE order_id = ? ORDER BY id", (order_id,)
        ),
    }


def add(batches: dict, columns: dict, table: str, row: dict) -> None:
    columns.setdefault(table, list(row))
    batches[table].append(tuple(row[c] for c in columns[table]))


# -- a seeded simulator in a process of its own ----------------------------------------

SEEDED_SERVER = """
import sys, time
sys.path.insert(0, {root!r})
from werkzeug.serving import make_server
from simulator.app import create_app
from simulator.config import Config
from bench.harness import seed_orders

app = create_app(Config(db_path={db!r}))
started = time.perf_counter()
seed_orders(app.extensions["shipper_sim"], {count})
print("seeded in", round(time.perf_counter() - started, 2), "s", flush=True)
make_server("127.0.0.1", {port}, app, threaded=True).serve_forever()
"""


def seeded_simulator(count: int, db: str | None = None) -> Server:
    """``shipper-sim serve`` as the CLI builds it, holding ``count`` orders.

    The process builds the app with the CLI's defaults (workers running),
    stores the orders straight through its store, then serves it with the
    same threaded werkzeug server as ``serve``. A private temporary database
    unless ``db``.
    """
    port = free_port()
    code = SEEDED_SERVER.format(root=str(ROOT), db=db, count=count, port=port)
    return Server([sys.executable, "-c", code], port, "/_sim/health")


def seed_file(path: str, count: int) -> None:
    """Write ``count`` orders into a database file, for ``serve --db``."""
    from simulator.app import Simulator
    from simulator.config import Config

    simulator = Simulator(Config(db_path=path, start_workers=False))
    try:
        seed_orders(simulator, count)
    finally:
        simulator.store.close()


# -- a webhook receiver that notes arrival times ------------------------------------


class TimingReceiver:
    """Notes ``time.perf_counter()`` of each webhook's arrival, by key."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                arrived = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = body.get("key") or (
                    f"{body.get('order_no')}/{body.get('status_code')}"
                    if "status_code" in body
                    else ""
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._changed:
                    receiver.arrivals.setdefault(key, arrived)
                    receiver._changed.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/hook"

    def wait(self, key: str, timeout: float = 10.0) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: key in self.arrivals, timeout):
                raise RuntimeError(f"webhook {key} did not arrive in {timeout}s")
            return self.arrivals[key]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
