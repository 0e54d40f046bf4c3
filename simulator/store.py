"""The store: one SQLite database, through sqlite-utils.

A private temporary database by default, a file (in WAL mode) with
``--db``. Every operation runs inside :meth:`Store.transaction`, one
``BEGIN IMMEDIATE`` transaction under one lock, so concurrent requests never
interleave their writes and a refused step leaves nothing half-written.
When several processes share the file (``serve --workers``), their writers
also queue on a lock file beside it, ``FILE-writers``: a waiting writer wakes
the moment the lock is free, where SQLite's own busy handler would poll and
sleep.
Writes inside a transaction use plain SQL: sqlite-utils' insert helpers
commit on their own.
"""

from __future__ import annotations

import logging
import mmap
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import IO, Any

import sqlite_utils

log = logging.getLogger(__name__)

SCHEMA: dict[str, dict[str, Any]] = {
    "meta": {"columns": {"key": str, "value": int}, "pk": "key"},
    "warehouses": {
        "columns": {"warehouse_id": str, "name": str, "city": str, "address": str},
        "pk": "warehouse_id",
    },
    "carriers": {
        "columns": {
            "express_code": str,
            "express_name": str,
            "express_type": str,
            "awb_prefix": str,
            "awb_digits": int,
        },
        "pk": "express_code",
    },
    "clients": {
        "columns": {
            "client_id": int,
            "api_key": str,
            "tenant_name": str,
            "oms_customer_id": str,
            "wms_customer_id": str,
            "webhook_url": str,
            "progression": str,
            "step_delay": float,
            "from_fixtures": int,
        },
        "pk": "client_id",
    },
    "client_warehouses": {
        "columns": {"client_id": int, "warehouse_id": str},
        "pk": ("client_id", "warehouse_id"),
    },
    "stock": {
        "columns": {
            "client_id": int,
            "warehouse_id": str,
            "sku": str,
            "sku_descr": str,
            # Physically in the warehouse; drops when an order ships.
            "qty_on_hand": int,
            # Allocated to orders that have not shipped yet.
            "qty_reserved": int,
            # What open orders may still ship (ordered, allocated or not):
            # physical stock less this is what the OMS can still sell.
            "qty_held": int,
            # What a reset of this client restores.
            "qty_baseline": int,
            "receipt_date": str,
        },
        "pk": ("client_id", "warehouse_id", "sku"),
        # Read and changed by key only: no rowid table behind the key.
        "without_rowid": True,
    },
    "orders": {
        "columns": {
            "id": int,
            "client_id": int,
            "kind": str,
            "warehouse_id": str,
            "order_no": str,
            "order_type": str,
            "status": str,
            "wms_code": str,
            "last_step": str,
            "group_key": str,
            "wms_doc_no": str,
            "fo_number": str,
            "delivery_no": str,
            "pack_id": str,
            "express_code": str,
            "express_name": str,
            "body": str,
            "request_id": str,
            "cancel_reason": str,
            "progression": str,
            "created": float,
            "updated": float,
            "pgi_time": float,
        },
        "pk": "id",
    },
    "order_lines": {
        "columns": {
            "order_id": int,
            "line_no": int,
            "sku": str,
            "sku_descr": str,
            "price": float,
            "qty_ordered": int,
            "qty_released": int,
            "qty_allocated": int,
            "qty_picked": int,
            "qty_packed": int,
            "qty_loaded": int,
            "qty_shipped": int,
            "line_code": str,
            "mfg_date": str,
            "exp_date": str,
            "batch_no": str,
            "serial_no": str,
            "receipt_date": str,
        },
        "pk": ("order_id", "line_no"),
        # Kept in key order, with no rowid table behind the key: an order's
        # lines are read, and written, in one B-tree rather than two. (A
        # file made before keeps its table as it was; both read alike.)
        "without_rowid": True,
    },
    "order_events": {
        "columns": {
            "id": int,
            "order_id": int,
            "time": float,
            "code": str,
            "name": str,
            "status": str,
            "note": str,
        },
        "pk": "id",
    },
    "deliveries": {
        "columns": {
            "id": int,
            "client_id": int,
            "order_id": int,
            "order_no": str,
            "warehouse_id": str,
            "event": str,
            "payload": str,
            "state": str,
            "attempts": int,
            "next_attempt_at": float,
            "created": float,
            "redelivery_of": int,
            # 1: sent on its own, neither waiting for nor holding back the
            # order's other webhooks (an "out of order" fault).
            "unordered": int,
        },
        "pk": "id",
    },
    "delivery_attempts": {
        "columns": {
            "id": int,
            "delivery_id": int,
            "n": int,
            "time": float,
            "url": str,
            "status_code": int,
            "duration_ms": float,
            "error": str,
        },
        "pk": "id",
    },
    "journal": {
        "columns": {
            "id": int,
            "time": float,
            "request_id": str,
            "client_id": int,
            "method": str,
            "path": str,
            "status": int,
            "code": int,
            "reason": str,
            "request_body": str,
            "response_body": str,
            "duration_ms": float,
        },
        "pk": "id",
    },
    "jobs": {
        "columns": {"order_id": int, "due_at": float},
        "pk": "order_id",
    },
    # How far the journal has taken each spool file (see simulator/spool.py).
    "journal_spools": {
        "columns": {"file": str, "taken": int},
        "pk": "file",
    },
}

