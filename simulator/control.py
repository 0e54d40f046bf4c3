"""The simulator's own control API under ``/_sim`` (not Shipper's).

JSON in and out, no API key. Refusals answer ``{"error": ..., "field": ...}``
with a 4xx status, in plain words a person can act on.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from . import journal, schemas
from .api import load_json, read_body
from .clock import iso_utc
from .errors import ERROR_CODES, ControlError, InvalidInput, ShipperError
from .schemas import WEBHOOK_EVENTS
from .statuses import API_STATUSES, STEPS, WMS_CODE_NAMES
from .webhooks import DELIVERY_STATES

bp = Blueprint("control", __name__, url_prefix="/_sim")


def sim():
    return current_app.extensions["shipper_sim"]


def body_of(schema) -> dict:
    try:
        raw = read_body()
        data = load_json(raw) if raw.strip() else None
    except InvalidInput as exc:
        raise ControlError(exc.reason, 400, "body") from None
    try:
        return schemas.load_body(schema, data)
    except InvalidInput as exc:
        field = exc.reason.split(":", 1)[0].split(";")[0].strip()
        raise ControlError(exc.reason, 400, field) from None


# SQLite stores integers in 64 bits; a larger one cannot even be looked up.
MAX_SQL_INT = 2**63 - 1


def int_arg(name: str, minimum: int | None = None) -> int | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise ControlError(
            f"{name} must be a whole number, got {value!r}", 400, name
        ) from None
    if abs(number) > MAX_SQL_INT:
        raise ControlError(
            f"{name} must be at most {MAX_SQL_INT}, got {value!r}", 400, name
        )
    if minimum is not None and number < minimum:
        raise ControlError(
            f"{name} must be {minimum} or more, got {value!r}", 400, name
        )
    return number


def choice_arg(
    name: str, choices: tuple[str, ...], any_case: bool = False
) -> str | None:
    value = request.args.get(name) or None
    if value is None:
        return None
    if (value.upper() if any_case else value) not in choices:
        raise ControlError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}", 400, name
        )
    return value.upper() if any_case else value


@bp.url_value_preprocessor
def refuse_ids_out_of_range(endpoint: str | None, values: dict | None) -> None:
    """An id in the path too large to be stored is an id that does not exist."""
    for name, value in (values or {}).items():
        if isinstance(value, int) and value > MAX_SQL_INT:
            raise ControlError(f"no {name.removesuffix('_id')} {value}", 404, name)


@bp.errorhandler(ControlError)
def control_error(exc: ControlError):
    body = {"error": exc.message}
    if exc.field:
        body["field"] = exc.field
    return body, exc.status


@bp.get("/health")
def health():
    """``ok``, or 503 with the reason while the state cannot be written."""
    store = sim().store
    if store.failure:
        error = f"the last write failed: {store.failure}; {store.space_hint()}"
        return {"status": "failing", "error": error}, 503
    return {"status": "ok"}


@bp.post("/reset")
def reset():
    return sim().reset(int_arg("client_id"))


# -- clients and stock


@bp.get("/clients")
def list_clients():
    return {"clients": sim().backend.clients()}


@bp.post("/clients")
def add_client():
    data = body_of(schemas.ClientSchema)
    return sim().backend.add_client(data), 201


@bp.get("/clients/<int:client_id>")
def get_client(client_id: int):
    backend = sim().backend
    return backend.describe_client(backend.client(client_id))


@bp.delete("/clients/<int:client_id>")
def remove_client(client_id: int):
    return sim().remove_client(client_id)


@bp.patch("/clients/<int:client_id>")
def update_client(client_id: int):
    data = body_of(schemas.ClientUpdateSchema)
    return sim().backend.update_client(client_id, data)


@bp.put("/stock")
def set_stock():
    return sim().backend.set_stock(body_of(schemas.StockSetSchema))


@bp.get("/stock")
def list_stock():
    client_id = int_arg("client_id")
    if client_id is None:
        raise ControlError("add ?client_id= to say whose stock", 400, "client_id")
    sim().backend.client(client_id)
    return {"stock": sim().backend.stock_levels(client_id)}


# -- orders


@bp.get("/orders")
def list_orders():
    return {
        "orders": sim().backend.order_summaries(
            client_id=int_arg("client_id"),
            status=choice_arg("status", API_STATUSES, any_case=True),
            limit=int_arg("limit") or 200,
        )
    }


def order_ref(warehouse_id: str, order_no: str) -> dict:
    return sim().backend.find_order_for_control(
        warehouse_id, order_no, int_arg("client_id")
    )


@bp.get("/orders/<warehouse_id>/<order_no>")
def order_timeline(warehouse_id: str, order_no: str):
    order = order_ref(warehouse_id, order_no)
    return sim().timeline(order)


@bp.post("/orders/<warehouse_id>/<order_no>/advance")
def advance_order(warehouse_id: str, order_no: str):
    order = order_ref(warehouse_id, order_no)
    request_body = body_of(schemas.AdvanceSchema)
    outbound = sim().backend.advance_order(order["id"], request_body)
    return sim().detail_envelope(request.path, outbound)


@bp.put("/orders/<warehouse_id>/<order_no>/progression")
def set_progression(warehouse_id: str, order_no: str):
    order = order_ref(warehouse_id, order_no)
    data = body_of(schemas.ProgressionSchema)
    return sim().backend.set_order_progression(order["id"], data["mode"])


@bp.post("/orders/<warehouse_id>/<order_no>/cancel")
def cancel_order(warehouse_id: str, order_no: str):
    """Cancel as the order's client would, answering Shipper's own body."""
    order = order_ref(warehouse_id, order_no)
    backend = sim().backend
    client = backend.client(order["client_id"])
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):  # the body is optional, and loose
        payload = {}
    cancellation = {
        "order_no": order["order_no"],
        "warehouse_id": order["warehouse_id"],
        "cancel_reason": str(payload.get("cancel_reason") or "cancelled from control")[
            :50
        ],
    }
    kind_path = "oms" if order["kind"] == "B2C" else "wms"
    path = f"/v3/fulfillment/outbound/{kind_path}/cancel"
    try:
        backend.cancel_sales_order(client, order["kind"], cancellation)
    except ShipperError as exc:
        body, status = sim().error_envelope(path, exc)
        return {
            "shipper_status": status,
            "shipper_body": body,
            "reason": exc.reason,
        }, 200
    return {
        "shipper_status": 200,
        "shipper_body": sim().success_envelope(path),
        "reason": "",
    }, 200


# -- webhooks and the journal


@bp.get("/webhooks")
def list_webhooks():
    return {
        "webhooks": sim().outbox.list(
            client_id=int_arg("client_id"),
            order_no=request.args.get("order_no") or None,
            event=choice_arg("event", WEBHOOK_EVENTS),
            state=choice_arg("state", DELIVERY_STATES),
            limit=int_arg("limit", minimum=1) or 500,
            newest_first=request.args.get("newest") in ("1", "true"),
        )
    }


@bp.get("/webhooks/<int:delivery_id>")
def get_webhook(delivery_id: int):
    found = sim().outbox.get(delivery_id)
    if found is None:
        raise ControlError(f"no webhook delivery {delivery_id}", 404)
    return found


@bp.post("/webhooks/<int:delivery_id>/redeliver")
def redeliver_webhook(delivery_id: int):
    found = sim().outbox.redeliver(delivery_id)
    if found is None:
        raise ControlError(f"no webhook delivery {delivery_id}", 404)
    return found, 202


@bp.get("/requests")
def list_requests():
    status = int_arg("status")
    return {
        "requests": sim().journal.list(
            client_id=int_arg("client_id"),
            path=request.args.get("path") or None,
            status=status,
            method=request.args.get("method") or None,
            limit=int_arg("limit") or 100,
        )
    }


@bp.post("/requests/verify")
def verify_requests():
    """Was an endpoint called N times with a body matching these fields?"""
    data = body_of(schemas.VerifySchema)
    entries = sim().journal.list(client_id=data["client_id"], limit=10**9)
    return journal.verify_requests(
        entries,
        data["path"],
        method=data["method"],
        body=data["body"],
        status=data["status"],
        count=data["count"],
        at_least=data["at_least"],
    )


# -- faults


def single_process_only(what: str) -> None:
    """Faults and the virtual clock live in one process's memory."""
    if sim().config.multi_process:
        raise ControlError(
            f"{what} work in a single-process simulator only; this one runs "
            "several worker processes (serve --workers). Start it without "
            "--workers to use them.",
            409,
        )


