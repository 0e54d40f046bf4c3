"""Journal entries on their way into the journal table.

Writing each answered request into SQLite on its own costs a transaction:
under ``--workers`` a turn on the lock every writer of the file queues on,
and a commit that empties the page cache of every other process. So a
request's entry is only appended to a spool, and the journal moves spooled
entries into its table in batches: whenever somebody reads the journal,
every so often from a background thread, and once a spool holds enough.

Two spools, one interface:

- :class:`MemorySpool`, a list in this process, when nothing else could
  read it (a simulator without a database file);
- :class:`FileSpool`, with a database file: one append-only file per process
  in a folder beside it (``FILE-requests/``), so that any process reading
  the journal takes every entry another process spooled before it answered,
  and a ``kill -9`` loses none of them.

A spool file holds one JSON document per line. Its writer holds a shared
``flock`` on it for as long as it writes there; a file whose lock is free
and whose entries are all in the table is removed. How far each file has
been taken is kept in the ``journal_spools`` table, in the same transaction
as the entries taken, so no entry is taken twice or lost.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import jsontext

log = logging.getLogger(__name__)

# A process starts a new spool file past this size; the old one goes once
# it has been taken whole.
ROTATE_BYTES = 4 * 1024 * 1024
SUFFIX = ".jsonl"


@dataclass
class Batch:
    """Entries taken from a spool, and what to do once they are committed."""

    entries: list[dict] = field(default_factory=list)
    # FileSpool: file name -> offset up to which it is now taken.
    offsets: dict[str, int] = field(default_factory=dict)
    # FileSpool: files nobody writes any more, taken whole: remove them.
    finished: list[str] = field(default_factory=list)


class MemorySpool:
    """Entries in this process's memory, for a simulator with no file.

    With ``keep``, it holds at most about twice that many: the journal's
    table keeps only its newest ``keep`` entries, and every entry here is
    newer than those in the table, so the older ones would never stay.
    """

    def __init__(self, keep: int | None = None) -> None:
        self._entries: list[dict] = []
        self._lock = threading.Lock()
        self._keep = keep
        # Taken by a transaction that has not ended yet: still waiting, for
        # a reader (a failed reset gives them back, and a reader that saw
        # none would read the table without them).
        self._in_flight = 0

    def append(self, entry: dict) -> None:
        with self._lock:
            self._entries.append(entry)
            if self._keep and len(self._entries) > 2 * self._keep:
                del self._entries[: -self._keep]

    def pending(self, store) -> int:
        """How many entries wait, taken or not, until committed (0: none)."""
        return len(self._entries) + self._in_flight

    def spooled_bytes(self, store) -> int:
        """About how much the waiting entries hold (2 kB an entry)."""
        return len(self._entries) * 2048

    def take(self, store, keep: int | None = None) -> Batch:
        """Every entry, or the newest ``keep`` (the others are dropped)."""
        with self._lock:
            entries, self._entries = self._entries, []
            batch = Batch(entries=entries[-keep:] if keep else entries)
            self._in_flight += len(batch.entries)
        return batch

    def taken(self, store, batch: Batch) -> None:
        with self._lock:
            self._in_flight -= len(batch.entries)

    def tidy(self, store) -> None:
        pass

    def give_back(self, batch: Batch) -> None:
        """The batch was not committed: it waits again, ahead of newer ones."""
        with self._lock:
            self._entries[:0] = batch.entries
            self._in_flight -= len(batch.entries)

    def close(self) -> None:
        pass


class FileSpool:
    """One append-only file per process in ``folder``, for a database file."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._size = 0
        # A write failed part way (a full disk): the next line starts anew.
        self._cut_short = False

    # -- writing (any process)
    def append(self, entry: dict) -> None:
        # JSON has no raw newline inside. An entry holding a lone surrogate
        # (a body that is not Unicode) is written in ASCII, so that it
        # survives the round trip as an escape. "_at": when it was answered,
        # to put every process's entries in one order.
        line = jsontext.fast_dumps(entry)
        if line is jsontext.SLOW:
            line = json.dumps(entry, separators=(",", ":"))
        rest = f",{line[1:]}" if len(line) > 2 else "}"
        data = f'{{"_at":{time.time_ns()}{rest}\n'.encode()
        with self._lock:
            fd = self._own_file()
            if self._cut_short:  # end the line a failed write left behind
                data = b"\n" + data
            written = 0
            try:
                while written < len(data):
                    written += os.write(fd, data[written:])
            except OSError:
                self._cut_short = self._cut_short or written > 0
                raise
            self._cut_short = False
            self._size += written

    def _own_file(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            removed = not os.fstat(self._fd).st_nlink
            if self._size < ROTATE_BYTES and not removed:
                return self._fd
            if removed:
                log.warning(
                    "the journal's spool file went from %s; starting another",
                    self.folder,
                )
            fd, self._fd = self._fd, None
            os.close(fd)  # frees its lock: it goes once taken whole
        import fcntl

        # Locked under a name no reader looks at, then renamed: a reader
        # never sees a file that is written to without its lock.
        os.makedirs(self.folder, exist_ok=True)
        name = f"{os.getpid()}-{time.time_ns()}"
        path = os.path.join(self.folder, name)
        fd = os.open(
            path + ".new", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # "still written to"
            os.rename(path + ".new", path + SUFFIX)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._pid, self._size, self._cut_short = fd, os.getpid(), 0, False
        return fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    # -- taking (inside the journal's transaction)
    def pending(self, store) -> int:
        """Bytes spooled and not taken yet, by every process (0: none)."""
        offsets = self._offsets(store)
        waiting = 0
        for name in self._files():
            try:
                size = os.stat(os.path.join(self.folder, name)).st_size
            except FileNotFoundError:  # just taken whole and removed
                continue
            waiting += max(0, size - offsets.get(name, 0))
        return waiting

    spooled_bytes = pending

    def take(self, store, keep: int | None = None) -> Batch:
        """Every entry answered before this take began, in the order answered.

        An entry answered after it began (written, or still being written)
        waits for the next take, and so does whatever follows it in its
        file: so two requests of which one was answered before the other
        was sent never get their ids the wrong way round, whichever
        processes answered them and whichever takes take them in.

        With ``keep``, only the newest ``keep`` of them are read whole; the
        others are passed over (and count as taken).
        """
        began = time.time_ns()
        batch = Batch()
        offsets = self._offsets(store)
        files = self._files()
        stamped: list[tuple[int, bytes, str]] = []
        for name in files:
            with self._reading(name) as (handle, is_finished):
                if handle is None:
                    continue
                start = offsets.get(name, 0)
                handle.seek(start)
                data = handle.read()
            lines, length = _answered_before(data, began, is_finished, name)
            stamped.extend((at, line, name) for at, line in lines)
            if length:
                batch.offsets[name] = start + length
            if is_finished:
                batch.finished.append(name)
        stamped.sort(key=lambda s: s[0])
        for _, line, name in stamped[-keep:] if keep else stamped:
            entry = _parse(line, name)
            if entry is not None:
                entry.pop("_at", None)
                batch.entries.append(entry)
        # Rows of files removed by an earlier batch.
        gone = set(offsets) - set(files)
        for name in gone:
            store.execute("DELETE FROM journal_spools WHERE file = ?", (name,))
        for name, offset in batch.offsets.items():
            store.execute(
                "INSERT INTO journal_spools (file, taken) VALUES (?, ?) "
                "ON CONFLICT (file) DO UPDATE SET taken = excluded.taken",
                (name, offset),
            )
        return batch

    def give_back(self, batch: Batch) -> None:
        pass  # what was taken is the rolled-back offsets' business

    def taken(self, store, batch: Batch) -> None:
        """The batch is committed: remove the files nobody writes any more."""
        for name in batch.finished:
            try:
                os.remove(os.path.join(self.folder, name))
            except FileNotFoundError:
                pass
            except OSError as exc:  # it stays, and is read again for nothing
                log.warning("could not remove a finished spool file: %s", exc)

    def tidy(self, store) -> None:
        """Remove the files taken whole whose writer is gone (with no new
        lines, no take would look at them)."""
        offsets = self._offsets(store)
        for name in self._files():
            with self._reading(name) as (handle, is_finished):
                whole = handle is not None and (
                    os.fstat(handle.fileno()).st_size == offsets.get(name, 0)
                )
            if is_finished and whole:
                self.taken(store, Batch(finished=[name]))

    def _files(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.folder) if n.endswith(SUFFIX))
        except FileNotFoundError:
            return []

    @staticmethod
    def _offsets(store) -> dict[str, int]:
        rows = store.rows("SELECT file, taken FROM journal_spools")
        return {r["file"]: r["taken"] for r in rows}

    @contextmanager
    def _reading(self, name: str) -> Iterator[tuple]:
        """The file open for reading, and whether its writer is gone."""
        import fcntl

        try:
            handle = open(os.path.join(self.folder, name), "rb")  # noqa: SIM115
        except FileNotFoundError:
            yield None, False
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                finished = True  # no writer holds it: it will not grow
            except BlockingIOError:
                finished = False
            yield handle, finished


# An entry stamped this much later than a take began can only mean that the
# system clock was set back since: it is taken at once, not left waiting.
CLOCK_SET_BACK_NS = 5 * 10**9


def _answered_before(
    data: bytes, began: int, is_finished: bool, name: str
) -> tuple[list[tuple[int, bytes]], int]:
    """The whole lines of ``data`` up to the first answered at ``began`` or
    later (all of a finished file's), each with when it was answered; and
    how many bytes they take."""
    lines: list[tuple[int, bytes]] = []
    length = 0
    # A line still being written has no newline yet.
    for line in data[: data.rfind(b"\n") + 1].splitlines(keepends=True):
        answered = _answered_at(line, name)
        if answered is not None and not is_finished:
            if began <= answered < began + CLOCK_SET_BACK_NS:
                break
        if answered is not None:
            lines.append((answered, line))
        length += len(line)
    return lines, length


_STAMP = b'{"_at":'


def _answered_at(line: bytes, name: str) -> int | None:
    """A line's "_at", read without parsing the line when it comes first (as
    it does in lines written by this version); None for a damaged line."""
    if line.startswith(_STAMP):
        end = line.find(b",", len(_STAMP))
        if end < 0:
            end = line.find(b"}", len(_STAMP))
        try:
            return int(line[len(_STAMP) : end])
        except ValueError:
            pass
    entry = _parse(line, name)
    return None if entry is None else entry.get("_at", 0)


def _parse(line: bytes, name: str) -> dict | None:
    if not line.strip():
        return None
    try:
        return jsontext.loads(line)
    except ValueError:  # cut short by a full disk, say: skip it
        log.warning("skipped a damaged journal entry in %s", name)
        return None
