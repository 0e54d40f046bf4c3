"""Shipper's outbound API: the routes under ``/v3/fulfillment``.

Routes parse and shape; the schemas validate; the backend decides. Every
answer is Shipper's envelope, and every refusal's reason (which field, which
value) goes to the ``x-sim-error`` header, the log and the request journal.
"""

from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import quote

from flask import Blueprint, current_app, g, has_request_context, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from . import envelope, jsontext, schemas
from .errors import InvalidInput, ShipperError, body_timed_out

bp = Blueprint("shipper", __name__, url_prefix="/v3/fulfillment")

KIND_OF_PATH = {"oms": "B2C", "wms": "B2B"}
CREATE_SCHEMA = {"B2C": schemas.B2CCreateSchema, "B2B": schemas.B2BCreateSchema}


def sim():
    return current_app.extensions["shipper_sim"]


def request_path() -> str:
    """The request path with its query string, as Shipper echoes it."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def read_body() -> bytes:
    """The request body; one the server cannot read (a broken chunk) is an 810."""
    try:
        return request.get_data(cache=True)
    except ClientDisconnected:  # werkzeug's word for a broken chunk, too
        g.body_unreadable = True  # a second read would wait for more
        raise InvalidInput(
            "body: could not be read whole (it stopped before its "
            "Content-Length, or its chunked encoding broke off)"
        ) from None
    except HTTPException:  # too large (413), too slow (408)
        g.body_unreadable = True
        raise
    except TimeoutError:  # gunicorn's socket, with the timeout its worker set
        g.body_unreadable = True
        sock = request.environ.get("gunicorn.socket")
        raise body_timed_out(sock.gettimeout() if sock else 0) from None
    except Exception as exc:  # what gunicorn's reader makes of a broken chunk
        g.body_unreadable = True
        raise InvalidInput(
            f"body: could not be read ({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def json_body() -> object:
    raw = read_body()
    if not raw.strip():
        raise InvalidInput("body: empty; expected a JSON object")
    return load_json(raw)


def load_json(raw: bytes) -> object:
    """Parse a request body; anything that is not strict JSON is an 810."""
    if has_request_context() and _cut_at_limit(raw):
        raise RequestEntityTooLarge()
    # orjson refuses a lone surrogate and the constants itself, and leaves
    # every error to the standard library below, which words the reason.
    parsed = jsontext.fast_loads(raw)
    if parsed is not jsontext.SLOW:
        return parsed
    try:
        parsed = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"body: not valid JSON ({_first_line(exc)})") from None

    # "\ud800" parses to a lone surrogate, which no database or UTF-8 writer
    # takes; refuse it here rather than fail later with a 500. A UTF-8 body
    # can hold one only as an escape or its UTF-8 form; a UTF-16 or UTF-32
    # one (json takes those too) is always checked.
    if json.detect_encoding(raw) == "utf-8" and not _MAY_HOLD_SURROGATE.search(raw):
        return parsed
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            "body: holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is "
            "not a Unicode character"
        ) from None
    except RecursionError:
        raise InvalidInput("body: nested too deeply") from None
    return parsed


_MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _cut_at_limit(raw: bytes) -> bool:
    """Whether a body sent without a Content-Length (chunked) was cut short.

    werkzeug stops reading such a body at ``max_content_length`` and hands
    over what it read, without an error; one more byte from the stream tells
    a body that was larger from one that just fit.
    """
    limit = request.max_content_length
    return (
        request.content_length is None
        and limit is not None
        and len(raw) >= limit
        and bool(request.input_stream.read(1))
    )


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]


def ok(data=None, pagination=None, path: str | None = None):
    return envelope.success(path or request_path(), data, pagination), 200


@bp.before_request
def before_shipper_request():
    """Every Shipper route: the client's key, no OPTIONS, a fault if one is set."""
    return authenticate() or refuse_options() or inject_fault()


def authenticate():
    """Every Shipper route needs the client's ``x-api-key``."""
    key = request.headers.get("x-api-key", "")
    client = sim().backend.client_by_key(key) if key else None
    if client is None:
        g.sim_reason = "x-api-key: " + ("missing" if not key else "unknown key")
        return envelope.unauthorized(request.method, request.path), 401
    g.client = client
    return None


def refuse_options():
    """No route of Shipper's answers OPTIONS: the same as a wrong method."""
    if request.method == "OPTIONS":
        raise ShipperError(10004, f"no route OPTIONS {request.path}")
    return None