INDEXES: list[tuple[str, list[str], bool]] = [
    ("clients", ["api_key"], True),
    # Every index is written by every create: one serves a client's order
    # (Shipper's API), an order named by warehouse and number (the control
    # API) and the orders of one number (the webhook log's filter).
    ("orders", ["order_no", "warehouse_id", "client_id"], True),
    ("orders", ["client_id", "kind", "created"], False),
    # The WMS list newest first, and counted over a date range from the
    # index alone; the list filtered by status, newest first.
    ("orders", ["client_id", "created", "last_step"], False),
    ("orders", ["client_id", "status", "created"], False),
    ("order_events", ["order_id"], False),
    ("deliveries", ["order_id"], False),
    ("delivery_attempts", ["delivery_id"], False),
    ("journal", ["client_id"], False),
    ("jobs", ["due_at"], False),
]
# Only the deliveries still to go out, which the background looks for
# several times a second: one delivered, or never to be sent, leaves it.
# Each order's first one is found in the index alone.
PENDING_DELIVERIES_SQL = (
    "CREATE INDEX IF NOT EXISTS pending_deliveries "
    "ON deliveries (unordered, order_id, id) WHERE state = 'pending'"
)
# What files written by earlier versions have instead of the above; dropped
# once the indexes that replace them are there.
OLD_INDEXES = (
    "idx_orders_client_id_warehouse_id_order_no",
    "idx_orders_warehouse_id_order_no",
    "idx_deliveries_state_order_id_id",
    "idx_deliveries_order_no",
)

