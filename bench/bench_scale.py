"""Latency and memory with 100,000 stored orders, against the same with 100.

    python bench/bench_scale.py [--orders 100000] [--requests 200] [--json]

(c) Latency: a simulator built as ``shipper-sim serve`` builds it (state in
memory, workers running) is filled with orders straight through its store
(see ``harness.seed_orders``: all the demo client's, in a mix of statuses,
with their lines, events and delivered webhooks), then served by the same
threaded server. A keep-alive client times each call ``--requests`` times,
taking turns with the same call on the baseline, which runs at the same
time: the WMS and OMS lists (first page, and filtered by status), the
WMS and OMS details of random orders, the control API's order timeline,
the OMS stock and ``/_sim/changes`` (what an open dashboard asks every
second). The baseline is the same call on a simulator holding 100
orders, started the same way; the target is a median within
1.5x of it.

(d) Memory: the resident set (VmRSS) of the server process, empty (a fresh
``shipper-sim serve``: the baseline), then holding the orders without
``--db`` (the default: a private temporary database, whose pages beyond
SQLite's cache live in an unlinked file, reported beside it) and in a
``--db`` file (``serve --db``), each after the latency calls have run. The
target is under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from harness import (
    WAREHOUSE,
    Client,
    Row,
    deleted_files_mb,
    emit,
    machine_note,
    median,
    percentile,
    rss_mb,
    seed_file,
    seeded_simulator,
    simulator_server,
    timed_calls,
)

TARGET_RATIO = 1.5
TARGET_RSS_MB = 300.0
API = "/v3/fulfillment"


def order_numbers(client: Client, outbound_type: str, count: int = 100) -> list[str]:
    data = json.loads(
        client.ok("GET", f"{API}/outbounds/{outbound_type}?limit={count}")
    )
    return [o["order_no"] for o in data["data"]["outbounds"]]


def calls(client: Client, rng: random.Random) -> dict[str, callable]:
    in_wms = order_numbers(client, "WMS")
    in_oms = order_numbers(client, "OMS")

    def detail(kind: str, numbers: list[str]):
        return lambda: client.ok(
            "GET", f"{API}/warehouse/{WAREHOUSE}/outbound/{kind}/{rng.choice(numbers)}"
        )

    def get(path: str):
        return lambda: client.ok("GET", path)

    return {
        "list WMS, page 1": get(f"{API}/outbounds/WMS"),
        "list OMS, page 1": get(f"{API}/outbounds/OMS"),
        "list WMS, so_status=SHIPPED": get(f"{API}/outbounds/WMS?so_status=SHIPPED"),
        "detail WMS": detail("wms", in_wms),
        "detail OMS": detail("oms", in_oms),
        "control: order timeline": lambda: client.ok(
            "GET", f"/_sim/orders/{WAREHOUSE}/{rng.choice(in_wms)}"
        ),
        "stock OMS, one SKU": get(
            f"{API}/inventory/stock?warehouse_code={WAREHOUSE}&stock_type=OMS"
            "&sku=SKU-TSHIRT-M"
        ),
        "control: changes, the dashboard's poll": get("/_sim/changes?client_id=112233"),
    }


def measure(port: int, requests: int) -> dict[str, list[float]]:
    """Milliseconds per call of each endpoint on one server."""
    return measure_side_by_side([port], requests)[0]


def measure_side_by_side(ports: list[int], requests: int) -> list[dict]:
    """The same calls on each server, taking turns call by call.

    Turns keep a change in the machine's load from landing on one server's
    figures only.
    """
    clients = [Client(port) for port in ports]
    try:
        tables = [calls(c, random.Random(7)) for c in clients]
        found = [{name: [] for name in tables[0]} for _ in ports]
        for name in tables[0]:
            for table in tables:
                timed_calls(table[name], 10)  # warm up
            sides = list(enumerate(tables))
            for i in range(requests):
                # Each goes first in every other turn.
                for side, table in sides if i % 2 == 0 else sides[::-1]:
                    found[side][name] += timed_calls(table[name], 1)
        return found
    finally:
        for client in clients:
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    note = machine_note()

    # The empty simulator: the memory baseline.
    with simulator_server() as empty:
        Client(empty.port).ok("GET", f"{API}/outbounds/WMS")
        empty_rss = rss_mb(empty.process.pid)

    with seeded_simulator(args.small) as few, seeded_simulator(args.orders) as many:
        small, big = measure_side_by_side([few.port, many.port], args.requests)
        rss_memory = rss_mb(many.process.pid)
        spilled = deleted_files_mb(many.process.pid)

    with tempfile.TemporaryDirectory(prefix="shipper-sim-bench-") as folder:
        db = str(Path(folder) / "state.db")
        seed_file(db, args.orders)
        with simulator_server(db=db) as on_file:
            measure(on_file.port, max(20, args.requests // 4))
            rss_file = rss_mb(on_file.process.pid)

    rows = []
    for name in small:
        base, figure = median(small[name]), median(big[name])
        rows.append(
            Row(
                what=f"(c) {name} at {args.orders:,} orders, median "
                f"(p95 {percentile(big[name], 0.95):.3g} ms)",
                figure=figure,
                unit="ms",
                baseline=base,
                baseline_what=f"{args.small} orders",
                ratio=figure / base,
                target=f"<= {TARGET_RATIO}x",
                met=figure / base <= TARGET_RATIO,
            )
        )
    for what, figure in (
        (f"(d) RSS, {args.orders:,} orders, no --db (default)", rss_memory),
        (f"(d) RSS, {args.orders:,} orders in a --db file", rss_file),
    ):
        rows.append(
            Row(
                what=what,
                figure=figure,
                unit="MB",
                baseline=empty_rss,
                baseline_what="empty serve",
                ratio=figure / empty_rss,
                target=f"< {TARGET_RSS_MB:g} MB",
                met=figure < TARGET_RSS_MB,
            )
        )
    rows.insert(
        len(rows) - 1,
        Row(
            what="(d) the same: its temporary file on disk (not resident)",
            figure=spilled,
            unit="MB",
            baseline=None,
            baseline_what="",
            ratio=None,
            target="",
            met=None,
        ),
    )
    emit(rows, f"bench_scale ({note})", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
