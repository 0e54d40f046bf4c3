"""The request journal: every Shipper API request and its answer.

Newest first, bounded in size. An entry is spooled before its answer leaves
(see :mod:`simulator.spool`), and every read of the journal first moves what
is spooled into the table, so a test can read it the moment it has its
response. Each refused request carries the simulator's reason (which field,
which value, what would be accepted).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from .spool import FileSpool, MemorySpool
from .store import Store

log = logging.getLogger(__name__)

# A request body is kept whole up to this size (a 500-line order fits), so a
# verification can match any of its fields; answers are cut sooner.
BODY_LIMITS = {"request_body": 128_000, "response_body": 4000}
# A read of the journal always takes in what is spooled first. Besides, while
# the simulator's background runs, it looks every LOOK_EVERY seconds and
# takes spooled entries in once they hold TAKE_BYTES, or once TAKE_EVERY
# seconds have passed since the last take. Of what one take finds, only the
# newest ``size`` entries are read whole and stored: the older ones would be
# pushed out of the table at once. So under a steady load most entries
# never cost a parse or an insert.
LOOK_EVERY = 0.25
TAKE_EVERY = 5.0
TAKE_BYTES = 16 * 1024 * 1024
# A process that appends this many entries looks whether the spools have
# grown past SELF_TAKE_BYTES (nobody took them: no background running) and
# takes them itself then.
CHECK_EVERY = 256
SELF_TAKE_BYTES = 2 * TAKE_BYTES
# Every so many looks the background also removes the spool files of
# processes that are gone, when every line of them is in already.
TIDY_EVERY = 20


class Journal:
    def __init__(self, store: Store, size: int, spool_folder: str | None = None):
        self.store = store
        self.size = size
        self.spool = FileSpool(spool_folder) if spool_folder else MemorySpool(size)
        self._appended = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, entry: dict) -> None:
        """Spool one answered request; it is in the table by the next read."""
        cut = {}
        for key, limit in BODY_LIMITS.items():
            text = entry.get(key) or ""
            if len(text) > limit:
                text = text[:limit] + f"... ({len(text)} characters)"
            if text is not entry.get(key):
                cut[key] = text
        self.spool.append({**entry, **cut} if cut else entry)
        self._appended += 1
        if self._appended % CHECK_EVERY != 0:
            return
        if self.spool.spooled_bytes(self.store) >= SELF_TAKE_BYTES:
            self.take_spooled()

    def take_spooled(self) -> int:
        """Move what every process spooled into the table; how many entries.

        In one transaction: the entries, with ids in the order they were
        answered, and the trim to ``size``.
        """
        if not self.spool.pending(self.store):
            return 0
        with self.store.transaction():
            batch = self.spool.take(self.store, keep=self.size)
            # Once the outermost transaction (a reset's, say) has committed,
            # not before: a rollback leaves every entry waiting, as it was.
            self.store.when_done(
                lambda: self.spool.taken(self.store, batch),
                lambda: self.spool.give_back(batch),
            )
            self.store.insert_many("journal", batch.entries)
            if batch.entries:
                self.store.move_shared_mark("requests")
                newest = self.store.value("SELECT MAX(id) FROM journal")
                self.store.execute(
                    "DELETE FROM journal WHERE id <= ?", (newest - self.size,)
                )
        return len(batch.entries)

    # -- in the background
    def start(self, every: float = LOOK_EVERY) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(every,), name="shipper-sim-journal", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop taking in the background; take what is spooled one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        # Let go of this process's own file first: taken whole, it goes too.
        self.spool.close()
        try:
            self.take_spooled()
            self.spool.tidy(self.store)
        except Exception as exc:  # a closed or full store: the spool keeps them
            log.warning("could not move spooled requests into the journal: %s", exc)

    def _loop(self, every: float) -> None:
        turns, last_take = 0, time.monotonic()
        while not self._stop.wait(every):
            turns += 1
            try:
                if (
                    time.monotonic() - last_take >= TAKE_EVERY
                    or self.spool.spooled_bytes(self.store) >= TAKE_BYTES
                ):
                    last_take = time.monotonic()
                    self.take_spooled()
                if turns % TIDY_EVERY == 0:
                    self.spool.tidy(self.store)
            except Exception as exc:  # a full disk, say: the next turn retries
                log.warning("could not move spooled requests into the journal: %s", exc)

    # -- reading
    def find(self, request_id: str) -> dict | None:
        """The entry of one request, described; None if it is not kept."""
        self.take_spooled()
        found = self.store.row(
            "SELECT * FROM journal WHERE request_id = ?", (request_id,)
        )
        return self.describe(found) if found else None

    def list(
        self,
        client_id: int | None = None,
        path: str | None = None,
        status: int | None = None,
        method: str | None = None,
        limit: int = 100,
    ) -> list[dict]:
        where, params = ["1 = 1"], []
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        if path:
            where.append("path LIKE ?")
            params.append(f"%{path}%")
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if method:
            where.append("method = ?")
            params.append(method.upper())
        self.take_spooled()
        rows = self.store.rows(
            f"SELECT * FROM journal WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?",
            (*params, min(limit, self.size)),
        )
        return [self.describe(r) for r in rows]

    @staticmethod
    def describe(row: dict) -> dict:
        """The row with its bodies as JSON, or as the text sent when they are not.

        A body with a lone surrogate ("\\ud800"), or a number too large for
        a float (1e400) or NaN, stays text: parsed, it could not be written
        out again as JSON.
        """
        out = dict(row)
        for key in ("request_body", "response_body"):
            try:
                parsed = json.loads(row[key]) if row[key] else None
                json.dumps(parsed, ensure_ascii=False, allow_nan=False).encode("utf-8")
            except (ValueError, UnicodeEncodeError, RecursionError):
                parsed = row[key]
            out[key] = parsed
        return out


_MISSING = object()


def leaf_fields(expected: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``{"details": [{"sku": "A"}]}`` -> ``[("details.0.sku", "A")]``.

    Keys may already be dotted paths (``{"details.0.sku": "A"}``).
    """
    out: list[tuple[str, object]] = []
    for key, value in expected.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(leaf_fields(value, path + "."))
        elif isinstance(value, list) and value:
            out.extend(
                leaf_fields({str(i): v for i, v in enumerate(value)}, path + ".")
            )
        else:
            out.append((path, value))
    return out