# How many orders each client has per value of what the list endpoint
# filters on, kept by triggers in the same transaction as every change to
# ``orders``, so that the list's ``total_elements`` needs no COUNT(*) over
# all of a client's orders. Filled from ``orders`` when a file that predates
# it is opened.
ORDER_COUNTS_SQL = [
    """CREATE TABLE order_counts (
        client_id INTEGER, kind TEXT, in_wms INTEGER, warehouse_id TEXT,
        order_type TEXT, status TEXT, n INTEGER,
        PRIMARY KEY (client_id, kind, in_wms, warehouse_id, order_type, status)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER order_counts_insert AFTER INSERT ON orders BEGIN
        INSERT INTO order_counts VALUES (NEW.client_id, NEW.kind,
            NEW.last_step IS NOT NULL, NEW.warehouse_id, NEW.order_type,
            NEW.status, 1)
        ON CONFLICT (client_id, kind, in_wms, warehouse_id, order_type, status)
        DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER order_counts_delete AFTER DELETE ON orders BEGIN
        UPDATE order_counts SET n = n - 1 WHERE client_id = OLD.client_id
            AND kind = OLD.kind AND in_wms = (OLD.last_step IS NOT NULL)
            AND warehouse_id = OLD.warehouse_id
            AND order_type = OLD.order_type AND status = OLD.status;
        DELETE FROM order_counts WHERE n <= 0;
    END""",
    """CREATE TRIGGER order_counts_update AFTER UPDATE OF client_id, kind,
        last_step, warehouse_id, order_type, status ON orders
    WHEN OLD.client_id IS NOT NEW.client_id OR OLD.kind IS NOT NEW.kind
        OR (OLD.last_step IS NULL) IS NOT (NEW.last_step IS NULL)
        OR OLD.warehouse_id IS NOT NEW.warehouse_id
        OR OLD.order_type IS NOT NEW.order_type OR OLD.status IS NOT NEW.status
    BEGIN
        UPDATE order_counts SET n = n - 1 WHERE client_id = OLD.client_id
            AND kind = OLD.kind AND in_wms = (OLD.last_step IS NOT NULL)
            AND warehouse_id = OLD.warehouse_id
            AND order_type = OLD.order_type AND status = OLD.status;
        DELETE FROM order_counts WHERE n <= 0;
        INSERT INTO order_counts VALUES (NEW.client_id, NEW.kind,
            NEW.last_step IS NOT NULL, NEW.warehouse_id, NEW.order_type,
            NEW.status, 1)
        ON CONFLICT (client_id, kind, in_wms, warehouse_id, order_type, status)
        DO UPDATE SET n = n + 1;
    END""",
    """INSERT INTO order_counts SELECT client_id, kind, last_step IS NOT NULL,
        warehouse_id, order_type, status, COUNT(*) FROM orders
        GROUP BY 1, 2, 3, 4, 5, 6""",
]

# How many times each client's orders, webhooks and stock have changed, and
# the journal and the clients of all (``client_id`` 0), kept by triggers in
# the same transaction as the change, so that a page polling for changes
# (``GET /_sim/changes``) reads a few rows instead of counting every order
# and delivery. Deletes of orders, deliveries and journal lines (a reset, a
# removed client) move the marks themselves: a trigger per deleted row would
# slow a reset down. So does the journal for each batch of lines it takes in.
# Marks only grow, so a sum over clients moves whenever one of them does, and
# no mark ever comes back to a value it had.
CLIENT_AREAS = {"orders": "orders", "deliveries": "webhooks", "stock": "stock"}
SHARED_AREAS = ("requests", "clients")
CHANGE_MARKS_SQL = [
    """CREATE TABLE IF NOT EXISTS change_marks (
        client_id INTEGER, area TEXT, n INTEGER, PRIMARY KEY (client_id, area)
    ) WITHOUT ROWID""",
    *(
        f"""CREATE TRIGGER IF NOT EXISTS change_marks_{table}_{event.lower()}
        AFTER {event} ON {table} BEGIN
            INSERT INTO change_marks VALUES ({owner}, '{area}', 1)
            ON CONFLICT (client_id, area) DO UPDATE SET n = n + 1;
        END"""
        for table, area, owner, events in (
            *(
                (table, area, "NEW.client_id", ("INSERT", "UPDATE"))
                for table, area in CLIENT_AREAS.items()
            ),
            ("clients", "clients", "0", ("INSERT", "UPDATE", "DELETE")),
            ("client_warehouses", "clients", "0", ("INSERT", "DELETE")),
        )
        for event in events
    ),
    # Files written before the journal moved its mark once per batch.
    "DROP TRIGGER IF EXISTS change_marks_journal_insert",
]

# Master data: read on every request, changed only by the control API, a
# reset or the fixtures. Any change to them, by any code and in any process,
# moves the store's master version (see Store.master_version), so that a
# process may keep what it read of them until then.
MASTER_TABLES = ("clients", "client_warehouses", "carriers", "warehouses")

