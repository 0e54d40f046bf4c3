"""Webhooks: the outbox of deliveries and the dispatcher that sends them.

A state change writes its delivery rows in the same transaction as the
change (see the backend); nothing is sent inside a request. The dispatcher
thread sends what is due, one delivery at a time per order so that an
order's webhooks arrive in the order the events happened, records every
attempt, and schedules retries on the simulator's clock.

Shipper's rule: a reply of 200, 201 or 202 is success (any 2xx for PGI);
anything else, a refused connection or a timeout is a failure, retried at
most 3 times.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .clock import Clock
from .config import Config
from .store import Store

log = logging.getLogger(__name__)

MAX_RETRIES = 3
SUCCESS_CODES = {"so_created": {200, 201, 202}, "status": {200, 201, 202}}


def is_success(event: str, status_code: int | None) -> bool:
    if status_code is None:
        return False
    if event == "pgi":
        return 200 <= status_code < 300
    return status_code in SUCCESS_CODES[event]


class Outbox:
    """Delivery rows: what is due, what was tried, what to send again."""

    def __init__(self, store: Store, clock: Clock, config: Config) -> None:
        self.store = store
        self.clock = clock
        self.config = config

    def due(self, busy_orders: set[int], limit: int = 32) -> list[dict]:
        """The first pending delivery of each order, if it is due."""
        now = self.clock.now()
        heads = self.store.rows(
            "SELECT d.* FROM deliveries d "
            "JOIN (SELECT order_id, MIN(id) AS id FROM deliveries "
            "      WHERE state = 'pending' GROUP BY order_id) h ON h.id = d.id "
            "WHERE d.next_attempt_at <= ? ORDER BY d.id LIMIT ?",
            (now, limit + len(busy_orders)),
        )
        return [d for d in heads if d["order_id"] not in busy_orders][:limit]

    def next_due_at(self, busy_orders: set[int]) -> float | None:
        busy = ", ".join(str(int(o)) for o in busy_orders) or "NULL"
        return self.store.value(
            "SELECT MIN(next_attempt_at) FROM deliveries "
            f"WHERE state = 'pending' AND order_id NOT IN ({busy})"
        )

    def target_of(self, delivery: dict) -> tuple[str, str]:
        """The URL and API key to deliver to, as the client is set up now."""
        client = self.store.row(
            "SELECT webhook_url, api_key FROM clients WHERE client_id = ?",
            (delivery["client_id"],),
        )
        if client is None:
            return "", ""
        return client["webhook_url"] or self.config.webhook_url, client["api_key"]

    def record_attempt(
        self,
        delivery: dict,
        url: str,
        status_code: int | None,
        duration_ms: float,
        error: str,
    ) -> str:
        """Store one attempt and decide what follows; answers the new state."""
        with self.store.transaction():
            current = self.store.row(
                "SELECT attempts, state FROM deliveries WHERE id = ?",
                (delivery["id"],),
            )
            if current is None or current["state"] != "pending":
                return "gone"  # reset or redelivered meanwhile

            attempts = current["attempts"] + 1
            now = self.clock.now()
            self.store.insert(
                "delivery_attempts",
                {
                    "delivery_id": delivery["id"],
                    "n": attempts,
                    "time": now,
                    "url": url,
                    "status_code": status_code,
                    "duration_ms": round(duration_ms, 2),
                    "error": error,
                },
            )
            if is_success(delivery["event"], status_code):
                state, next_at = "delivered", None
            elif attempts > MAX_RETRIES:
                state, next_at = "failed", None
            else:
                delays = self.config.retry_delays or (1.0,)
                delay = delays[min(attempts - 1, len(delays) - 1)]
                state, next_at = "pending", now + delay
            self.store.update(
                "deliveries",
                {"id": delivery["id"]},
                {"attempts": attempts, "state": state, "next_attempt_at": next_at},
            )
        return state

    def mark_without_url(self, delivery: dict) -> None:
        with self.store.transaction():
            self.store.execute(
                "UPDATE deliveries SET state = 'no_url' "
                "WHERE id = ? AND state = 'pending'",
                (delivery["id"],),
            )

    # -- the delivery log
    def list(
        self,
        client_id: int | None = None,
        order_no: str | None = None,
        event: str | None = None,
        state: str | None = None,
        limit: int = 500,
    ) -> list[dict]:
        where, params = ["1 = 1"], []
        for column, value in (
            ("client_id", client_id),
            ("order_no", order_no),
            ("event", event),
            ("state", state),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self.store.rows(
            f"SELECT * FROM deliveries WHERE {' AND '.join(where)} "
            "ORDER BY id LIMIT ?",
            (*params, limit),
        )
        attempts: dict[int, list[dict]] = {}
        if rows:
            ids = ", ".join(str(r["id"]) for r in rows)
            for a in self.store.rows(
                f"SELECT * FROM delivery_attempts WHERE delivery_id IN ({ids}) "
                "ORDER BY id"
            ):
                attempts.setdefault(a["delivery_id"], []).append(
                    {
                        "n": a["n"],
                        "time": a["time"],
                        "url": a["url"],
                        "status_code": a["status_code"],
                        "duration_ms": a["duration_ms"],
                        "error": a["error"],
                    }
                )
        return [self.describe(r, attempts.get(r["id"], [])) for r in rows]

    @staticmethod
    def describe(row: dict, attempts: list[dict]) -> dict:
        return {
            "id": row["id"],
            "client_id": row["client_id"],
            "order_no": row["order_no"],
            "warehouse_id": row["warehouse_id"],
            "event": row["event"],
            "state": row["state"],
            "created": row["created"],
            "next_attempt_at": row["next_attempt_at"],
            "redelivery_of": row["redelivery_of"],
            "payload": json.loads(row["payload"]),
            "attempts": attempts,
        }

    def get(self, delivery_id: int) -> dict | None:
        row = self.store.row("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        if row is None:
            return None
        attempts = self.store.rows(
            "SELECT n, time, url, status_code, duration_ms, error "
            "FROM delivery_attempts WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
        return self.describe(row, attempts)

    def redeliver(self, delivery_id: int) -> dict | None:
        """Queue the same payload again, as a new delivery of that order."""
        with self.store.transaction():
            row = self.store.row(
                "SELECT * FROM deliveries WHERE id = ?", (delivery_id,)
            )
            if row is None:
                return None
            now = self.clock.now()
            new_id = self.store.insert(
                "deliveries",
                {
                    "client_id": row["client_id"],
                    "order_id": row["order_id"],
                    "order_no": row["order_no"],
                    "warehouse_id": row["warehouse_id"],
                    "event": row["event"],
                    "payload": row["payload"],
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created": now,
                    "redelivery_of": delivery_id,
                },
            )
        self.clock.wake()
        return self.get(new_id)


class Dispatcher:
    """Sends due deliveries from a small pool, one at a time per order."""

    def __init__(self, outbox: Outbox, clock: Clock, config: Config) -> None:
        self.outbox = outbox
        self.clock = clock
        self.config = config
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")
        self._session = requests.Session()

    def dispatch_due(self) -> int:
        """Hand every due delivery to the pool; answers how many."""
        with self._busy_lock:
            busy = set(self._busy)
        due = self.outbox.due(busy)
        for delivery in due:
            with self._busy_lock:
                if delivery["order_id"] in self._busy:
                    continue
                self._busy.add(delivery["order_id"])
            self._pool.submit(self._deliver_safely, delivery)
        return len(due)

    def next_due_at(self) -> float | None:
        with self._busy_lock:
            busy = set(self._busy)
        return self.outbox.next_due_at(busy)

    def _deliver_safely(self, delivery: dict) -> None:
        try:
            self.deliver(delivery)
        except Exception:  # a dispatcher thread must never die
            log.exception("webhook delivery %s failed unexpectedly", delivery["id"])
        finally:
            with self._busy_lock:
                self._busy.discard(delivery["order_id"])
            self.clock.wake()

    def deliver(self, delivery: dict) -> str:
        url, api_key = self.outbox.target_of(delivery)
        if not url:
            self.outbox.mark_without_url(delivery)
            log.info(
                "webhook %s %s for %s: client has no webhook URL",
                delivery["id"],
                delivery["event"],
                delivery["order_no"],
            )
            return "no_url"

        status_code, error = None, ""
        started = time.perf_counter()
        try:
            reply = self._session.post(
                url,
                data=delivery["payload"].encode(),
                headers={
                    "Content-Type": "application/json",
                    "x-api-key": api_key,
                    "x-sim-delivery-id": str(delivery["id"]),
                    "x-sim-event": delivery["event"],
                },
                timeout=self.config.webhook_timeout,
            )
            status_code = reply.status_code
        except requests.Timeout:
            error = f"timed out after {self.config.webhook_timeout:g}s"
        except requests.ConnectionError as exc:
            error = f"connection failed: {_short(exc)}"
        except requests.RequestException as exc:
            error = f"request failed: {_short(exc)}"
        duration_ms = (time.perf_counter() - started) * 1000

        state = self.outbox.record_attempt(
            delivery, url, status_code, duration_ms, error
        )
        log.info(
            "webhook %s %s for %s -> %s: %s%s (%.0f ms)",
            delivery["id"],
            delivery["event"],
            delivery["order_no"],
            url,
            status_code if status_code is not None else "no answer",
            f" {error}" if error else "",
            duration_ms,
        )
        return state

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "..."
