"""Time from ``shipper-sim serve`` to its first answered request.

    python bench/bench_startup.py [--rounds 5] [--json]

Each round starts the process and polls ``GET /_sim/health`` every 2 ms
until it answers 200; the figure is the median over the rounds, from the
moment the process is spawned. Baselines measured in the same run: a bare
``python -c pass`` (the interpreter alone) and ``bench/bare_app.py``, a bare
Flask app served the same way, timed the same way on ``/health``. The
target is under 0.5 s for ``serve``; ``serve --workers 2`` is shown beside
it against the bare app under gunicorn.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from harness import Row, bare_server, emit, machine_note, median, simulator_server

TARGET_S = 0.5


def interpreter_start(rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - started)
    return median(samples)


def server_start(make, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        server = make()
        try:
            server.start()
            samples.append(server.started_in)
        finally:
            server.stop()
    return median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    note = machine_note()

    python = interpreter_start(args.rounds)
    bare = server_start(bare_server, args.rounds)
    serve = server_start(simulator_server, args.rounds)
    bare_gunicorn = server_start(lambda: bare_server(workers=2), args.rounds)
    serve_workers = server_start(lambda: simulator_server(workers=2), args.rounds)

    rows = [
        Row("(b) python -c pass", python, "s", None, "the interpreter alone", "", None),
        Row(
            "(b) serve: start to first answer",
            serve,
            "s",
            bare,
            "bare Flask, same server",
            f"< {TARGET_S} s",
            serve < TARGET_S,
            ratio=serve / bare,
        ),
        Row(
            "(b) serve --workers 2: start to first answer",
            serve_workers,
            "s",
            bare_gunicorn,
            "bare Flask, gunicorn 2 workers",
            "",
            None,
            ratio=serve_workers / bare_gunicorn,
        ),
    ]
    emit(rows, f"bench_startup ({note})", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