# Tables that hold what happened, as opposed to master data.
ACTIVITY_TABLES = (
    "order_lines",
    "order_events",
    "delivery_attempts",
    "deliveries",
    "jobs",
    "orders",
    "journal",
)


def claim_database(path: str) -> IO | None:
    """Hold ``PATH-lock`` for one server's life; None if another server holds it.

    Two servers on one file would each send every webhook and run every
    timed step. The lock (``flock``) goes with the process that holds it,
    even on ``kill -9``; the processes of one ``serve --workers`` share it.
    Keep the answer open as long as the server runs.
    """
    try:
        import fcntl
    except ImportError:  # no flock here: nothing to guard with
        return open(os.devnull)  # the caller closes it
    # Beside the file itself, so a symlink or another spelling of the path
    # finds the same lock.
    handle = open(f"{os.path.realpath(path)}-lock", "a")  # the caller closes it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class MasterVersion:
    """Eight random bytes in ``PATH-master``, drawn anew after each change.

    Written after the change commits, so a process that read the old bytes
    before reading master data reads new ones afterwards, however the
    writers of several processes interleave: no lock, no lost update.
    """

    def __init__(self, path: str) -> None:
        self._path = os.path.realpath(path)
        self._fd = os.open(
            f"{self._path}-master", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        # Read on every request, through memory rather than a system call.
        # A new file's zeros are a version like any other; the size only
        # grows, whichever process gets here first.
        if os.fstat(self._fd).st_size < 8:
            os.ftruncate(self._fd, 8)
        self._map = mmap.mmap(self._fd, 8)

    def read(self) -> bytes:
        return self._map[:8]

    def move(self) -> None:
        try:
            os.pwrite(self._fd, os.urandom(8), 0)
        except OSError as exc:  # the change stands; other processes see it soon
            log.warning(
                "could not mark a change of master data in %s-master (%s): "
                "other processes see it only when they next read master data "
                "afresh, within a second",
                self._path,
                exc,
            )

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class WriterQueue:
    """An exclusive lock, across processes, on ``PATH-writers`` (``flock``).

    Released by the operating system when its holder dies, even by
    ``kill -9``.
    """

    def __init__(self, path: str) -> None:
        import fcntl  # POSIX only, as is serving with several processes

        self._flock = fcntl.flock
        self._modes = (fcntl.LOCK_EX, fcntl.LOCK_UN)
        self._file = open(f"{os.path.realpath(path)}-writers", "a")  # closed by close()

    @contextmanager
    def turn(self) -> Iterator[None]:
        self._flock(self._file, self._modes[0])
        try:
            yield
        finally:
            self._flock(self._file, self._modes[1])

    def close(self) -> None:
        self._file.close()


# SQLite copies the WAL back into the database file once it holds 1,000
# pages, inside the commit that crosses the mark: the copy and two fsyncs,
# which every other writer waits out. With a Checkpointer running, commits
# leave that to it, unless the WAL grows this long (40 to 80 MB).
FALLBACK_CHECKPOINT_PAGES = 20_000
# For new files (SQLite's default is 4096 bytes). A commit writes each page
# it changed whole, and a create changes a page of a dozen tables and
# indexes: smaller pages, fewer bytes.
PAGE_SIZE = 2048
CHECKPOINT_EVERY = 0.1  # seconds
# Once every page of the WAL is copied back, the next commit starts the WAL
# over from its beginning, but only if that commit's snapshot is newer than
# the copy. With a copy on another thread and writers taking turns, that is
# rare; past this length the checkpointer makes it happen.
RESTART_PAGES = 4096
# Larger than the WAL grows between two restarts (pages of up to 4 KB, in
# a file made by an earlier version), so that an ordinary restart does not
# cut the file only for it to grow again.
WAL_SIZE_LIMIT = 2 * RESTART_PAGES * 4096  # bytes
# How long the restart waits for readers still on the WAL, holding the
# writers' turn. If they are not done by then, it tries again once the WAL
# has grown by RESTART_PAGES more, so that a reader that stays (a sqlite3
# shell with a transaction open, say) cannot keep stalling the writers.
RESTART_WAIT_MS = 50


class Store:
    def __init__(self, path: str | None = None, shared: bool = False) -> None:
        # Without a file, a private temporary database (SQLite's empty file
        # name): its recent pages stay in memory, the rest spill to an
        # unlinked temporary file, so memory stays flat however many orders
        # are kept, and nothing is left on disk when the process ends.
        self.path = path
        conn = sqlite3.connect(
            path or "", check_same_thread=False, isolation_level=None, timeout=30
        )
        conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0
        self._when_done: list[tuple[Callable[[], None], Callable[[], None]]] = []
        # Other processes write the same file: take turns with them first.
        self._writers = WriterQueue(path) if shared and path else None
        # The master version: in a file when other processes share the
        # database, else in memory. A master table changed in the open
        # transaction (or statement) moves it once that ends.
        self._master_file = MasterVersion(path) if shared and path else None
        self._master_local = 0
        self._master_touched = False
        # Why the last write failed in SQLite itself (a full disk, say), until
        # one succeeds again; the health check reports it.
        self.failure: str | None = None

        # Only a file without tables yet takes it (see PAGE_SIZE), and only
        # before it goes over to WAL.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        if path:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # A WAL that one large transaction (a reset) made long shrinks
            # back to this at the first commit after it starts over.
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        else:
            conn.execute("PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA foreign_keys=OFF")
        self._create_tables()
        self._watch_master_tables()

    def _create_tables(self) -> None:
        for name, spec in SCHEMA.items():
            if spec.get("without_rowid"):
                sql = self.db.create_table_sql(
                    name, spec["columns"], pk=spec["pk"], if_not_exists=True
                )
                self.db.execute(f"{sql.rstrip().rstrip(';')} WITHOUT ROWID")
            else:
                self.db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)
        for table, columns, unique in INDEXES:
            self.db[table].create_index(columns, unique=unique, if_not_exists=True)
        self.execute(PENDING_DELIVERIES_SQL)
        for name in OLD_INDEXES:
            self.execute(f"DROP INDEX IF EXISTS {name}")
        with self.transaction():
            if not self.value(
                "SELECT 1 FROM sqlite_master WHERE name = 'order_counts'"
            ):
                for sql in ORDER_COUNTS_SQL:
                    self.execute(sql)
            for sql in CHANGE_MARKS_SQL:
                self.execute(sql)

    def _watch_master_tables(self) -> None:
        # Temporary triggers: this connection's own, calling back into Python.
        conn = self.db.conn
        conn.create_function("sim_master_touched", 0, self._touch_master)
        for table in MASTER_TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS master_{table}_{event.lower()} "
                    f"AFTER {event} ON main.{table} "
                    "BEGIN SELECT sim_master_touched(); END"
                )

    def _touch_master(self) -> None:
        self._master_touched = True

    def _move_master_if_touched(self) -> None:
        # After the commit (or rollback): see MasterVersion.
        if self._master_touched:
            self._master_touched = False
            self._master_local += 1
            if self._master_file is not None:
                self._master_file.move()

    def master_version(self) -> tuple[int, bytes] | None:
        """A value that changes whenever master data (MASTER_TABLES) changed.

        Read it before reading master data: what was read stays valid until
        it changes. None inside a transaction that changed master data: what
        it reads is not committed yet, so there is nothing to keep.
        """
        if self._master_touched:
            return None
        shared = self._master_file.read() if self._master_file is not None else b""
        return self._master_local, shared

    def mark_changed(self, client_id: int | None = None) -> None:
        """Move the marks of one client and the shared ones, or all of them.

        Call inside the transaction that deleted what the triggers miss.
        """
        for area in SHARED_AREAS:
            self.move_shared_mark(area)
        if client_id is None:
            self.execute("UPDATE change_marks SET n = n + 1 WHERE client_id != 0")
        else:
            self.execute(
                "UPDATE change_marks SET n = n + 1 WHERE client_id = ?", (client_id,)
            )

    def move_shared_mark(self, area: str) -> None:
        """Move the mark of ``requests`` or ``clients`` (inside a transaction)."""
        self.execute(
            "INSERT INTO change_marks VALUES (0, ?, 1) "
            "ON CONFLICT (client_id, area) DO UPDATE SET n = n + 1",
            (area,),
        )

    def change_marks(self, client_id: int | None = None) -> dict[str, int]:
        """How often each kind of state changed: one client's, or everyone's.

        ``requests`` and ``clients`` are everyone's either way.
        """
        if client_id is None:
            where, params = "client_id != 0", ()
        else:
            where, params = "client_id = ?", (client_id,)
        rows = self.rows(
            f"SELECT area, SUM(n) AS n FROM change_marks WHERE {where} "
            "OR client_id = 0 AND area IN ('requests', 'clients') GROUP BY area",
            params,
        )
        found = {r["area"]: r["n"] for r in rows}
        areas = (*CLIENT_AREAS.values(), *SHARED_AREAS)
        return {area: found.get(area, 0) for area in areas}

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
            if self._writers is not None:
                self._writers.close()
            if self._master_file is not None:
                self._master_file.close()

    def leave_checkpoints_to_background(self) -> None:
        """Commits stop copying the WAL back: a :class:`Checkpointer` does it.

        SQLite still does it at the end of a commit should the WAL grow past
        ``FALLBACK_CHECKPOINT_PAGES`` (if the checkpointer stopped, say).
        """
        if self.path:
            self.value(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")

    @contextmanager
    def writers_turn(self) -> Iterator[None]:
        """No other writer, in this process or another, until it ends."""
        with self._lock:
            with self._writers.turn() if self._writers else nullcontext():
                yield

    # -- transactions
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One exclusive unit of work; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return

            with self.writers_turn():
                self.db.conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                self._when_done = []
                try:
                    yield self
                    self.db.conn.execute("COMMIT")
                except BaseException as exc:
                    self._note_failure(exc)
                    if self.db.conn.in_transaction:
                        self.db.conn.execute("ROLLBACK")
                    self._finish(committed=False)
                    raise
                else:
                    self.failure = None
                    self._finish(committed=True)
                finally:
                    self._depth = 0
                    self._move_master_if_touched()

    @contextmanager
    def savepoint(self) -> Iterator[Store]:
        """Inside a transaction: a part that, should it raise, leaves no change.

        The transaction goes on either way. Only what SQLite holds is undone:
        steps queued with :meth:`when_done` inside the part still run.
        """
        if not self._depth:
            raise RuntimeError("a savepoint belongs inside a transaction")
        self.execute("SAVEPOINT part")
        try:
            yield self
        except BaseException:
            # SQLite may have rolled the whole transaction back itself (a
            # full disk): then the part is gone with it.
            if self.db.conn.in_transaction:
                self.execute("ROLLBACK TO part")
                self.execute("RELEASE part")
            raise
        self.execute("RELEASE part")

    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Several reads that see one state of the database.

        Each statement on its own sees the state of its moment: an order
        read, then its lines, could straddle another process's commit.
        Inside a transaction, the reads see that transaction's state.
        """
        with self._lock:
            if self._depth or self.db.conn.in_transaction:
                yield self
                return
            self.db.conn.execute("BEGIN")
            try:
                yield self
            finally:
                self.db.conn.execute("COMMIT")

    def when_done(self, committed: Callable[[], None], rolled_back: Callable[[], None]):
        """Call one of two once the transaction under way ends (inside one only).

        For what lies outside the database: files to remove once a commit
        made them useless, entries to hold on to again if it never came.
        """
        self._when_done.append((committed, rolled_back))

    def _finish(self, committed: bool) -> None:
        done, self._when_done = self._when_done, []
        for on_commit, on_rollback in done:
            try:
                (on_commit if committed else on_rollback)()
            except Exception:  # the transaction's outcome stands regardless
                log.exception("a step after the transaction ended failed")

    def space_hint(self) -> str:
        """The question to ask when SQLite cannot write."""
        where = self.path or "the temp folder (TMPDIR or SQLITE_TMPDIR)"
        return f"is there space left in {where}?"

    def _note_failure(self, exc: BaseException) -> None:
        # A taken order number is the request's fault, not the store's.
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
            exc, sqlite3.IntegrityError
        ):
            self.failure = f"{type(exc).__name__}: {exc}"

    # -- reading
    def rows(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.db.conn.execute(sql, params).fetchall()]

    def row(self, sql: str, params: tuple | dict = ()) -> dict | None:
        with self._lock:
            found = self.db.conn.execute(sql, params).fetchone()
        return dict(found) if found is not None else None

    def value(self, sql: str, params: tuple | dict = ()) -> Any:
        with self._lock:
            found = self.db.conn.execute(sql, params).fetchone()
        return found[0] if found is not None else None

    def data_version(self) -> int:
        """A number that moves whenever another connection commits a change."""
        return self.value("PRAGMA data_version")

    # -- writing (call inside a transaction)
    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self.db.conn.execute(sql, params)
            finally:
                if not self._depth:  # a statement of its own: it has ended
                    self._move_master_if_touched()

    def insert(self, table: str, row: dict) -> int:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values())
        )
        return cursor.lastrowid

    def insert_many(self, table: str, rows: list[dict]) -> None:
        """Rows that all have the same keys, in one statement."""
        if not rows:
            return
        columns = ", ".join(rows[0])
        marks = ", ".join("?" for _ in rows[0])
        with self._lock:
            self.db.conn.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                [tuple(row.values()) for row in rows],
            )

    def update(self, table: str, where: dict, values: dict) -> int:
        sets = ", ".join(f"{k} = ?" for k in values)
        conds = " AND ".join(f"{k} = ?" for k in where)
        cursor = self.execute(
            f"UPDATE {table} SET {sets} WHERE {conds}",
            (*values.values(), *where.values()),
        )
        return cursor.rowcount

    def next_number(self, key: str) -> int:
        """A counter that survives restarts (document numbers, pack ids)."""
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, 1) "
            "ON CONFLICT(key) DO UPDATE SET value = value + 1",
            (key,),
        )
        return self.value("SELECT value FROM meta WHERE key = ?", (key,))


class Checkpointer:
    """Copies the WAL back into the database file, off the commits' path.

    One thread, with a connection of its own, every ``every`` seconds. The
    copy needs no lock, so writers go on meanwhile. Once the WAL is
    ``restart_pages`` long, the checkpointer takes the writers' turn (across
    processes when the store is shared) for a moment, copies the last pages
    and waits for the readers to leave the WAL, so that the next commit
    starts it over.
    """

    def __init__(
        self,
        store: Store,
        every: float = CHECKPOINT_EVERY,
        restart_pages: int = RESTART_PAGES,
    ) -> None:
        if not store.path:
            raise ValueError("only a database file has a WAL to copy back")
        self.store = store
        self.every = every
        self.restart_pages = restart_pages
        self._restart_at = restart_pages
        self._conn = sqlite3.connect(
            store.path, check_same_thread=False, isolation_level=None
        )
        self._conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.store.leave_checkpoints_to_background()
        self._thread = threading.Thread(
            target=self._loop, name="shipper-sim-checkpoints", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._conn.close()

    def run_once(self) -> int:
        """Copy the WAL back, and start it over once long; its length before."""
        _, length, _ = self._checkpoint("PASSIVE")
        if length >= self._restart_at:
            with self.store.writers_turn():
                busy, _, _ = self._checkpoint("RESTART")
            # Busy: readers were still on the WAL after RESTART_WAIT_MS.
            self._restart_at = self.restart_pages + (length if busy else 0)
        return length

    def _checkpoint(self, mode: str) -> tuple[int, int, int]:
        # (busy, pages in the WAL, pages copied back)
        return self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.run_once()
            except sqlite3.Error as exc:  # a full disk, say: the next turn retries
                log.warning("could not copy the WAL back into the database: %s", exc)
