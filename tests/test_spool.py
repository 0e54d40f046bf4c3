"""The request journal's spools: entries spooled, then taken into the table.

A request's journal entry is spooled before its answer leaves, and every
read of the journal first takes in what every process spooled. These tests
check that nothing is lost, doubled or left behind: in memory, in files
written by several processes at once, across a failed transaction, a reset,
a ``kill -9``, and between the workers of ``serve --workers``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import b2b_body
from serving import Api, SimServer, wait_for

from simulator import spool as spool_module
from simulator.errors import ControlError
from simulator.journal import Journal
from simulator.spool import FileSpool, MemorySpool
from simulator.store import Store


def entry(n: int, client_id: int = 1, at: float | None = None) -> dict:
    return {
        "time": at if at is not None else 1_700_000_000.0 + n,
        "request_id": f"r{n}",
        "client_id": client_id,
        "method": "GET",
        "path": f"/v3/fulfillment/x/{n}",
        "status": 200,
        "code": None,
        "reason": "",
        "request_body": "",
        "response_body": '{"ok": "\\u00e9 \\ud800"}',
        "duration_ms": 1.0,
    }


def request_ids(journal: Journal) -> list[str]:
    return [e["request_id"] for e in journal.list(limit=10**6)]


# -- in memory --------------------------------------------------------------------


def test_a_memory_spool_is_taken_whole_in_order():
    journal = Journal(Store(), size=100)
    for n in range(5):
        journal.record(entry(n, at=1.0))  # one moment: the order is kept

    assert journal.spool.pending(journal.store) == 5
    assert request_ids(journal) == ["r4", "r3", "r2", "r1", "r0"]
    assert journal.spool.pending(journal.store) == 0


def test_entries_not_committed_wait_for_the_next_take():
    journal = Journal(Store(), size=100)
    journal.record(entry(1))
    journal.store.execute("DROP TABLE journal")  # the insert will fail

    with pytest.raises(sqlite3.OperationalError):
        journal.take_spooled()

    assert journal.spool.pending(journal.store) == 1
    journal.store._create_tables()
    assert request_ids(journal) == ["r1"]


def test_a_process_with_nothing_taking_in_the_background_takes_itself(monkeypatch):
    monkeypatch.setattr("simulator.journal.CHECK_EVERY", 10)
    monkeypatch.setattr("simulator.journal.SELF_TAKE_BYTES", 1024 * 1024)
    journal = Journal(Store(), size=10_000)
    for n in range(2000):
        journal.record(entry(n))

    # About 2 kB an entry: past 1 MB, every tenth record looks and takes.
    assert journal.spool.pending(journal.store) < 600
    assert journal.store.value("SELECT COUNT(*) FROM journal") > 1400


def test_a_read_waits_for_entries_a_failing_transaction_took():
    # A reset of an unknown client takes what is spooled, then fails and
    # gives it back: a read meanwhile must not see "nothing spooled" and
    # read the table without those entries.
    journal = Journal(Store(), size=100)
    journal.record(entry(1))
    taken, seen = threading.Event(), []

    def failing_reset() -> None:
        with pytest.raises(ControlError), journal.store.transaction():
            journal.take_spooled()
            taken.set()
            time.sleep(0.3)  # the read below comes meanwhile
            raise ControlError("no client 999999", status=404)

    resetting = threading.Thread(target=failing_reset)
    resetting.start()
    assert taken.wait(timeout=10)
    seen.extend(request_ids(journal))
    resetting.join(timeout=10)

    assert seen == ["r1"]


def test_the_table_keeps_the_newest_size_entries():
    journal = Journal(Store(), size=3)
    for n in range(10):
        journal.record(entry(n))
        if n % 4 == 0:
            journal.take_spooled()

    assert request_ids(journal) == ["r9", "r8", "r7"]


def test_memory_keeps_the_order_answered_whatever_the_clock_says():
    journal = Journal(Store(), size=100)
    for n, at in enumerate([5.0, 1.0, 3.0]):  # a clock frozen, moved back
        journal.record(entry(n, at=at))

    assert request_ids(journal) == ["r2", "r1", "r0"]


@pytest.mark.parametrize("spooled_in", ["memory", "files"])
def test_a_transaction_that_takes_and_then_fails_leaves_every_entry_waiting(
    tmp_path, spooled_in
):
    folder = str(tmp_path / "spool") if spooled_in == "files" else None
    journal = Journal(Store(str(tmp_path / "state.db")), 100, folder)
    writer = FileSpool(folder) if folder else journal.spool
    for n in range(3):
        writer.append(entry(n))
    writer.close()  # a process that is gone: its file goes once taken

    with pytest.raises(ControlError):
        with journal.store.transaction():  # as a reset of an unknown client
            journal.take_spooled()
            raise ControlError("no client 999999", status=404)

    assert request_ids(journal) == ["r2", "r1", "r0"]


# -- in files ---------------------------------------------------------------------


def _append_from_a_process(folder: str, first: int, count: int) -> None:
    spool = FileSpool(folder)
    for n in range(first, first + count):
        spool.append(entry(n))
    spool.close()


def test_entries_spooled_by_many_processes_are_taken_once_each(tmp_path):
    folder = str(tmp_path / "state.db-requests")
    journal = Journal(Store(str(tmp_path / "state.db")), 100_000, folder)
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_append_from_a_process, args=(folder, i * 1000, 300))
        for i in range(3)
    ]
    for writer in writers:
        writer.start()
    # Take while they write: what is half written waits for the next take.
    while any(w.is_alive() for w in writers):
        journal.take_spooled()
        time.sleep(0.005)
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0

    ids = request_ids(journal)
    expected = {f"r{i * 1000 + n}" for i in range(3) for n in range(300)}
    assert len(ids) == len(expected) and set(ids) == expected
    # The writers are gone and everything is in: no file is left.
    assert [p.name for p in Path(folder).iterdir()] == []


def test_a_file_still_written_to_stays_until_its_writer_is_gone(tmp_path):
    folder = str(tmp_path / "state.db-requests")
    journal = Journal(Store(str(tmp_path / "state.db")), 100, folder)
    writer = FileSpool(folder)
    writer.append(entry(1))

    assert request_ids(journal) == ["r1"]
    assert len(list(Path(folder).iterdir())) == 1  # its writer holds it

    writer.append(entry(2))
    writer.close()
    assert request_ids(journal) == ["r2", "r1"]
    assert list(Path(folder).iterdir()) == []


def test_a_writer_starts_a_new_file_past_the_rotation_size(tmp_path, monkeypatch):
    monkeypatch.setattr("simulator.spool.ROTATE_BYTES", 2000)
    folder = str(tmp_path / "state.db-requests")
    journal = Journal(Store(str(tmp_path / "state.db")), 1000, folder)
    writer = FileSpool(folder)
    for n in range(40):
        writer.append(entry(n))
    files = list(Path(folder).iterdir())
    assert len(files) >= 3

    assert len(request_ids(journal)) == 40
    assert len(list(Path(folder).iterdir())) == 1  # only the one written to
    writer.close()


def test_a_damaged_line_is_skipped_and_the_rest_taken(tmp_path):
    folder = tmp_path / "state.db-requests"
    folder.mkdir()
    good = FileSpool(str(folder))
    good.append(entry(1))
    good.close()
    (folder / "1-1.jsonl").write_bytes(b'{"cut short\n')
    journal = Journal(Store(str(tmp_path / "state.db")), 100, str(folder))

    assert request_ids(journal) == ["r1"]


def test_a_take_reads_whole_only_the_entries_the_table_keeps(tmp_path, monkeypatch):
    folder = str(tmp_path / "state.db-requests")
    journal = Journal(Store(str(tmp_path / "state.db")), 5, folder)
    for first in (0, 100, 200):  # three processes, gone, answering in turn
        writer = FileSpool(folder)
        for n in range(first, first + 8):
            writer.append(entry(n))
        writer.close()
    parsed = []
    real_parse = spool_module._parse
    monkeypatch.setattr(
        spool_module,
        "_parse",
        lambda line, name: parsed.append(line) or real_parse(line, name),
    )

    assert journal.take_spooled() == 5
    assert len(parsed) == 5  # the 19 older ones were passed over, unread
    assert request_ids(journal) == ["r207", "r206", "r205", "r204", "r203"]
    assert journal.spool.pending(journal.store) == 0
    assert list(Path(folder).iterdir()) == []  # taken whole, and removed


def test_lines_of_files_written_before_their_stamp_came_first_are_taken(tmp_path):
    folder = tmp_path / "state.db-requests"
    folder.mkdir()
    old = [
        json.dumps({**entry(n), "_at": 1_000 + n}, separators=(",", ":"))
        for n in (2, 1)
    ]
    (folder / "1-1.jsonl").write_text("\n".join(old) + "\n")
    writer = FileSpool(str(folder))
    writer.append(entry(3))
    writer.close()
    journal = Journal(Store(str(tmp_path / "state.db")), 2, str(folder))

    assert request_ids(journal) == ["r3", "r2"]  # r1 was answered first


def test_a_memory_spool_holds_at_most_about_twice_what_the_table_keeps():
    journal = Journal(Store(), size=10)
    for n in range(1000):
        journal.record(entry(n))

    assert journal.spool.pending(journal.store) <= 20
    assert request_ids(journal) == [f"r{n}" for n in range(999, 989, -1)]


def _background_took(store: Store, folder: str, within: float) -> bool:
    """Whether a journal's background, started now, takes anything in soon."""
    journal = Journal(store, 100, folder)
    journal.start(every=0.02)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if store.value("SELECT COUNT(*) FROM journal"):
                return True
            time.sleep(0.02)
        return False
    finally:
        journal.stop()


