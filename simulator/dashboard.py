"""The dashboard at ``/_sim/``: one page that shows the outbound flow live.

Plain HTML, CSS and JavaScript shipped inside the package; nothing is built
and nothing is fetched from outside the simulator. The page reads and acts
through the control API (``/_sim/...``) only, so everything it shows a user
can also be had with ``curl``. It polls ``/_sim/changes`` about once a
second and fetches again only what moved.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from .statuses import (
    API_STATUSES,
    EDITABLE_STATUSES,
    FINAL_STATUSES,
    PENDING_AUDIT,
    STEPS,
    WMS_CODE_NAMES,
)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/_sim",
    static_folder="static",
    static_url_path="/dashboard/static",
    template_folder="templates",
)

# How often the page asks whether anything changed, in milliseconds.
POLL_INTERVAL_MS = 1000


@bp.get("/")
def show_dashboard():
    return render_template(
        "dashboard.html",
        statuses=API_STATUSES,
        ladder=status_ladder(),
        poll_interval_ms=POLL_INTERVAL_MS,
    )


def status_ladder() -> dict:
    """The status table as the page's script reads it (see statuses.py)."""
    return {
        "api_statuses": list(API_STATUSES),
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "partial_code": s.partial_code,
                "full_code": s.full_code,
                "quantity": s.quantity,
                "capped_by": s.capped_by,
            }
            for s in STEPS
        ],
        "wms_codes": WMS_CODE_NAMES,
        "editable": sorted(EDITABLE_STATUSES),
        "final": sorted(FINAL_STATUSES),
        "pending_audit": PENDING_AUDIT,
    }
