"""Webhook delivery latency, from a warehouse step to the receiver.

    python bench/bench_webhooks.py [--orders 100] [--json]

A receiver in this process notes when each webhook arrives. For each of
``--orders`` B2B orders, one after the other, the clock starts just before
``POST /_sim/orders/.../advance {"step": "allocate"}`` is sent and stops when
the order's status ``40`` webhook arrives: the whole path of a step's webhook
(the request, the commit, the dispatcher picking the delivery up, the POST).
The baseline is a bare ``requests`` POST of a same-sized body to the same
receiver over a keep-alive session, as the dispatcher sends, timed the same
way. Both ``serve`` (the dispatcher is woken by the step) and
``serve --workers 2`` (the background process polls every 10 ms) are
measured. Target: p95 under 50 ms on loopback.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import requests
from harness import (
    DEMO_ID,
    WAREHOUSE,
    Client,
    Row,
    TimingReceiver,
    b2b_body,
    emit,
    machine_note,
    median,
    percentile,
    simulator_server,
)

TARGET_P95_MS = 50.0
SKU = "SKU-BENCH-HOOKS"  # plenty of it, so every allocation is full (40)


def step_latencies(
    port: int, receiver: TimingReceiver, orders: int, tag: str
) -> list[float]:
    client = Client(port)
    try:
        client.ok("PATCH", f"/_sim/clients/{DEMO_ID}", {"webhook_url": receiver.url})
        client.ok(
            "PUT",
            "/_sim/stock",
            {
                "client_id": DEMO_ID,
                "warehouse_id": WAREHOUSE,
                "sku": SKU,
                "qty": 1_000_000,
            },
        )
        numbers = [f"HOOKLAT{tag}{i:05d}" for i in range(orders)]
        for number in numbers:
            client.ok("POST", "/v3/fulfillment/outbound/wms", b2b_body(number, SKU))
        for number in numbers:  # let the creates' own webhooks go first
            receiver.wait(f"{number}/00", timeout=30)

        samples = []
        for number in numbers:
            started = time.perf_counter()
            client.ok(
                "POST",
                f"/_sim/orders/{WAREHOUSE}/{number}/advance",
                {"step": "allocate"},
            )
            arrived = receiver.wait(f"{number}/40", timeout=30)
            samples.append((arrived - started) * 1000)
        return samples
    finally:
        client.close()


def bare_post_latencies(receiver: TimingReceiver, count: int) -> list[float]:
    payload = {"warehouse_id": WAREHOUSE, "status_code": "40", "filler": "x" * 300}
    samples = []
    with requests.Session() as session:
        for i in range(count + 5):
            key = f"bare-{i}"
            started = time.perf_counter()
            session.post(
                receiver.url,
                data=json.dumps({**payload, "key": key}).encode(),
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            arrived = receiver.wait(key)
            if i >= 5:  # the first few open the connection
                samples.append((arrived - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    note = machine_note()

    receiver = TimingReceiver()
    try:
        baseline = bare_post_latencies(receiver, args.orders)
        measured = {}
        with tempfile.TemporaryDirectory(prefix="shipper-sim-bench-") as folder:
            for tag, (label, server) in enumerate(
                (
                    ("serve", simulator_server()),
                    (
                        "serve --workers 2",
                        simulator_server(workers=2, db=str(Path(folder) / "state.db")),
                    ),
                )
            ):
                with server:
                    measured[label] = step_latencies(
                        server.port, receiver, args.orders, str(tag)
                    )
    finally:
        receiver.close()

    base_p95 = percentile(baseline, 0.95)
    rows = []
    for label, samples in measured.items():
        p95 = percentile(samples, 0.95)
        rows.append(
            Row(
                what=f"(e) step to webhook, {label}, p95 (median "
                f"{median(samples):.3g} ms)",
                figure=p95,
                unit="ms",
                baseline=base_p95,
                baseline_what="bare requests.post, p95",
                ratio=p95 / base_p95,
                target=f"p95 < {TARGET_P95_MS:g} ms",
                met=p95 < TARGET_P95_MS,
            )
        )
    emit(rows, f"bench_webhooks ({note})", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
