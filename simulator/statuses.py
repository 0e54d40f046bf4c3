"""The order status ladder: one table that every other module reads.

Each warehouse step reaches one WMS code when every line holds all it was
ordered, and its "partial" code when some line holds less. The API status a
client sees (``so_status``) follows from the code. Cancel and update are
allowed only while nothing has been allocated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    partial_code: str | None
    full_code: str
    status: str
    # The line quantity this step fills (None: the step moves no quantity).
    quantity: str | None
    # The quantity it may reach at most: what the step before reached.
    capped_by: str | None


# The warehouse steps, in order. Release is for B2C orders only.
STEPS: tuple[Step, ...] = (
    Step("release", None, "00", "CREATED", "qty_released", "qty_ordered"),
    Step("allocate", "30", "40", "ALLOCATED", "qty_allocated", "qty_released"),
    Step("pick", "50", "60", "PICKED", "qty_picked", "qty_allocated"),
    Step("pack", "62", "63", "PACKED", "qty_packed", "qty_picked"),
    Step("load", "65", "66", "PACKED", "qty_loaded", "qty_packed"),
    Step("ship", "70", "80", "SHIPPED", "qty_shipped", "qty_loaded"),
    Step("close", None, "99", "CLOSED", None, None),
)

STEP_BY_NAME: dict[str, Step] = {s.name: s for s in STEPS}
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)

# WMS code -> name, as Shipper's WMS names them.
WMS_CODE_NAMES: dict[str, str] = {
    "00": "Create SO",
    "30": "Partially Allocated",
    "40": "Allocated",
    "50": "Partially Picked",
    "60": "Picked",
    "62": "Partially Cartonized",
    "63": "Cartonized",
    "65": "Partially Loaded",
    "66": "Loaded",
    "70": "Partially Shipped",
    "80": "Shipped",
    "90": "Shipment Order Cancelled",
    "99": "Shipment Order Closed",
}

# The API status of each WMS code.
STATUS_OF_CODE: dict[str, str] = {
    "00": "CREATED",
    "30": "ALLOCATED",
    "40": "ALLOCATED",
    "50": "PICKED",
    "60": "PICKED",
    "62": "PACKED",
    "63": "PACKED",
    "65": "PACKED",
    "66": "PACKED",
    "70": "SHIPPED",
    "80": "SHIPPED",
    "90": "CANCELLED",
    "99": "CLOSED",
}

CANCELLED_CODE = "90"

# Every API status, in ladder order. REGISTERED is the OMS-only state of a
# B2C order before release; it has no WMS code.
API_STATUSES: tuple[str, ...] = (
    "REGISTERED",
    "CREATED",
    "ALLOCATED",
    "PICKED",
    "PACKED",
    "SHIPPED",
    "CLOSED",
    "CANCELLED",
)

# Where cancel and update stop: allowed only in these statuses.
EDITABLE_STATUSES: frozenset[str] = frozenset({"REGISTERED", "CREATED"})
FINAL_STATUSES: frozenset[str] = frozenset({"CLOSED", "CANCELLED"})

# Open orders still hold stock back from what can be sold (OMS stock).
OPEN_STATUSES: frozenset[str] = frozenset(
    {"REGISTERED", "CREATED", "ALLOCATED", "PICKED", "PACKED"}
)

# Sub-order status shown by the OMS detail before release.
PENDING_AUDIT = "PendingAudit"


def code_for(step: Step, is_full: bool) -> str:
    """The WMS code an order takes after ``step``."""
    if is_full or step.partial_code is None:
        return step.full_code
    return step.partial_code


def step_index(name: str | None) -> int:
    """Position of a step in the ladder; -1 for "no step run yet"."""
    if name is None:
        return -1
    return STEP_NAMES.index(name)


def steps_to_reach(target: str) -> list[Step]:
    """The steps, in order, up to the first one that reaches ``target``.

    ``target`` is an API status (``SHIPPED``) or a WMS code (``66``).
    """
    for i, step in enumerate(STEPS):
        if target in (step.status, step.full_code, step.partial_code):
            return list(STEPS[: i + 1])
    raise KeyError(target)


def as_markdown() -> str:
    """The ladder as a page for the docs (``python -m simulator.statuses``)."""
    out = [
        "# Order statuses",
        "",
        "An order moves through the warehouse steps in this order. Each step",
        "takes its *partial* code when some line holds less than was ordered,",
        "and its *full* code when every line holds all of it.",
        "",
        "| step | API status (`so_status`) | partial code | full code | fills |",
        "|---|---|---|---|---|",
    ]
    for s in STEPS:
        partial = (
            f"`{s.partial_code}` {WMS_CODE_NAMES[s.partial_code]}"
            if (s.partial_code)
            else ""
        )
        full = f"`{s.full_code}` {WMS_CODE_NAMES[s.full_code]}"
        fills = f"`{s.quantity}` (up to `{s.capped_by}`)" if s.quantity else ""
        out.append(f"| {s.name} | {s.status} | {partial} | {full} | {fills} |")
    out += [
        f"| cancel | CANCELLED | | `{CANCELLED_CODE}` "
        f"{WMS_CODE_NAMES[CANCELLED_CODE]} | |",
        "",
        "- `REGISTERED` is a B2C order in the OMS before release (sub-order",
        f"  `{PENDING_AUDIT}`); B2B orders start in the WMS at `CREATED` (`00`).",
        "- Cancel and update are allowed only in "
        + ", ".join(f"`{s}`" for s in API_STATUSES if s in EDITABLE_STATUSES)
        + ": once any stock is allocated they are refused (3020, 3021).",
        "- Allocation reserves stock and takes what there is, so a short",
        "  warehouse leaves an order at `30`. A step may run again, topping",
        "  lines up, until the next step starts; then a shortfall is for good.",
        "- Ship is the goods issue: stock leaves the warehouse, the rest of the",
        "  reservation is freed, and the PGI webhook says what actually left.",
        "- Each new code sends one status webhook; a cancel sends `90`, and",
        "  nothing follows it.",
        "",
        "Drive an order with `POST /_sim/orders/{warehouse_id}/{order_no}/advance`",
        "(see [the control API](control-api.md)).",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    print(as_markdown(), end="")
