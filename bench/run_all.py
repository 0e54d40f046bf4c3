"""Run every benchmark and print one table.

    python bench/run_all.py [--quick] [--markdown]

Each benchmark runs in a process of its own, one after the other, and
answers its rows as JSON (``--json``); ``bench_reset.py`` is run as it is and
its summary line read. ``--quick`` runs smaller versions (10,000 orders
instead of 100,000, fewer requests) to check the scripts, not to quote.
``--markdown`` prints the table as docs/performance.md shows it.

Every ratio is against a baseline measured in the same run on the same
machine; on a shared machine those are what to compare across runs, not the
absolute figures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from harness import Row, machine_note, render_table

HERE = Path(__file__).resolve().parent

BENCHMARKS = {
    "bench_throughput.py": ([], ["--pairs", "20"]),
    "bench_startup.py": ([], ["--rounds", "3"]),
    "bench_scale.py": ([], ["--orders", "10000", "--requests", "50"]),
    "bench_webhooks.py": ([], ["--orders", "30"]),
}


def run_json(script: str, options: list[str]) -> list[Row]:
    done = subprocess.run(
        [sys.executable, str(HERE / script), *options, "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stdout}\n{done.stderr}")
    return [Row(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]


def run_reset(quick: bool) -> list[Row]:
    """bench_reset.py prints a table of its own; read its summary line."""
    script = HERE / "bench_reset.py"
    if not script.exists():
        return []
    options = ["--rounds", "10"] if quick else []
    done = subprocess.run(
        [sys.executable, str(script), *options],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = re.search(
        r"full reset over HTTP, [^:]*: ([\d.]+) ms median; target < ([\d.]+) ms",
        done.stdout,
    )
    # Its table row: median, p90, the baseline's median, the ratio.
    row = re.search(
        r"^http\s+POST /_sim/reset, (?!.*client_id).*orders\s+"
        r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$",
        done.stdout,
        re.MULTILINE,
    )
    if done.returncode != 0 or summary is None:
        return [
            Row(
                "(f) full reset (bench_reset.py)",
                float("nan"),
                "ms",
                None,
                "did not run: see bench_reset.py",
                "",
                None,
            )
        ]
    figure, target = float(summary.group(1)), float(summary.group(2))
    base = float(row.group(3)) if row else None
    return [
        Row(
            what="(f) full reset over HTTP, populated (bench_reset.py)",
            figure=figure,
            unit="ms",
            baseline=base,
            baseline_what="GET /_sim/health",
            ratio=figure / base if base else None,
            target=f"< {target:g} ms",
            met=figure < target,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    note = machine_note()
    started = time.monotonic()
    rows: list[Row] = []
    for script, (full, quick) in BENCHMARKS.items():
        print(f"running {script} ...", file=sys.stderr, flush=True)
        rows += run_json(script, quick if args.quick else full)
    print("running bench_reset.py ...", file=sys.stderr, flush=True)
    rows += run_reset(args.quick)
    rows.sort(key=lambda r: r.what[:3])

    print(
        f"shipper-sim benchmarks: {note}; "
        f"{time.monotonic() - started:.0f} s in all"
        + (" (--quick: not for quoting)" if args.quick else "")
    )
    print(render_table(rows, markdown=args.markdown))
    missed = [r.what for r in rows if r.met is False]
    if missed:
        print(f"\n{len(missed)} target(s) missed:\n  " + "\n  ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
