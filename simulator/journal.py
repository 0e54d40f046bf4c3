"""The request journal: every Shipper API request and its answer.

Newest first, bounded in size, written before the answer leaves, so a test
can read it the moment it has its response. Each refused request carries the
simulator's reason (which field, which value, what would be accepted).
"""

from __future__ import annotations

import json

from .store import Store

BODY_LIMIT = 4000
TRIM_EVERY = 100


class Journal:
    def __init__(self, store: Store, size: int) -> None:
        self.store = store
        self.size = size
        self._writes = 0

    def record(self, entry: dict) -> None:
        entry = dict(entry)
        for key in ("request_body", "response_body"):
            text = entry.get(key) or ""
            if len(text) > BODY_LIMIT:
                text = text[:BODY_LIMIT] + f"... ({len(text)} characters)"
            entry[key] = text
        with self.store.transaction():
            new_id = self.store.insert("journal", entry)
            self._writes += 1
            if self._writes % TRIM_EVERY == 0 or new_id % TRIM_EVERY == 0:
                self.store.execute(
                    "DELETE FROM journal WHERE id <= ?", (new_id - self.size,)
                )

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
        rows = self.store.rows(
            f"SELECT * FROM journal WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?",
            (*params, min(limit, self.size)),
        )
        return [self.describe(r) for r in rows]

    @staticmethod
    def describe(row: dict) -> dict:
        out = dict(row)
        for key in ("request_body", "response_body"):
            try:
                out[key] = json.loads(row[key]) if row[key] else None
            except ValueError:
                out[key] = row[key]
        return out
