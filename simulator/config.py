"""Settings of one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Config:
    # Where state lives: None for a private temporary database, else a file.
    db_path: str | None = None
    # Fixtures to load at start and on reset; None for the built-in ones.
    fixtures_dir: Path | None = None
    # Webhook URL for clients that have none of their own.
    webhook_url: str = ""
    # Move every new order through the warehouse steps on its own.
    auto: bool = False
    # Seconds between two timed steps (clients may set their own).
    step_delay: float = 2.0
    # Seconds before each retry of a failed webhook; Shipper retries at most 3x.
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0)
    webhook_timeout: float = 5.0
    # One seed for AWBs and anything else the simulator makes up.
    seed: int = 20221
    # Requests kept in the journal.
    journal_size: int = 2000
    # Bodies larger than this are refused before they are read.
    max_body_bytes: int = 1_000_000
    # Start with the clock frozen at this Unix time (virtual time).
    freeze_at: float | None = None
    # Several processes share the database (``serve --workers``): webhooks
    # and timed steps run in one background process that polls for work,
    # and what lives in one process's memory (faults, the virtual clock) is
    # refused.
    multi_process: bool = False
    # Seconds between two looks for due work when no one can wake us.
    poll_interval: float = 0.5
    # Required on the control API and dashboard when set (wide binds).
    admin_token: str = ""
    # Start the webhook dispatcher and progression scheduler threads.
    start_workers: bool = True
    extra: dict = field(default_factory=dict)

    def webhook_url_for(self, client: dict) -> str:
        """Where a client's webhooks go: its own URL, else the default; "" if none."""
        return client["webhook_url"] or self.webhook_url
