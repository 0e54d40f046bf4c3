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
from .faults import Faults
from .store import Store

log = logging.getLogger(__name__)

MAX_RETRIES = 3
DELIVERY_STATES = ("pending", "delivered", "failed", "no_url")
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
            "      WHERE state = 'pending' AND unordered = 0 GROUP BY order_id) h "
            "ON h.id = d.id "
            "WHERE d.next_attempt_at <= ? "
            # Left alone, SQLite would read every delivery in id order.
            "UNION ALL SELECT * FROM deliveries INDEXED BY pending_deliveries "
            "WHERE state = 'pending' AND unordered = 1 AND next_attempt_at <= ? "
            "ORDER BY id LIMIT ?",
            (now, now, limit + len(busy_orders)),
        )
        return [d for d in heads if d["order_id"] not in busy_orders][:limit]

    def current(self, delivery_id: int) -> dict | None:
        return self.store.row("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))

    def hold(self, delivery: dict, seconds: float, unordered: bool) -> None:
        """Put a delivery off (a "late" or "out of order" fault)."""
        with self.store.transaction():
            self.store.update(
                "deliveries",
                {"id": delivery["id"]},
                {
                    "next_attempt_at": self.clock.now() + seconds,
                    "unordered": int(unordered),
                },
            )

    def next_due_at(self, busy_orders: set[int]) -> float | None:
        """When the next delivery that may go out falls due.

        Only each order's first pending delivery counts (the others wait for
        it), plus unordered ones, and none of an order mid-delivery.
        """
        busy = ", ".join(str(int(o)) for o in busy_orders) or "-1"
        return self.store.value(
            "SELECT MIN(d.next_attempt_at) FROM deliveries d "
            "JOIN (SELECT order_id, MIN(id) AS id FROM deliveries "
            "      WHERE state = 'pending' AND unordered = 0 GROUP BY order_id) h "
            "ON h.id = d.id "
            f"WHERE d.order_id NOT IN ({busy}) "
            "UNION ALL SELECT next_attempt_at FROM deliveries "
            "INDEXED BY pending_deliveries "
            f"WHERE state = 'pending' AND unordered = 1 AND order_id NOT IN ({busy}) "
            "ORDER BY 1 LIMIT 1"
        )

    def target_of(self, delivery: dict) -> tuple[str, str]:
        """The URL and API key to deliver to, as the client is set up now."""
        client = self.store.row(
            "SELECT webhook_url, api_key FROM clients WHERE client_id = ?",
            (delivery["client_id"],),
        )
        if client is None:
            return "", ""
        return self.config.webhook_url_for(client), client["api_key"]

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
        order_id: int | None = None,
        newest_first: bool = False,
    ) -> list[dict]:
        where, params = ["1 = 1"], []
        for column, value in (
            ("client_id", client_id),
            ("event", event),
            ("state", state),
            ("order_id", order_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if order_no is not None:  # found through the orders' index
            where.append("order_id IN (SELECT id FROM orders WHERE order_no = ?)")
            params.append(order_no)
        if state == "pending":  # the few still to go, through their own index
            where.append(
                "id IN (SELECT id FROM deliveries INDEXED BY pending_deliveries "
                "WHERE state = 'pending')"
            )
        # One snapshot: no attempt listed beside a state from before it.
        with self.store.snapshot():
            rows = self.store.rows(
                f"SELECT * FROM deliveries WHERE {' AND '.join(where)} "
                f"ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT ?",
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
        with self.store.snapshot():
            row = self.store.row(
                "SELECT * FROM deliveries WHERE id = ?", (delivery_id,)
            )
            if row is None:
                return None
            attempts = self.store.rows(
                "SELECT n, time, url, status_code, duration_ms, error "
                "FROM delivery_attempts WHERE delivery_id = ? ORDER BY id",
                (delivery_id,),
            )
        return self.describe(row, attempts)

    def redeliver(self, delivery_id: int, unordered: bool = False) -> dict | None:
        """Queue the same payload again, as a new delivery of that order."""
        with self.store.transaction():
            row = self.store.row(
                "SELECT * FROM deliveries WHERE id = ?", (delivery_id,)
            )
            if row is None:
                return None
            now = self.clock.now()
            # Nowhere to send it: logged as such at once, as when queued.
            pending = bool(self.target_of(row)[0])
            new_id = self.store.insert(
                "deliveries",
                {
                    "client_id": row["client_id"],
                    "order_id": row["order_id"],
                    "order_no": row["order_no"],
                    "warehouse_id": row["warehouse_id"],
                    "event": row["event"],
                    "payload": row["payload"],
                    "state": "pending" if pending else "no_url",
                    "attempts": 0,
                    "next_attempt_at": now if pending else None,
                    "created": now,
                    "redelivery_of": delivery_id,
                    "unordered": int(unordered),
                },
            )
            answer = self.get(new_id)
        self.clock.wake()
        return answer


class Dispatcher:
    """Sends due deliveries from a small pool, one at a time per order."""

    def __init__(
        self, outbox: Outbox, clock: Clock, config: Config, faults: Faults
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.config = config
        self.faults = faults
        self._busy: set[int] = set()
        self._idle = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")
        self._session = requests.Session()
        # Webhooks go straight to the client's URL, never through a proxy
        # that happens to be set in the environment.
        self._session.trust_env = False
        # Deliveries a fault has touched, so each is touched once, and those
        # to be sent a second time once delivered.
        self._held: set[int] = set()
        self._duplicates: set[int] = set()

    def dispatch_due(self, wait: bool = False) -> int:
        """Hand every due delivery to the pool; answers how many.

        With ``wait`` (a frozen clock), send them one after another in the
        order they were queued, each tried before the next goes, so that a
        receiver sees the same sequence on every run.
        """
        with self._idle:
            busy = set(self._busy)
        started = 0
        for delivery in self.outbox.due(busy):
            with self._idle:
                if delivery["order_id"] in self._busy:
                    continue
                self._busy.add(delivery["order_id"])
            future = self._pool.submit(self._deliver_safely, delivery)
            started += 1
            if wait:
                future.result()
        return started

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery is in flight."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout=timeout)

    def next_due_at(self) -> float | None:
        with self._idle:
            busy = set(self._busy)
        return self.outbox.next_due_at(busy)

    def _deliver_safely(self, delivery: dict) -> None:
        try:
            self.deliver(delivery)
        except Exception:  # a dispatcher thread must never die
            log.exception("webhook delivery %s failed unexpectedly", delivery["id"])
        finally:
            with self._idle:
                self._busy.discard(delivery["order_id"])
                self._idle.notify_all()
            self.clock.wake()

    def deliver(self, delivery: dict) -> str:
        # Read it again now that this order is ours: the list it came from
        # may be stale (delivered meanwhile, reset, put off).
        delivery = self.outbox.current(delivery["id"])
        if (
            delivery is None
            or delivery["state"] != "pending"
            or delivery["next_attempt_at"] > self.clock.now()
        ):
            return "skipped"
        if delivery["attempts"] == 0 and self._put_off_by_fault(delivery):
            return "held"

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

        status_code, error, duration_ms = self._post(delivery, url, api_key)
        state = self.outbox.record_attempt(
            delivery, url, status_code, duration_ms, error
        )
        log.info(
            "webhook %s %s for %s -> %s: %s%s (attempt %s, %.0f ms)",
            delivery["id"],
            delivery["event"],
            delivery["order_no"],
            url,
            status_code if status_code is not None else "no answer",
            f" {error}" if error else "",
            delivery["attempts"] + 1,
            duration_ms,
        )
        if state == "delivered" and delivery["id"] in self._duplicates:
            self._duplicates.discard(delivery["id"])
            self.outbox.redeliver(delivery["id"], unordered=True)
        return state

    def _put_off_by_fault(self, delivery: dict) -> bool:
        """Apply a webhook fault on a delivery's first try; True if put off."""
        if delivery["id"] in self._held or delivery["redelivery_of"]:
            return False
        fault = self.faults.take_webhook(
            delivery["event"], delivery["client_id"], delivery["order_no"]
        )
        if fault is None:
            return False
        self._held.add(delivery["id"])
        if fault.duplicate:
            self._duplicates.add(delivery["id"])
        if fault.late or fault.out_of_order:
            seconds = fault.late or 1.0
            self.outbox.hold(delivery, seconds, unordered=fault.out_of_order)
            log.info(
                "webhook %s put off %.1fs by %s",
                delivery["id"],
                seconds,
                fault.summary(),
            )
            return True
        return False

    def _post(self, delivery: dict, url: str, api_key: str):
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
        return status_code, error, (time.perf_counter() - started) * 1000

    def shutdown(self) -> None:
        # Deliveries in flight finish (each within the webhook timeout), so
        # the store can be closed safely right after.
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "..."
