"""``shipper-sim demo`` as a user runs it: a subprocess on a free port."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from simulator.demo import describe_webhook

WEBHOOK_LINE = re.compile(
    r"^\d\d:\d\d:\d\d  (so_created|status|pgi)\s+(\S+/\S+)\s+(.+)$"
)


def demo_command() -> list[str]:
    beside = Path(sys.executable).with_name("shipper-sim")
    found = str(beside) if beside.exists() else shutil.which("shipper-sim")
    return [found] if found else [sys.executable, "-m", "simulator"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """A running ``shipper-sim demo`` whose output lines can be waited for."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*demo_command(), "demo", "--port", str(self.port), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float) -> list[str]:
        """Read lines until ``predicate(all lines so far)`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            if self.process.poll() is not None:
                # Gone: what it printed last is still to be read.
                self._reader.join(timeout=2)
                self._drain()
                if predicate(self.lines):
                    break
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(
                    "the demo did not print what was expected; it printed:\n"
                    + "\n".join(self.lines)
                    + f"\nexit status: {self.process.poll()}"
                )
            try:
                self.lines.append(self._queue.get(timeout=0.2))
            except queue.Empty:
                pass
        return self.lines

    def _drain(self) -> None:
        while not self._queue.empty():
            self.lines.append(self._queue.get())

    def stop(self, signum: int) -> tuple[int, float, str]:
        """Send ``signum``; answers the exit status, seconds taken and stderr."""
        started = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        taken = time.monotonic() - started
        return code, taken, self.process.stderr.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def demo_factory():
    started: list[Demo] = []

    def start(*options: str) -> Demo:
        demo = Demo(*options)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        demo.close()


def test_demo_prints_webhooks_from_both_kinds_and_stops_on_sigint(demo_factory):
    demo = demo_factory("--step-delay", "0.3", "--rate", "120", "--seed", "7")

    banner = demo.wait_for(lambda ls: any("dashboard:" in line for line in ls), 10)
    url = next(line.split()[-1] for line in banner if "dashboard:" in line)
    assert url == f"http://127.0.0.1:{demo.port}/_sim/"
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "shipper-sim" in page.text

    def both_kinds_moving(lines: list[str]) -> bool:
        summaries = [m.group(3) for m in map(WEBHOOK_LINE.match, lines) if m]
        return (
            any("SO created (B2C)" in s for s in summaries)
            and any("SO created (B2B)" in s for s in summaries)
            and any(re.match(r"\d\d \w", s) for s in summaries)
        )

    demo.wait_for(both_kinds_moving, 15)
    orders = requests.get(f"http://127.0.0.1:{demo.port}/_sim/orders", timeout=5)
    assert len({o["client_id"] for o in orders.json()["orders"]}) >= 2

    code, taken, stderr = demo.stop(signal.SIGINT)
    assert code == 0, stderr
    assert taken < 5
    assert "Traceback" not in stderr
    demo.wait_for(lambda ls: any("demo stopped" in line for line in ls), 2)


def test_demo_stops_cleanly_on_sigterm(demo_factory):
    demo = demo_factory("--step-delay", "0.2", "--rate", "120")
    demo.wait_for(lambda ls: len([line for line in ls if WEBHOOK_LINE.match(line)]), 15)

    code, taken, stderr = demo.stop(signal.SIGTERM)

    assert code == 0, stderr
    assert taken < 5
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{demo.port}/_sim/health", timeout=2)


def test_demo_refuses_a_port_in_use(demo_factory):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run(
            [*demo_command(), "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in process.stderr


def test_webhook_lines_read_the_body_as_a_client_would():
    status = {
        "warehouse_id": "WH-TGR04",
        "order_no": "SO-1",
        "status_code": "40",
        "status": "Allocated",
    }
    pgi = {
        "warehouse_id": "WH-BAL",
        "so_reference_a": "SO-2",
        "pgi_date": "x",
        "delivery_no": "CGK1",
        "details": [{"qty_shipped": 2}, {"qty_shipped": 1}],
    }
    created = {
        "group_key": "g",
        "items": [
            {
                "payload": json.dumps(
                    {"warehouse_id": "WH-BAL", "doc_no": "D-3", "so_status": "CREATED"}
                )
            }
        ],
    }

    assert describe_webhook(status) == ("status", "WH-TGR04/SO-1", "40 Allocated")
    assert describe_webhook(pgi) == (
        "pgi",
        "WH-BAL/SO-2",
        "PGI 3 units on 2 lines, AWB CGK1",
    )
    assert describe_webhook(created) == (
        "so_created",
        "WH-BAL/D-3",
        "SO created (B2B), CREATED",
    )