def test_the_background_takes_once_enough_is_spooled(tmp_path, monkeypatch):
    monkeypatch.setattr("simulator.journal.TAKE_EVERY", 3600)
    monkeypatch.setattr("simulator.journal.TAKE_BYTES", 1000)  # 4 lines
    store, folder = Store(str(tmp_path / "state.db")), str(tmp_path / "s")
    writer = FileSpool(folder)
    writer.append(entry(1))
    assert not _background_took(store, folder, within=0.3)  # too little

    for n in range(2, 12):
        writer.append(entry(n))
    assert _background_took(store, folder, within=5)


def test_the_background_takes_what_waited_long_enough(tmp_path, monkeypatch):
    monkeypatch.setattr("simulator.journal.TAKE_EVERY", 0.2)
    store, folder = Store(str(tmp_path / "state.db")), str(tmp_path / "s")
    FileSpool(folder).append(entry(1))

    assert _background_took(store, folder, within=5)


def test_a_bare_sqlite_store_without_spool_files_takes_nothing(tmp_path):
    journal = Journal(Store(str(tmp_path / "state.db")), 100, str(tmp_path / "s"))
    assert journal.take_spooled() == 0
    assert request_ids(journal) == []


def test_what_a_memory_spool_holds_is_counted_in_entries():
    spool = MemorySpool()
    spool.append(entry(1))
    spool.append(entry(2))
    batch = spool.take(None)
    assert spool.pending(None) == 2  # until committed, or given back
    spool.give_back(batch)
    assert spool.pending(None) == 2
    batch = spool.take(None)
    assert [e["request_id"] for e in batch.entries] == ["r1", "r2"]
    spool.taken(None, batch)
    assert spool.pending(None) == 0


