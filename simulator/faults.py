"""Fault injection: make the next calls (or a seeded share of them) go wrong.

Faults live in memory, per simulator, until they are used up or removed.
An API fault answers a chosen Shipper error, a 429 or a 500, after a delay,
or drops the connection. A webhook fault sends a delivery twice, late, or
out of order (after the order's next webhook).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field

API_EFFECTS = ("error_code", "status", "delay", "drop")
WEBHOOK_EFFECTS = ("duplicate", "late", "out_of_order")


@dataclass
class Fault:
    id: int
    target: str  # "api" or "webhook"
    # Which calls it matches (None: any).
    endpoint: str | None = None
    method: str | None = None
    path: str | None = None
    client_id: int | None = None
    event: str | None = None
    order_no: str | None = None
    # How many it affects: the next ``count`` matches, or a ``rate`` share.
    count: int | None = 1
    rate: float | None = None
    # What happens to an API call.
    error_code: int | None = None
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    # What happens to a webhook.
    duplicate: bool = False
    late: float = 0.0
    out_of_order: bool = False
    hits: int = 0
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def describe(self) -> dict:
        out = asdict(self)
        out.pop("_rng")
        return {
            k: v
            for k, v in out.items()
            if v not in (None, False, 0.0) or k in ("id", "target", "hits", "count")
        }

    def summary(self) -> str:
        if self.target == "webhook":
            effects = [e for e in WEBHOOK_EFFECTS if getattr(self, e)]
        else:
            effects = [
                f"{e}={getattr(self, e)}" for e in API_EFFECTS if getattr(self, e)
            ]
        return f"fault {self.id} ({', '.join(str(e) for e in effects)})"


class Faults:
    def __init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, spec: dict) -> Fault:
        with self._lock:
            fault = Fault(id=self._next_id, **spec)
            fault._rng.seed(fault.seed)
            self._faults[fault.id] = fault
            self._next_id += 1
            return fault

    def list(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self._faults.values()]

    def remove(self, fault_id: int | None = None) -> int:
        with self._lock:
            if fault_id is None:
                removed = len(self._faults)
                self._faults.clear()
                return removed
            return 1 if self._faults.pop(fault_id, None) else 0

    def any(self) -> bool:
        """Whether any fault is set (read without the lock: a hint only)."""
        return bool(self._faults)

    def take_api(
        self, endpoint: str, method: str, path: str, client_id: int | None
    ) -> Fault | None:
        """The API fault this call triggers, if any (and count it as used)."""
        return self._take(
            lambda f: (
                f.target == "api"
                and _matches(f.endpoint, endpoint)
                and _matches(f.method, method)
                and (f.path is None or f.path in path)
                and (f.client_id is None or f.client_id == client_id)
            )
        )

    def take_webhook(self, event: str, client_id: int, order_no: str) -> Fault | None:
        return self._take(
            lambda f: (
                f.target == "webhook"
                and _matches(f.event, event)
                and (f.client_id is None or f.client_id == client_id)
                and (f.order_no is None or f.order_no == order_no)
            )
        )

    def _take(self, matches) -> Fault | None:
        with self._lock:
            for fault in list(self._faults.values()):
                if not matches(fault):
                    continue
                if fault.rate is not None and fault._rng.random() >= fault.rate:
                    continue
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[fault.id]
                return fault
        return None


def _matches(wanted: str | None, actual: str) -> bool:
    return wanted is None or wanted.lower() == actual.lower()