@bp.before_request
def refuse_memory_features_across_processes():
    path = request.path
    if path.startswith("/_sim/faults"):
        single_process_only("faults")
    if path.startswith("/_sim/clock/"):
        single_process_only("the virtual clock's controls")
    return None


@bp.get("/faults")
def list_faults():
    return {"faults": sim().faults.list()}


@bp.post("/faults")
def add_fault():
    data = body_of(schemas.FaultSchema)
    if data["error_code"] is not None and data["error_code"] not in ERROR_CODES:
        known = ", ".join(str(c) for c in ERROR_CODES)
        raise ControlError(
            f"error_code {data['error_code']} is not one of Shipper's: {known}",
            400,
            "error_code",
        )
    return sim().faults.add(data).describe(), 201


@bp.delete("/faults")
def remove_faults():
    return {"removed": sim().faults.remove()}


@bp.delete("/faults/<int:fault_id>")
def remove_fault(fault_id: int):
    if not sim().faults.remove(fault_id):
        raise ControlError(f"no fault {fault_id}", 404)
    return {"removed": 1}


# -- the clock


def clock_state() -> dict:
    clock = sim().clock
    return {"now": clock.now(), "iso": iso_utc(clock.now()), "frozen": clock.is_frozen}


@bp.get("/clock")
def get_clock():
    return clock_state()