def value_at(document: object, path: str) -> object:
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def differences(document: object, expected: list[tuple[str, object]]) -> list[str]:
    out = []
    for path, want in expected:
        got = value_at(document, path)
        if got is _MISSING:
            out.append(f"{path}: expected {want!r}, missing")
        elif want == {} and isinstance(got, dict):
            continue  # an empty object is a subset of any object
        elif got != want:
            out.append(f"{path}: expected {want!r}, got {got!r}")
    return out


def verify_requests(
    entries: list[dict],
    path: str,
    method: str | None = None,
    body: dict | None = None,
    status: int | None = None,
    count: int | None = None,
    at_least: int | None = None,
) -> dict:
    """Was ``path`` called as expected? On failure, the closest requests."""
    expected = leaf_fields(body) if body else []

    def same_route(e: dict) -> bool:
        entry_path = e["path"] if "?" in path else e["path"].split("?", 1)[0]
        return entry_path == path and (method is None or e["method"] == method)

    def problems(e: dict) -> list[str]:
        found = differences(e["request_body"], expected)
        if status is not None and e["status"] != status:
            found.append(f"status: expected {status}, got {e['status']}")
        return found

    matched = [e for e in entries if same_route(e) and not problems(e)]
    if count is None and at_least is None:
        at_least = 1
    ok = len(matched) == count if count is not None else len(matched) >= at_least

    wanted = f"exactly {count}" if count is not None else f"at least {at_least}"
    call = f"{method or 'any method'} {path}"
    detail = f" with {dict(expected)}" if expected else ""
    detail += f" answered {status}" if status is not None else ""
    message = f"expected {wanted} call(s) to {call}{detail}; found {len(matched)}"

    result = {"ok": ok, "matched": len(matched), "message": message}
    if not ok:
        ranked = sorted(
            entries,
            key=lambda e: (not same_route(e), len(problems(e)), -e["id"]),
        )
        result["closest"] = [
            {
                "id": e["id"],
                "method": e["method"],
                "path": e["path"],
                "status": e["status"],
                "differences": (
                    problems(e)
                    if same_route(e)
                    else [f"route: {e['method']} {e['path']}"]
                ),
            }
            for e in ranked[:3]
        ]
        if result["closest"]:
            lines = [
                f"  #{c['id']} {c['method']} {c['path']} -> {c['status']}: "
                + ("; ".join(c["differences"]) or "matches")
                for c in result["closest"]
            ]
            result["message"] += "\nclosest requests:\n" + "\n".join(lines)
    return result
