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
    def __init__(self, backend: Backend, dispatcher: Dispatcher, clock: Clock):
        self.backend = backend
        self.dispatcher = dispatcher
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        """Run what is due now; answers how many jobs and deliveries started."""
        return self.backend.run_due_jobs() + self.dispatcher.dispatch_due()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self._seconds_until_next()
            except Exception:  # keep the loop alive; the log says why
                log.exception("background step failed")
                wait = IDLE_WAIT
            if not self._stop.is_set():
                self.clock.wait(wait)

    def _seconds_until_next(self) -> float:
        due = [
            t
            for t in (self.backend.next_job_due(), self.dispatcher.next_due_at())
            if t is not None
        ]
        if not due or self.clock.is_frozen:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.001, min(due) - self.clock.now()))
