"""One clock for the whole simulator: real time, or virtual when a test says so.

Everything that schedules (webhook retries, timed progression) asks this
object for the time and waits on it, so a frozen clock that is moved forward
runs the same schedule in milliseconds.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo

JAKARTA = timezone(timedelta(hours=7), "WIB")


class Clock:
    def __init__(self) -> None:
        self._frozen_at: float | None = None
        self._changed = threading.Condition()
        # A wake that comes while nobody waits is kept for the next wait.
        self._woken = False

    # -- reading
    def now(self) -> float:
        """Unix seconds."""
        frozen = self._frozen_at
        return time.time() if frozen is None else frozen

    @property
    def is_frozen(self) -> bool:
        return self._frozen_at is not None

    # -- moving (virtual time)
    def freeze(self, at: float | None = None) -> None:
        with self._changed:
            self._frozen_at = self.now() if at is None else at
            self._woken = True
            self._changed.notify_all()

    def advance(self, seconds: float) -> float:
        with self._changed:
            if self._frozen_at is None:
                self._frozen_at = time.time()
            self._frozen_at += seconds
            self._woken = True
            self._changed.notify_all()
            return self._frozen_at

    def set_time(self, at: float) -> None:
        """Move a frozen clock to ``at`` (never backwards)."""
        with self._changed:
            current = self._frozen_at if self._frozen_at is not None else time.time()
            self._frozen_at = max(current, at)
            self._woken = True
            self._changed.notify_all()

    def unfreeze(self) -> None:
        with self._changed:
            self._frozen_at = None
            self._woken = True
            self._changed.notify_all()

    # -- waiting
    def wake(self) -> None:
        """Wake every waiter, e.g. because new work was written."""
        with self._changed:
            self._woken = True
            self._changed.notify_all()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` of real time, or until woken; True if woken."""
        with self._changed:
            if not self._woken:
                self._changed.wait(timeout=max(0.0, seconds))
            woken, self._woken = self._woken, False
            return woken


def jakarta_text(ts: float) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Jakarta, as lists and webhooks show it."""
    return datetime.fromtimestamp(ts, JAKARTA).strftime("%Y-%m-%d %H:%M:%S")


def iso_utc(ts: float) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ``, as detail responses show times."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The layouts with every field at full width, read without strptime (several
# times faster, and an answer reads an order's times each time it is shown);
# what else strptime takes, or refuses, goes through strptime.
_DATE, _TIME = "([0-9]{4})-([0-9]{2})-([0-9]{2})", "([0-9]{2}):([0-9]{2}):([0-9]{2})"
_JAKARTA_TEXT = re.compile(f"{_DATE} {_TIME}")
_ISO_UTC = re.compile(f"{_DATE}T{_TIME}Z")


def parse_jakarta_text(text: str) -> float:
    """Unix seconds of a ``yyyy-MM-dd HH:mm:ss`` string read as Jakarta time."""
    return _parse(text, _JAKARTA_TEXT, "%Y-%m-%d %H:%M:%S", JAKARTA)


def parse_iso_utc(text: str) -> float:
    """Unix seconds of a ``yyyy-MM-ddTHH:mm:ssZ`` string."""
    return _parse(text, _ISO_UTC, "%Y-%m-%dT%H:%M:%SZ", UTC)


def _parse(text: str, layout: re.Pattern, spelled: str, zone: tzinfo) -> float:
    found = layout.fullmatch(text)
    if found is None:
        naive = datetime.strptime(text, spelled)
    else:
        naive = datetime(*map(int, found.groups()))  # ValueError if out of range
    return naive.replace(tzinfo=zone).timestamp()
