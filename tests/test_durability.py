"""With ``--db``, a crash loses nothing that was acknowledged.

Each test ``kill -9``s every process of a real server at a moment of its
choosing (seeded, so a failure repeats), restarts it on the same file and
checks what survived: every create answered 200 is there, and webhooks that
were still waiting go out after the restart. Both ways of serving: one
process, and ``--workers 2``.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import b2b_body
from serving import Api, CountingReceiver, SimServer, wait_for

KILLS = 5
STREAM_THREADS = 4
SERVING = pytest.mark.parametrize("workers", [1, 2], ids=["single", "workers"])


class CreateStream:
    """Threads that create B2B orders, one new number each, until stopped.

    Remembers every number whose create was answered 200: those orders were
    acknowledged and must survive anything that happens afterwards.
    """

    def __init__(self, api: Api, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self.acknowledged: list[str] = []
        self.failed = 0
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, daemon=True)
            for _ in range(STREAM_THREADS)
        ]

    def __enter__(self) -> CreateStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)
        assert not any(t.is_alive() for t in self._threads), "a create hung"

    def _run(self) -> None:
        deadline = time.monotonic() + 30  # bounded, whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                number = f"{self.prefix}-{next(self._serial):05d}"
            try:
                response = self.api.create("wms", b2b_body(number))
            except requests.RequestException:
                with self._lock:
                    self.failed += 1
                time.sleep(0.01)
                continue
            if response.status_code == 200:
                with self._lock:
                    self.acknowledged.append(number)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)


def missing_orders(api: Api, numbers: list[str]) -> list[str]:
    """The numbers the detail endpoint does not know (asked 8 at a time)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = pool.map(lambda n: api.detail("wms", n).status_code, numbers)
        return [n for n, status in zip(numbers, statuses, strict=True) if status != 200]


@SERVING
def test_kill_9_during_creates_loses_no_acknowledged_order(workers, tmp_path):
    db = tmp_path / "state.db"
    rng = random.Random(20221 + workers)
    server = SimServer(db=db, workers=workers)
    acknowledged: list[str] = []
    last_round: list[str] = []
    try:
        for round_no in range(1, KILLS + 1):
            server.start()
            api = Api(server.url)
            # What the last crash interrupted: every acknowledged create is in.
            assert missing_orders(api, last_round) == []

            with CreateStream(api, f"K{workers}R{round_no}") as stream:
                # Kill after some orders are in, at a random moment.
                wait_for(lambda s=stream: s.count() >= 5, 30, "the first creates")
                time.sleep(rng.uniform(0.0, 0.4))
                server.kill()
            last_round = stream.acknowledged
            acknowledged += last_round

        server.start()
        api = Api(server.url)
        # And after all the crashes, every order acknowledged in any round.
        assert missing_orders(api, acknowledged) == []
        assert len(acknowledged) >= KILLS * 5
        server.stop()
    finally:
        server.close()

    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {r[0] for r in check.execute("SELECT order_no FROM orders")}
    assert set(acknowledged) <= stored


@SERVING
def test_pending_webhooks_go_out_after_a_kill_9_and_restart(workers, tmp_path):
    db = tmp_path / "state.db"
    receiver = CountingReceiver.down()  # deliveries are refused for now
    # Long enough between retries that none runs out before the kill.
    server = SimServer(
        "--webhook-url",
        receiver.url,
        "--retry-delays",
        "2,2,2",
        db=db,
        workers=workers,
    )
    numbers = [f"PENDING-{i}" for i in range(5)]
    try:
        server.start()
        api = Api(server.url)
        for number in numbers:
            assert api.create("wms", b2b_body(number)).status_code == 200

        # Each order queued two webhooks, SO created and status 00, which
        # waits behind the first. Kill once every first one has been refused.
        def first_ones_refused() -> bool:
            found = api.deliveries()
            return (
                len(found) == 10
                and all(d["state"] == "pending" for d in found)
                and all(d["attempts"] for d in found if d["event"] == "so_created")
            )

        wait_for(first_ones_refused, 20, "every order's first webhook refused")
        server.kill()

        receiver.up()
        server.start()
        receiver.wait_total(10, timeout=30)
        wait_for(
            lambda: all(
                d["state"] == "delivered" for d in Api(server.url).deliveries()
            ),
            10,
            "every delivery recorded as delivered",
        )
        time.sleep(0.5)  # room for a second copy
        expected = {(n, "so_created", ""): 1 for n in numbers}
        expected |= {(n, "status", "00"): 1 for n in numbers}
        assert dict(receiver.counts) == expected
    finally:
        server.close()
        receiver.close()