@bp.post("/clock/freeze")
def freeze_clock():
    data = body_of(schemas.ClockSchema)
    sim().clock.freeze(data["at"])
    return clock_state()


@bp.post("/clock/advance")
def advance_clock():
    """Move virtual time on, running every timed step and retry due on the way."""
    data = body_of(schemas.ClockSchema)
    ran = sim().workers.advance(data["seconds"])
    return {**clock_state(), "ran": ran["ran"]}


@bp.post("/clock/unfreeze")
def unfreeze_clock():
    sim().clock.unfreeze()
    return clock_state()


# -- reference


@bp.get("/statuses")
def status_table():
    """The status ladder, as the dashboard and the docs read it."""
    return {
        "api_statuses": list(API_STATUSES),
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "partial_code": s.partial_code,
                "full_code": s.full_code,
            }
            for s in STEPS
        ],
        "wms_codes": WMS_CODE_NAMES,
    }


# -- live views: what the dashboard polls (read-only)


@bp.get("/config")
def show_config():
    """The settings this simulator was started with, as far as a page needs."""
    config = sim().config
    return {
        "auto": config.auto,
        "step_delay": config.step_delay,
        "retry_delays": list(config.retry_delays),
        "webhook_timeout": config.webhook_timeout,
        "webhook_url": config.webhook_url,
    }


@bp.get("/changes")
def list_changes():
    """One mark per kind of state; a mark that moved means "fetch that again".

    Cheap enough to poll every second, however many orders there are: each
    mark is a counter that triggers move with every change (see
    ``store.CHANGE_MARKS_SQL``). With ``?client_id=`` the orders, webhooks
    and stock marks are that client's; the requests and clients marks are
    everyone's, as a request without a valid key belongs to no client and
    the page lists every client.
    """
    client_id = int_arg("client_id")
    sim().journal.take_spooled()  # the requests mark moves as entries land
    marks = sim().store.change_marks(client_id)
    return {"client_id": client_id, "marks": {k: str(n) for k, n in marks.items()}}


# -- the OpenAPI document of both APIs


@bp.get("/openapi.json")
def openapi_document():
    """Shipper's API and this control API as OpenAPI 3; see docs/openapi.md."""
    from . import openapi  # apispec is loaded only when the document is asked for

    return openapi.openapi_document(current_app)