# -- real servers -----------------------------------------------------------------


def test_every_worker_sees_at_once_what_any_worker_answered(tmp_path):
    with SimServer(db=tmp_path / "state.db", workers=2) as server:
        api = Api(server.url)
        for n in range(30):
            number = f"SEEN{n:03d}"
            assert api.create("wms", b2b_body(number)).status_code == 200
            # Whichever worker answers this, the create is in its journal.
            found = api.sim("GET", "/requests", params={"limit": 1}).json()
            (latest,) = found["requests"]
            assert latest["request_body"]["doc_no"] == number
        server.stop()


def test_requests_spooled_before_a_kill_9_are_in_the_journal_after_restart(
    tmp_path,
):
    db = tmp_path / "state.db"
    server = SimServer(db=db, workers=2)
    try:
        server.start()
        api = Api(server.url)
        numbers = [f"KILLED{n:03d}" for n in range(40)]
        for number in numbers:
            assert api.create("wms", b2b_body(number)).status_code == 200
        server.kill()  # before the background takes them all in

        server.start()
        entries = Api(server.url).sim("GET", "/requests", params={"limit": 500})
        bodies = [e["request_body"] for e in entries.json()["requests"]]
        assert sorted(b["doc_no"] for b in bodies) == numbers
        # Files of processes that are gone go once taken whole.
        wait_for(
            lambda: len(os.listdir(f"{db}-requests")) <= 2,
            10,
            "the spool files of the killed workers to go",
        )
        server.stop()
    finally:
        server.close()


