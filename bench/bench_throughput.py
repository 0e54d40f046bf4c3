"""Create + detail requests per second, against a bare Flask app served alike.

    python bench/bench_throughput.py [--threads 8] [--pairs 150] [--json]

Each of ``--threads`` client threads holds one keep-alive connection and
runs ``--pairs`` times: create a B2B order (the sample body, a new
``doc_no``), then read its WMS detail. The baseline is the same client, the
same requests and the same server (werkzeug's threaded server, or with
``--workers`` gunicorn with the simulator's own worker class) in front of
``bench/bare_app.py``, a Flask app whose two endpoints parse the body and
answer a small JSON document. Both servers run at once and take turns,
``--rounds`` pairs of bursts (which of the two goes first alternates); the
ratio is the median of the pairs' ratios, so that a change in what else the
machine runs meets both sides of a pair alike. Each server's first burst
after it started is not timed: it measures a start, not a pace. The client
shares the machine's cores with the server in both. A burst lasts about a
second against the bare app under ``--workers``: shorter ones weigh the
start and the last stragglers of a burst more, and those cost the faster
side more, which flatters the simulator. Target: at least half the bare
app's rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import (
    WAREHOUSE,
    Client,
    Row,
    b2b_body,
    bare_server,
    emit,
    machine_note,
    median,
    simulator_server,
)

TARGET_RATIO = 0.5


def run_load(port: int, threads: int, pairs: int, tag: str) -> float:
    """Requests per second over all threads (two requests per pair)."""
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)

    def client_thread(n: int) -> None:
        client = Client(port)
        try:
            for i in range(3):  # warm the connection and the server up
                run_pair(client, f"W{tag}{n:02d}{i:03d}")
            barrier.wait(timeout=60)
            for i in range(pairs):
                run_pair(client, f"{tag}{n:02d}{i:05d}")
        except Exception as exc:  # reported below, after the timing
            errors.append(repr(exc))
            barrier.abort()
        finally:
            client.close()

    workers = [
        threading.Thread(target=client_thread, args=(n,)) for n in range(threads)
    ]
    for w in workers:
        w.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    for w in workers:
        w.join(timeout=300)
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"load against port {port} failed: {errors[:3]}")
    return threads * pairs * 2 / elapsed


def run_pair(client: Client, doc_no: str) -> None:
    client.ok("POST", "/v3/fulfillment/outbound/wms", b2b_body(doc_no))
    client.ok("GET", f"/v3/fulfillment/warehouse/{WAREHOUSE}/outbound/wms/{doc_no}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=150, help="per thread and burst")
    parser.add_argument("--rounds", type=int, default=5, help="bursts against each")
    parser.add_argument("--workers", type=int, default=2, help="for the gunicorn run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    note = machine_note()

    rows = []
    with tempfile.TemporaryDirectory(prefix="shipper-sim-bench-") as folder:
        db = str(Path(folder) / "state.db")
        for label, sim, bare in (
            ("serve (1 process, threads)", simulator_server(), bare_server()),
            (
                f"serve --workers {args.workers} --db",
                simulator_server(workers=args.workers, db=db),
                bare_server(workers=args.workers),
            ),
        ):
            # Both up at once, bursts taking turns in pairs, so that a change
            # in what else the machine runs meets both sides of a pair alike.
            with bare, sim:
                # Untimed: a server's first burst runs slower than the rest
                # (the simulator's at three quarters of its later pace).
                for server in (bare, sim):
                    run_load(server.port, args.threads, args.pairs, "U")
                baselines, figures = [], []
                for n in range(args.rounds):
                    sides = [(bare, baselines, "B"), (sim, figures, "S")]
                    for server, rates, tag in sides[:: 1 if n % 2 else -1]:
                        rates.append(
                            run_load(server.port, args.threads, args.pairs, f"{tag}{n}")
                        )
            ratio = median([f / b for f, b in zip(figures, baselines, strict=True)])
            rows.append(
                Row(
                    what=f"(a) create+detail, {label}, {args.threads} client threads",
                    figure=median(figures),
                    unit="req/s",
                    baseline=median(baselines),
                    baseline_what="bare Flask, same server",
                    ratio=ratio,
                    target=f">= {TARGET_RATIO}x",
                    met=ratio >= TARGET_RATIO,
                )
            )
    emit(rows, f"bench_throughput ({note})", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
