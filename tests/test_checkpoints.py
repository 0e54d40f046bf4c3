"""With a database file, the WAL is copied back off the commits' path.

Commits no longer copy the WAL back into the database file themselves (two
fsyncs that every other writer would wait out): a checkpointer thread does,
and keeps the WAL from growing without end even while two stores, as two
processes of ``serve --workers`` would, write in turn all along.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import DEMO_KEY, b2b_body, close_app
from serving import SimServer

from simulator.app import create_app
from simulator.config import Config
from simulator.store import PAGE_SIZE, WAL_SIZE_LIMIT, Checkpointer, Store

PAGE = PAGE_SIZE
ROW = "x" * (PAGE * 3 // 4)  # a page each
# Between two commits of one writer, as between the requests of a client.
PAUSE = 0.001


def wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // PAGE if wal.exists() else 0


def fill(store: Store, rows: int, start: int = 0, pause: float = 0) -> None:
    """Commit ``rows`` rows of a page each, one commit per row."""
    for n in range(start, start + rows):
        with store.transaction():
            store.execute("INSERT INTO filler (n, text) VALUES (?, ?)", (n, ROW))
        time.sleep(pause)


def filler_store(path: Path, shared: bool = False) -> Store:
    store = Store(str(path), shared=shared)
    store.execute("CREATE TABLE IF NOT EXISTS filler (n INTEGER, text TEXT)")
    return store


def test_commits_leave_the_copy_to_the_checkpointer(tmp_path):
    path = tmp_path / "state.db"
    store = filler_store(path)
    fill(store, 1500)
    on_its_own = wal_pages(path)
    store.leave_checkpoints_to_background()
    fill(store, 1500, start=1500)
    left = wal_pages(path)
    store.close()

    # SQLite's own copy starts the WAL over every 1,000 pages...
    assert on_its_own < 1300
    # ...and no longer does, until the fallback length.
    assert left > 2500


def test_the_checkpointer_copies_everything_back(tmp_path):
    path = tmp_path / "state.db"
    store = filler_store(path)
    checkpointer = Checkpointer(store, every=3600)
    store.leave_checkpoints_to_background()
    checkpointer.run_once()  # the tables, into the file
    fill(store, 300)
    before = copy_of_the_file_alone(path, tmp_path / "before.db")

    assert checkpointer.run_once() >= 300
    after = copy_of_the_file_alone(path, tmp_path / "after.db")
    checkpointer.stop()
    store.close()

    # The database file, without its WAL, now holds every row.
    assert rows_in(before) == 0
    assert rows_in(after) == 300


def copy_of_the_file_alone(path: Path, copy: Path) -> Path:
    copy.write_bytes(path.read_bytes())
    return copy


def rows_in(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM filler").fetchone()[0]


def write_in_turn(path: Path, restart_pages: int) -> tuple[int, int]:
    """Two stores on one file commit 1,500 pages each, in turn, while a
    checkpointer runs; answers the rows written and the WAL's longest length."""
    first, second = filler_store(path, shared=True), filler_store(path, shared=True)
    for store in (first, second):
        store.leave_checkpoints_to_background()
    checkpointer = Checkpointer(first, every=0.005, restart_pages=restart_pages)
    checkpointer.start()
    errors: list[BaseException] = []

    def write(store: Store, offset: int) -> None:
        try:
            fill(store, 1500, start=offset, pause=PAUSE)
        except BaseException as exc:  # reported below
            errors.append(exc)

    writers = [
        threading.Thread(target=write, args=(store, n * 10_000))
        for n, store in enumerate((first, second))
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    checkpointer.stop()
    rows = first.value("SELECT COUNT(*) FROM filler")
    pages = wal_pages(path)  # before the last connection closes and removes it
    first.close()
    second.close()
    assert not errors
    return rows, pages


def test_two_writers_in_turn_keep_a_short_wal(tmp_path):
    """Neither writer ever finds the WAL fully copied: the restart is needed."""
    rows, pages = write_in_turn(tmp_path / "state.db", restart_pages=200)

    assert rows == 3000
    # 3,000 pages written; without the restart the WAL would hold them all.
    assert pages < 4 * 200


def test_a_copy_made_while_a_writer_is_busy_leaves_the_wal_growing(tmp_path):
    """Why the restart is needed: a commit whose snapshot is older than the
    copy goes on at the end of the WAL, however much of it was copied back.
    Two processes writing in turn are in that case nearly all the time."""
    path = tmp_path / "state.db"
    store = filler_store(path)
    store.leave_checkpoints_to_background()
    checkpointer = Checkpointer(store, every=3600, restart_pages=10**9)
    lengths = []
    for n in range(300):
        with store.transaction():
            store.execute("INSERT INTO filler (n, text) VALUES (?, ?)", (n, ROW))
            # Everything committed so far is copied back, meanwhile.
            lengths.append(checkpointer.run_once())
    checkpointer.stop()
    store.close()

    assert lengths == sorted(lengths)
    assert lengths[-1] > 600


def test_a_reader_that_stays_does_not_keep_stalling_the_writers(tmp_path):
    """A restart that the reader blocks waits for it once, then not until the
    WAL has grown by the restart length again; it goes through once the
    reader has left."""
    path = tmp_path / "state.db"
    store = filler_store(path)
    checkpointer = Checkpointer(store, every=3600, restart_pages=100)
    store.leave_checkpoints_to_background()
    restarts = count_restarts(checkpointer)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM filler").fetchone()  # holds its snapshot

    fill(store, 120)  # about 3 pages a commit
    checkpointer.run_once()  # a restart the reader blocks
    fill(store, 5)
    checkpointer.run_once()  # no second try yet
    blocked = list(restarts)
    reader.execute("COMMIT")
    reader.close()
    fill(store, 60)
    checkpointer.run_once()  # past 120 + 100 pages: it tries, and it works
    fill(store, 5)
    after_restart = checkpointer.run_once()
    checkpointer.stop()
    store.close()

    assert [busy for busy, _, _ in blocked] == [1]
    assert [busy for busy, _, _ in restarts] == [1, 0]
    # The commits after the restart wrote the WAL from its beginning.
    assert after_restart < 40


def count_restarts(checkpointer: Checkpointer) -> list[tuple]:
    """Record each restart the checkpointer tries, with SQLite's answer."""
    restarts: list[tuple] = []
    checkpoint = checkpointer._checkpoint

    def counted(mode: str) -> tuple[int, int, int]:
        answer = checkpoint(mode)
        if mode == "RESTART":
            restarts.append(answer)
        return answer

    checkpointer._checkpoint = counted
    return restarts


def test_the_wal_file_shrinks_back_after_one_large_transaction(tmp_path):
    """A reset writes one transaction as long as the data; the file it leaves
    behind does not stay that large."""
    path = tmp_path / "state.db"
    store = filler_store(path)
    checkpointer = Checkpointer(store, every=3600, restart_pages=100)
    store.leave_checkpoints_to_background()
    longer = WAL_SIZE_LIMIT // PAGE + 1000
    with store.transaction():
        for n in range(longer):
            store.execute("INSERT INTO filler (n, text) VALUES (?, ?)", (n, ROW))
    large = wal_pages(path)
    checkpointer.run_once()  # copies it back, starts it over
    fill(store, 1)  # the first commit after: the file is cut
    after = wal_pages(path)
    checkpointer.stop()
    store.close()

    assert large > longer
    assert after * PAGE <= WAL_SIZE_LIMIT < large * PAGE


def test_a_checkpointer_needs_a_file():
    with pytest.raises(ValueError):
        Checkpointer(Store())


def test_a_simulator_with_a_file_copies_back_in_the_background(tmp_path):
    path = tmp_path / "state.db"
    app = create_app(Config(db_path=str(path)))
    sim = app.extensions["shipper_sim"]
    try:
        assert sim.checkpointer is not None
        assert sim.store.value("PRAGMA wal_autocheckpoint") > 1000
    finally:
        close_app(app)


def test_serve_workers_keeps_its_wal_short(tmp_path):
    """Two worker processes writing all along: the background process restarts
    the WAL, which would otherwise hold every page ever written."""
    path = tmp_path / "state.db"
    largest = 0

    def create(n: int) -> None:
        with requests.Session() as session:
            for i in range(400):
                response = session.post(
                    f"{server.url}/v3/fulfillment/outbound/wms",
                    json=b2b_body(f"WAL{n}{i:04d}"),
                    headers={"x-api-key": DEMO_KEY},
                    timeout=30,
                )
                assert response.status_code == 200, response.text

    with SimServer(db=str(path), workers=2) as server:
        clients = [threading.Thread(target=create, args=(n,)) for n in range(4)]
        for client in clients:
            client.start()
        while any(c.is_alive() for c in clients):
            largest = max(largest, wal_pages(path))
            time.sleep(0.05)
    with sqlite3.connect(path) as db:
        (orders,) = db.execute(
            "SELECT COUNT(*) FROM orders WHERE order_no LIKE 'WAL%'"
        ).fetchone()
    assert orders == 1600
    # About 20 pages a create: more than 30,000 without a restart.
    assert largest < 10_000