SLOW_BACKGROUND_START = """\
import sys, time
if "--multiprocessing-fork" in sys.argv:  # the background process only
    time.sleep(1.5)
"""


def test_a_server_stopped_while_its_background_starts_leaves_no_spool_files(
    tmp_path,
):
    # A SIGTERM that reaches the background process before it can handle one
    # waits for it: the stop still takes the last lines in and tidies.
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_BACKGROUND_START)
    db = tmp_path / "state.db"
    with SimServer(db=db, workers=2, env={"PYTHONPATH": str(slow)}) as server:
        api = Api(server.url)
        for n in range(6):
            api.detail("wms", f"EARLY{n}")
        assert server.stop() == 0

    assert os.listdir(f"{db}-requests") == []
    with sqlite3.connect(db) as stored:
        assert stored.execute("SELECT COUNT(*) FROM journal").fetchone() == (6,)


def test_a_reset_drops_what_was_only_spooled(tmp_path):
    with SimServer(db=tmp_path / "state.db", workers=2) as server:
        api = Api(server.url)
        for n in range(10):
            api.create("wms", b2b_body(f"RESET{n:03d}"))
        assert api.sim("POST", "/reset").status_code == 200

        assert api.sim("GET", "/requests").json()["requests"] == []
        api.detail("wms", "AFTER-RESET")  # and a take after it finds only this
        (after,) = api.sim("GET", "/requests").json()["requests"]
        assert after["path"].endswith("/AFTER-RESET")
        server.stop()


def test_the_requests_mark_moves_with_each_answered_request(tmp_path):
    with SimServer(db=tmp_path / "state.db", workers=2) as server:
        api = Api(server.url)
        marks = []
        for n in range(5):
            api.detail("wms", f"NONE{n}")
            marks.append(api.sim("GET", "/changes").json()["marks"]["requests"])
        assert len(set(marks)) == 5
        server.stop()


def test_the_requests_mark_moves_once_per_batch_not_per_line(tmp_path):
    path = str(tmp_path / "state.db")
    Store(path).close()
    old = sqlite3.connect(path)  # as files from before had it: a trigger per line
    old.execute(
        "CREATE TRIGGER change_marks_journal_insert AFTER INSERT ON journal "
        "BEGIN INSERT INTO change_marks VALUES (0, 'requests', 1) "
        "ON CONFLICT (client_id, area) DO UPDATE SET n = n + 1; END"
    )
    old.commit()
    old.close()

    journal = Journal(Store(path), 100, str(tmp_path / "spool"))
    for n in range(5):
        journal.record(entry(n))
    journal.take_spooled()

    assert journal.store.change_marks()["requests"] == 1


def test_a_line_a_full_disk_cut_short_costs_only_itself(tmp_path, monkeypatch):
    folder = str(tmp_path / "spool")
    journal = Journal(Store(str(tmp_path / "state.db")), 100, folder)
    writer = FileSpool(folder)
    writer.append(entry(1))
    real_write = os.write

    calls = []

    def half_then_full(fd, data):  # as write(2) does when the disk fills
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr("simulator.spool.os.write", half_then_full)
    with pytest.raises(OSError):
        writer.append(entry(2))
    monkeypatch.setattr("simulator.spool.os.write", real_write)
    writer.append(entry(3))

    assert request_ids(journal) == ["r3", "r1"]
    writer.close()