def inject_fault():
    """Answer as a fault set through ``POST /_sim/faults`` says, if one matches."""
    faults = sim().faults
    if not faults.any():
        return None
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    fault = faults.take_api(
        endpoint, request.method, request.path, g.client["client_id"]
    )
    if fault is None:
        return None

    g.sim_reason = f"{fault.summary()} injected"
    if fault.delay:
        time.sleep(fault.delay)
    if fault.drop:
        _drop_connection()
        return "", 500
    if fault.error_code:
        return envelope.error(request_path(), fault.error_code)
    if fault.status:
        return envelope.error(request_path(), 803, fault.status)
    return None  # a delay alone: answer as usual, only later


def _drop_connection() -> None:
    """Close the client's connection without an answer."""
    conn = request.environ.get("werkzeug.socket") or request.environ.get(
        "gunicorn.socket"
    )
    if conn is not None:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- create, update, cancel


@bp.post("/outbound/<any(oms, wms):kind_path>")
def create_sales_order(kind_path: str):
    kind = KIND_OF_PATH[kind_path]
    body = schemas.load_body(CREATE_SCHEMA[kind], json_body())
    data = sim().backend.create_sales_order(g.client, kind, body, g.request_id)
    return ok(data)


@bp.put("/outbound/<any(oms, wms):kind_path>")
def update_sales_order(kind_path: str):
    kind = KIND_OF_PATH[kind_path]
    body = schemas.load_body(CREATE_SCHEMA[kind], json_body())
    sim().backend.update_sales_order(g.client, kind, body)
    return ok()


@bp.patch("/outbound/<any(oms, wms):kind_path>/cancel")
def cancel_sales_order(kind_path: str):
    kind = KIND_OF_PATH[kind_path]
    body = schemas.load_body(schemas.CancelSchema, json_body())
    sim().backend.cancel_sales_order(g.client, kind, body)
    return ok()


# -- reading


@bp.get("/outbounds/<outbound_type>")
def list_sales_orders(outbound_type: str):
    if outbound_type not in ("WMS", "OMS"):
        raise InvalidInput(f"outbound_type: must be WMS or OMS, got {outbound_type!r}")
    query = schemas.load_query(schemas.ListQuerySchema, request.args)
    records, pagination = sim().backend.list_sales_orders(
        g.client, outbound_type, query
    )
    return ok({"outbounds": records}, pagination)


def detail_path(warehouse_id: str, order_no: str) -> str:
    """Shipper's router appends the route parameters to the echoed path."""
    query = request.query_string.decode("latin-1")
    params = (
        f"%3Aorder_number={quote(order_no, safe='')}"
        f"&%3Awarehouse_id={quote(warehouse_id, safe='')}&"
    )
    return f"{request.path}?{query + '&' if query else ''}{params}"


@bp.get("/warehouse/<warehouse_id>/outbound/wms/<order_no>")
def get_sales_order_detail_wms(warehouse_id: str, order_no: str):
    g.detail_path = detail_path(warehouse_id, order_no)
    outbound = sim().backend.get_sales_order_detail_wms(
        g.client, warehouse_id, order_no
    )
    return ok({"outbound": outbound}, path=g.detail_path)


@bp.get("/warehouse/<warehouse_id>/outbound/oms/<order_no>")
def get_sales_order_detail_oms(warehouse_id: str, order_no: str):
    g.detail_path = detail_path(warehouse_id, order_no)
    outbound = sim().backend.get_sales_order_detail_oms(
        g.client, warehouse_id, order_no
    )
    return ok({"outbound": outbound}, path=g.detail_path)


@bp.get("/express")
def get_express_list():
    query = schemas.load_query(schemas.ExpressQuerySchema, request.args)
    express, pagination = sim().backend.get_express_list(query)
    return ok({"express": express}, pagination)


@bp.get("/inventory/stock")
def get_stock():
    query = schemas.load_query(schemas.StockQuerySchema, request.args)
    stock, pagination = sim().backend.get_stock(g.client, query)
    return ok({"stock": stock}, pagination)


@bp.get("/inventory/stock/warehouse")
def get_stock_by_warehouse():
    query = schemas.load_query(schemas.StockWarehouseQuerySchema, request.args)
    stock, pagination = sim().backend.get_stock_by_warehouse(g.client, query)
    return ok(stock, pagination)


# -- errors


@bp.errorhandler(ShipperError)
def shipper_error(exc: ShipperError):
    g.sim_reason = exc.reason
    g.sim_code = exc.code
    path = getattr(g, "detail_path", None) or request_path()
    return envelope.error(path, exc.code)
