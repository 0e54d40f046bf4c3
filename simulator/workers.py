"""The background loop: timed progression and webhook dispatch.

One thread per simulator. It runs whatever is due on the simulator's clock,
then sleeps until the next thing is due or until something new is written
(the backend wakes the clock after every change).
"""

from __future__ import annotations

import logging
import threading

from .backend import Backend
from .clock import Clock
from .webhooks import Dispatcher

log = logging.getLogger(__name__)

IDLE_WAIT = 0.5


class Workers:
    def __init__(
        self,
        backend: Backend,
        dispatcher: Dispatcher,
        clock: Clock,
        idle_wait: float = IDLE_WAIT,
        watch_other_processes: bool = False,
    ):
        self.backend = backend
        self.dispatcher = dispatcher
        self.clock = clock
        # How long to sleep with nothing due; short when other processes
        # write work that cannot wake this one.
        self.idle_wait = idle_wait
        # Others write without waking this process: between its looks, it
        # asks SQLite whether anything was committed since, and looks again
        # only then (or when something falls due).
        self.watch_other_processes = watch_other_processes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The background loop and a clock jump take turns, so virtual time
        # runs its schedule in one order only.
        self._turn = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="shipper-sim-workers", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.clock.wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.dispatcher.shutdown()

    def run_once(self) -> int:
        """Run what is due now; answers how many jobs and deliveries started.

        On a frozen clock it also waits for the deliveries it started, so a
        clock jump never overlaps them.
        """
        with self._turn:
            frozen = self.clock.is_frozen
            return self.backend.run_due_jobs() + self.dispatcher.dispatch_due(
                wait=frozen
            )

    def run_until_idle(self) -> int:
        """Run what is due now, and what that makes due now, until nothing is."""
        ran = 0
        for _ in range(10_000):
            self.dispatcher.wait_idle()
            started = self.backend.run_due_jobs() + self.dispatcher.dispatch_due(
                wait=True
            )
            if not started:
                break
            ran += started
        return ran

    def advance(self, seconds: float) -> dict:
        """Move virtual time forward, running each due step and retry in turn.

        The clock stops at every moment something is due, so a retry that
        falls due because of an earlier retry in the same jump still runs,
        at its own time, in order.
        """
        with self._turn:
            if not self.clock.is_frozen:
                self.clock.freeze()
            target = self.clock.now() + seconds
            ran = self.run_until_idle()
            while True:
                due = self._next_due()
                if due is None or due > target:
                    break
                self.clock.set_time(due)
                ran += self.run_until_idle()
            self.clock.set_time(target)
            ran += self.run_until_idle()
        return {"now": self.clock.now(), "ran": ran}

    def _next_due(self) -> float | None:
        due = [
            t
            for t in (self.backend.next_job_due(), self.dispatcher.next_due_at())
            if t is not None
        ]
        return min(due) if due else None

    def _loop(self) -> None:
        seen, due, woken = None, None, True
        while not self._stop.is_set():
            try:
                version = self._others_version()
                if woken or version is None or version != seen or self._is_due(due):
                    self.run_once()
                    seen, due = version, self._next_due()
                wait = self._seconds_until(due)
            except Exception:  # keep the loop alive; the log says why
                log.exception("background step failed")
                seen, due, wait = None, None, self.idle_wait
            if not self._stop.is_set():
                woken = self.clock.wait(wait)

    def _others_version(self) -> int | None:
        if not self.watch_other_processes:
            return None
        return self.backend.store.data_version()

    def _is_due(self, due: float | None) -> bool:
        return due is not None and due <= self.clock.now()

    def _seconds_until(self, due: float | None) -> float:
        if due is None or self.clock.is_frozen:
            return self.idle_wait
        return min(self.idle_wait, max(0.001, due - self.clock.now()))
