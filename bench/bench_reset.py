"""How long a reset takes, against a round trip measured in the same run.

    python bench/bench_reset.py [--rounds 50] [--clients 5] [--orders 10]

Starts a simulator in this process (no background workers, so nothing else
runs meanwhile) and times, in milliseconds:

- ``POST /_sim/reset`` (everything), on an empty simulator and on one
  holding ``clients x orders`` shipped orders with their webhooks and
  journal;
- ``POST /_sim/reset?client_id=`` (one client), on a client holding
  ``orders`` shipped orders while the others keep theirs;
- what the pytest plugin does per test: a new client with a copy of the
  demo stock, then its teardown (faults cleared, client reset).

The baseline is ``GET /_sim/health``, the cheapest call there is, timed in
the same rounds, alternating with the operation and after the same untimed
preparation (filling the store leaves caches cold and the server thread
asleep, which slows whatever call comes next). Each row is timed over HTTP
(a keep-alive ``requests`` session against the threaded server, as a
test's own code calls it) and in process (Flask's test client, the
transport the plugin uses for its own calls), which shows the simulator's
share without the socket.

The target is a full reset under 10 ms over HTTP; ``--strict`` exits 1
when it is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.testing import SimClient, SimulatorServer  # noqa: E402

TARGET_MS = 10.0

Action = Callable[[], object]


def paired(
    action: Action, baseline: Action, prepare: Action | None, rounds: int
) -> tuple[list[float], list[float]]:
    """Milliseconds of ``action`` and of ``baseline``, in alternate rounds.

    ``prepare`` runs, untimed, before every timed call of either.
    """
    timings: tuple[list[float], list[float]] = ([], [])
    for n in range(2 * rounds):
        if prepare is not None:
            prepare()
        call = action if n % 2 == 0 else baseline
        started = time.perf_counter()
        call()
        timings[n % 2].append((time.perf_counter() - started) * 1000)
    return timings


def populate(server: SimulatorServer, clients: int, orders: int) -> list[SimClient]:
    """``clients`` clients, each with ``orders`` shipped orders."""
    made = []
    for _ in range(clients):
        client = server.new_client()
        for _ in range(orders):
            client.advance(client.create_b2c(), to="SHIPPED")
        made.append(client)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    few = max(5, args.rounds // 3)  # rounds of the rows that fill the store

    rows: list[tuple[str, str, list[float], list[float]]] = []
    with SimulatorServer(start_workers=False) as server, requests.Session() as http:
        test_client = server.app.test_client()

        def over_http(method: str, path: str) -> Action:
            def call() -> None:
                reply = http.request(method, server.url + path)
                assert reply.status_code == 200, reply.text

            return call

        def in_process(method: str, path: str) -> Action:
            def call() -> None:
                reply = test_client.open(path, method=method)
                assert reply.status_code == 200, reply.get_json()

            return call

        def fill() -> None:
            server.reset()
            populate(server, args.clients, args.orders)

        for _ in range(20):  # warm both paths up before timing
            over_http("GET", "/_sim/health")()
            in_process("GET", "/_sim/health")()

        for transport, make in (("http", over_http), ("in-process", in_process)):
            health = make("GET", "/_sim/health")
            full_reset = make("POST", "/_sim/reset")

            def measure(
                name: str,
                action: Action,
                prepare: Action | None,
                n: int,
                transport: str = transport,
                health: Action = health,
            ) -> None:
                rows.append((transport, name, *paired(action, health, prepare, n)))

            measure("POST /_sim/reset, empty", full_reset, None, args.rounds)
            measure(
                f"POST /_sim/reset, {args.clients}x{args.orders} shipped orders",
                full_reset,
                fill,
                few,
            )

            # One client refilled before each call, the others left as they are.
            server.reset()
            others = populate(server, args.clients - 1, args.orders)
            target: list[SimClient] = []

            def refill_target(target: list[SimClient] = target) -> None:
                target[:] = populate(server, 1, args.orders)

            def reset_target(target: list[SimClient] = target, make=make) -> None:
                make("POST", f"/_sim/reset?client_id={target[0].client_id}")()

            measure(
                f"POST /_sim/reset?client_id=, {args.orders} shipped orders",
                reset_target,
                refill_target,
                few,
            )
            kept = sum(len(c.deliveries()) for c in others)
            assert kept == (args.clients - 1) * args.orders * 8, kept

        made: list[SimClient] = []
        in_process_health = in_process("GET", "/_sim/health")
        rows.append(
            (
                "in-process",
                "plugin: a new client with the demo stock",
                *paired(
                    lambda: made.append(server.new_client()),
                    in_process_health,
                    None,
                    args.rounds,
                ),
            )
        )
        rows.append(
            (
                "in-process",
                "plugin: a client's teardown (faults, reset)",
                *paired(
                    lambda: made.pop().close(), in_process_health, None, args.rounds
                ),
            )
        )

    report(rows, args.rounds, few)
    full = next(
        statistics.median(s)
        for transport, name, s, _ in rows
        if transport == "http" and name.endswith("orders") and "client_id" not in name
    )
    met = full < TARGET_MS
    print(
        f"\nfull reset over HTTP, filled store: {full:.2f} ms median; "
        f"target < {TARGET_MS:g} ms: {'met' if met else 'MISSED'}"
    )
    return 1 if args.strict and not met else 0


def report(
    rows: list[tuple[str, str, list[float], list[float]]], rounds: int, few: int
) -> None:
    print(
        f"rounds: {rounds} ({few} for rows that fill the store); milliseconds; "
        "baseline: GET /_sim/health in the same rounds\n"
    )
    print(
        f"{'transport':<11} {'operation':<48} {'median':>7} {'p90':>7} "
        f"{'base':>6} {'x base':>7}"
    )
    for transport, name, samples, base in rows:
        median, base_median = statistics.median(samples), statistics.median(base)
        p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
        print(
            f"{transport:<11} {name:<48} {median:7.2f} {p90:7.2f} "
            f"{base_median:6.2f} {median / base_median:7.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