def test_a_spool_folder_removed_under_a_writer_is_made_again(tmp_path, caplog):
    folder = tmp_path / "spool"
    journal = Journal(Store(str(tmp_path / "state.db")), 100, str(folder))
    writer = FileSpool(str(folder))
    writer.append(entry(1))
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()

    writer.append(entry(2))

    assert request_ids(journal) == ["r2"]  # r1 went with the folder
    assert "spool file went" in caplog.text
    writer.close()


def test_a_writer_that_cannot_open_its_next_file_closes_nothing_else(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("simulator.spool.ROTATE_BYTES", 1)
    folder = tmp_path / "spool"
    journal = Journal(Store(str(tmp_path / "state.db")), 100, str(folder))
    writer = FileSpool(str(folder))
    writer.append(entry(1))
    real_open = os.open

    def no_new_spool_files(path, *args, **kwargs):
        if str(path).startswith(str(folder)):
            raise OSError(24, "Too many open files", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("simulator.spool.os.open", no_new_spool_files)
    with pytest.raises(OSError):
        writer.append(entry(2))  # closes the full file, cannot open the next
    # The number the old file had is handed out again, to somebody else.
    bystander = real_open(os.devnull, os.O_RDONLY)
    for n in range(3, 5):
        with pytest.raises(OSError):
            writer.append(entry(n))
    os.fstat(bystander)  # still open
    os.close(bystander)
    monkeypatch.setattr("simulator.spool.os.open", real_open)
    writer.append(entry(5))

    assert request_ids(journal) == ["r5", "r1"]
    writer.close()


def test_a_finished_file_that_cannot_be_removed_leaves_the_journal_readable(
    tmp_path, monkeypatch, caplog
):
    folder = str(tmp_path / "spool")
    journal = Journal(Store(str(tmp_path / "state.db")), 100, folder)
    writer = FileSpool(folder)
    writer.append(entry(1))
    writer.close()

    def refuse(path):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr("simulator.spool.os.remove", refuse)
    assert request_ids(journal) == ["r1"]
    assert "could not remove" in caplog.text
    monkeypatch.undo()
    writer = FileSpool(folder)
    writer.append(entry(2))
    assert request_ids(journal) == ["r2", "r1"]
    writer.close()


def test_an_entry_answered_after_a_take_began_waits_with_what_follows_it(
    tmp_path, monkeypatch
):
    folder = str(tmp_path / "spool")
    journal = Journal(Store(str(tmp_path / "state.db")), 100, folder)
    start = 1_000 * 10**9
    clock = [start]
    monkeypatch.setattr("simulator.spool.time.time_ns", lambda: clock[0])
    first, second, third = FileSpool(folder), FileSpool(folder), FileSpool(folder)
    ms = 10**6
    for spool, n, at in ((first, 1, 0), (second, 2, 1 * ms), (third, 3, 3 * ms)):
        clock[0] = start + at
        spool.append(entry(n))
    # Stamped before r3 but written after it, by another thread of the third.
    clock[0] = start + 3 * ms // 2
    third.append(entry(4))

    clock[0] = start + 2 * ms  # the take begins after r1, r2 and r4
    assert request_ids(journal) == ["r2", "r1"]
    clock[0] = start + 1000 * ms
    assert request_ids(journal) == ["r3", "r4", "r2", "r1"]
    for spool in (first, second, third):
        spool.close()


def test_files_taken_whole_go_once_their_writer_is_gone(tmp_path):
    folder = tmp_path / "spool"
    journal = Journal(Store(str(tmp_path / "state.db")), 100, str(folder))
    writer = FileSpool(str(folder))
    writer.append(entry(1))
    assert request_ids(journal) == ["r1"]  # taken while still written to
    writer.close()

    assert len(list(folder.iterdir())) == 1  # nothing new: no take looks
    journal.spool.tidy(journal.store)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_server_leaves_no_spool_files(tmp_path, workers):
    db = tmp_path / "state.db"
    with SimServer(db=db, workers=workers) as server:
        api = Api(server.url)
        for n in range(20):
            api.detail("wms", f"NONE{n}")
        api.sim("GET", "/requests")  # every line is in: nothing left to take
        assert server.stop() == 0

    assert os.listdir(f"{db}-requests") == []
    with sqlite3.connect(db) as stored:
        assert stored.execute("SELECT COUNT(*) FROM journal").fetchone() == (20,)
