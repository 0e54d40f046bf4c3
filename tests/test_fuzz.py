"""Thousands of malformed and boundary requests against every Shipper route.

Whatever comes in, the answer is Shipper's envelope (or the gateway's 401),
``metadata.http_status_code`` is the HTTP status, a refusal carries
``errors[]``, nothing is ever a 5xx, and a refused create or update leaves
no trace: no order, line, event, webhook or job appears, none changes.

Hypothesis runs derandomized (the same examples every run) and without its
example database, so CI is stable; the whole module takes about half a
minute.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from http import HTTPStatus
from io import BytesIO
from urllib.parse import quote

import pytest
from conftest import DEMO_KEY, b2b_body, b2c_body, cancel_body, close_app
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import schemas
from simulator.app import create_app
from simulator.config import Config
from simulator.errors import ERROR_CODES
from simulator.store import SCHEMA


def fuzz(examples: int) -> settings:
    """Stable runs: the same examples each time, no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


V3 = "/v3/fulfillment"
HEADERS = {"x-api-key": DEMO_KEY}
# What a refused request must leave as it was.
STATE_TABLES = ("orders", "order_lines", "order_events", "deliveries", "jobs")
LIMIT = Config().max_body_bytes


# -- one simulator for the whole module (hypothesis reruns a test's body, not
# -- its fixtures)


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[Flask]:
    app = create_app(Config(start_workers=False))
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def http(fuzz_app: Flask) -> FlaskClient:
    client = fuzz_app.test_client()
    # Orders for update and cancel to find.
    for kind, body in (("oms", b2c_body("FUZZ-B2C")), ("wms", b2b_body("FUZZ-B2B"))):
        response = client.post(f"{V3}/outbound/{kind}", json=body, headers=HEADERS)
        assert response.status_code == 200, response.headers.get("x-sim-error")
    return client


def _marks(store, table: str) -> object:
    """What changes with any row a table takes or loses.

    Its count and last rowid; a table without one (its rows kept by key) is
    small here and compared whole.
    """
    spec = SCHEMA[table]
    if spec.get("without_rowid"):
        key = ", ".join(spec["pk"])
        return store.rows(f"SELECT * FROM {table} ORDER BY {key}")
    return tuple(store.rows(f"SELECT COUNT(*), MAX(rowid) FROM {table}")[0].values())


def snapshot(app: Flask) -> dict[str, object]:
    """What a refused request must not change.

    Counts and last ids of every table, and in full what an update or cancel
    could touch: the two FUZZ-* orders, their lines, and the stock.
    """
    store = app.extensions["shipper_sim"].store
    marks: dict[str, object] = {table: _marks(store, table) for table in STATE_TABLES}
    targets = "SELECT id FROM orders WHERE order_no IN ('FUZZ-B2C', 'FUZZ-B2B')"
    marks["targets"] = store.rows(f"SELECT * FROM orders WHERE id IN ({targets})")
    marks["lines"] = store.rows(
        f"SELECT * FROM order_lines WHERE order_id IN ({targets}) "
        "ORDER BY order_id, line_no"
    )
    marks["stock"] = store.rows(
        "SELECT * FROM stock ORDER BY client_id, warehouse_id, sku"
    )
    return marks


def order_count(app: Flask) -> int:
    return app.extensions["shipper_sim"].store.value("SELECT COUNT(*) FROM orders")


def assert_shipper_answer(response) -> dict:
    """Shipper's envelope (or the gateway's 401), never a 5xx; answers the body."""
    status = response.status_code
    reason = response.headers.get("x-sim-error")
    assert status < 500, reason
    assert response.is_json, response.get_data()[:200]
    assert response.headers.get("x-request-id")

    body = response.get_json()
    metadata = body["metadata"]
    if status == 401:
        assert metadata["status_code"] == 401
        assert metadata["error"]["code"] == 802
        return body

    assert metadata["http_status_code"] == status
    assert metadata["http_status"] == HTTPStatus(status).phrase
    assert isinstance(metadata["timestamp"], int)
    if status >= 400:
        (error,) = metadata["errors"]
        assert error["code"] in ERROR_CODES
        assert error["message"] == ERROR_CODES[error["code"]].message
        assert reason, "a refusal says why in x-sim-error"
    else:
        assert "errors" not in metadata
    return body


# -- values


def huge_ints() -> st.SearchStrategy[int]:
    return st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30, 10**400])


def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=30),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=8).map(
            lambda t: t * 40
        ),
        st.sampled_from(["", " ", "\t\n", "null", "0", "1e3", "SO-1", "💥" * 60]),
    )


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints(),
    st.floats(allow_nan=False, allow_infinity=False),
    texts(),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


WRONG_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from([1, 10, 100, 300]).map(nested),
    st.sampled_from([[], {}, [[]], [{}], {"data": {}}]),
)


# -- bodies

BODY_ROUTES = {
    "create_b2c": ("POST", f"{V3}/outbound/oms"),
    "create_b2b": ("POST", f"{V3}/outbound/wms"),
    "update_b2c": ("PUT", f"{V3}/outbound/oms"),
    "update_b2b": ("PUT", f"{V3}/outbound/wms"),
    "cancel_b2c": ("PATCH", f"{V3}/outbound/oms/cancel"),
    "cancel_b2b": ("PATCH", f"{V3}/outbound/wms/cancel"),
}
CREATE_SCHEMAS = {"oms": schemas.B2CCreateSchema, "wms": schemas.B2BCreateSchema}
NUMBER_FIELD = {"oms": "so_number", "wms": "doc_no"}
numbers = itertools.count(1)


def valid_body(route: str) -> dict:
    """A body that would be accepted: a fresh create, or one for FUZZ-*."""
    kind = "oms" if route.endswith("b2c") else "wms"
    if route.startswith("cancel"):
        return cancel_body(f"FUZZ-{'B2C' if kind == 'oms' else 'B2B'}")
    number = f"FUZZ-{next(numbers)}" if route.startswith("create") else None
    body = b2c_body() if kind == "oms" else b2b_body()
    body[NUMBER_FIELD[kind]] = number or f"FUZZ-{'B2C' if kind == 'oms' else 'B2B'}"
    return body


def field_paths(body: object, prefix: tuple = ()) -> list[tuple]:
    """Every place a value sits in ``body``, as a path of keys and indexes."""
    paths = [prefix] if prefix else []
    if isinstance(body, dict):
        for key, value in body.items():
            paths += field_paths(value, (*prefix, key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            paths += field_paths(value, (*prefix, index))
    return paths


@st.composite
def mutated_body(draw, route: str) -> dict:
    """A valid body with one place broken: a wrong value, gone, or extra."""
    body = valid_body(route)
    path = draw(st.sampled_from(field_paths(body)))
    *parents, last = path
    holder = body
    for key in parents:
        holder = holder[key]

    action = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
    if action == "replace":
        holder[last] = draw(WRONG_VALUES)
    elif action == "delete":
        del holder[last]
    elif isinstance(holder, dict):
        holder[draw(st.text(min_size=1, max_size=20))] = draw(JSON_VALUES)
    return body


def send(http: FlaskClient, route: str, **kwargs):
    method, path = BODY_ROUTES[route]
    headers = {**HEADERS, **kwargs.pop("headers", {})}
    return http.open(path, method=method, headers=headers, **kwargs)


def assert_refusal_left_no_trace(app, before, response) -> None:
    if response.status_code != 200:
        assert snapshot(app) == before, response.headers.get("x-sim-error")


@pytest.mark.parametrize("route", list(BODY_ROUTES))
@fuzz(100)
@given(body=JSON_VALUES)
def test_random_json_bodies_are_answered_in_the_envelope(fuzz_app, http, route, body):
    before = snapshot(fuzz_app)

    response = send(http, route, json=body)

    assert_shipper_answer(response)
    assert response.status_code in (200, 400)
    assert_refusal_left_no_trace(fuzz_app, before, response)


@pytest.mark.parametrize("route", list(BODY_ROUTES))
@fuzz(200)
@given(data=st.data())
def test_broken_bodies_are_refused_and_leave_no_trace(fuzz_app, http, route, data):
    body = data.draw(mutated_body(route))
    before = snapshot(fuzz_app)
    orders_before = order_count(fuzz_app)

    response = send(http, route, json=body)

    assert_shipper_answer(response)
    assert_refusal_left_no_trace(fuzz_app, before, response)
    created = 1 if route.startswith("create") and response.status_code == 200 else 0
    assert order_count(fuzz_app) == orders_before + created


RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8")),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf{}",
            b'{"so_number": "\\ud800"}',
            b'{"details": [{"qty_ordered": NaN}]}',
            b'{"order_price": -Infinity}',
            b"[" * 100_000,
            b'{"a":' * 100_000,
            b"{" + b'"k": 1, ' * 20_000 + b'"k": 2}',
            b'{"warehouse_id": "WH-TGR04"',
        ]
    ),
)


@pytest.mark.parametrize("route", list(BODY_ROUTES))
@fuzz(60)
@given(raw=RAW_BODIES, content_type=st.sampled_from(["application/json", "text/plain"]))
def test_bodies_that_are_not_json_are_refused_with_810(
    fuzz_app, http, route, raw, content_type
):
    before = snapshot(fuzz_app)

    response = send(http, route, data=raw, content_type=content_type)

    body = assert_shipper_answer(response)
    if response.status_code != 200:
        assert body["metadata"]["errors"][0]["code"] in (810, 3011, 3012, 3022)
    assert_refusal_left_no_trace(fuzz_app, before, response)


# -- boundaries, field by field


def string_limits(kind: str) -> list[tuple[str, int]]:
    fields = CREATE_SCHEMAS[kind]().fields
    return [
        (name, field.max_length)
        for name, field in fields.items()
        if isinstance(field, schemas.StrictString)
        and not isinstance(field, schemas.Choice | schemas.TimeText)
        and field.max_length is not None
        and name not in ("mobile", "zipcode")  # older names: they must agree
    ]


def text_of_length(name: str, length: int) -> str:
    if "mail" in name:
        return "a" * (length - len("@example.com")) + "@example.com"
    return "A" * length


BOUNDARY_CASES = [
    (kind, name, limit)
    for kind in ("oms", "wms")
    for name, limit in string_limits(kind)
]


@pytest.mark.parametrize(
    "kind,name,limit", BOUNDARY_CASES, ids=[f"{k}-{n}" for k, n, _ in BOUNDARY_CASES]
)
def test_strings_at_their_limit_pass_and_one_more_is_refused(
    fuzz_app, http, kind, name, limit
):
    route = f"create_{'b2c' if kind == 'oms' else 'b2b'}"

    at_limit = valid_body(route) | {name: text_of_length(name, limit)}
    response = send(http, route, json=at_limit)
    assert_shipper_answer(response)
    # It may still break a rule of its own (a warehouse this client lacks).
    assert f"{name}: must be at most" not in (response.headers.get("x-sim-error") or "")

    over = valid_body(route) | {name: text_of_length(name, limit + 1)}
    before = snapshot(fuzz_app)
    response = send(http, route, json=over)
    body = assert_shipper_answer(response)
    assert body["metadata"]["errors"][0]["code"] == 810
    assert (
        f"{name}: must be at most {limit} characters" in response.headers["x-sim-error"]
    )
    assert snapshot(fuzz_app) == before


@pytest.mark.parametrize("kind", ["oms", "wms"])
@pytest.mark.parametrize(
    "qty,accepted",
    [(0, False), (1, True), (schemas.MAX_QTY, True), (schemas.MAX_QTY + 1, False)],
)
def test_line_quantities_at_their_bounds(fuzz_app, http, kind, qty, accepted):
    route = f"create_{'b2c' if kind == 'oms' else 'b2b'}"
    body = valid_body(route)
    body["details"] = body["details"][:1]
    body["details"][0]["qty_ordered"] = qty

    response = send(http, route, json=body)

    assert_shipper_answer(response)
    reason = response.headers.get("x-sim-error") or ""
    assert ("details[0].qty_ordered" in reason) is not accepted


@pytest.mark.parametrize("kind", ["oms", "wms"])
@pytest.mark.parametrize("count,accepted", [(0, False), (1, True), (501, False)])
def test_line_counts_at_their_bounds(http, kind, count, accepted):
    route = f"create_{'b2c' if kind == 'oms' else 'b2b'}"
    body = valid_body(route)
    line = body["details"][0]
    body["details"] = [{**line, "line_no": n} for n in range(1, count + 1)]
    if kind == "oms":
        body["details"] = [
            {k: v for k, v in d.items() if k != "line_no"} for d in body["details"]
        ]

    response = send(http, route, json=body)

    assert_shipper_answer(response)
    assert ("details:" in (response.headers.get("x-sim-error") or "")) is not accepted


# -- bodies too large


class CountingStream(BytesIO):
    """A request body that counts how much of it the simulator read."""

    def __init__(self, size: int) -> None:
        super().__init__(b'{"a": "' + b"x" * (size - 9) + b'"}')
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.taken += count
        return count


@pytest.mark.parametrize("route", list(BODY_ROUTES))
def test_a_body_over_the_limit_is_refused_before_it_is_read(fuzz_app, http, route):
    stream = CountingStream(LIMIT * 3)
    before = snapshot(fuzz_app)

    response = send(
        http,
        route,
        input_stream=stream,
        content_type="application/json",
        headers={"Content-Length": str(LIMIT * 3)},
    )

    body = assert_shipper_answer(response)
    assert response.status_code == 413
    assert body["metadata"]["errors"][0]["code"] == 810
    assert stream.taken == 0
    assert snapshot(fuzz_app) == before


@pytest.mark.parametrize("route", ["create_b2c", "cancel_b2b"])
def test_a_body_over_the_limit_without_a_length_is_cut_off(fuzz_app, http, route):
    """Chunked: no Content-Length, so the limit is found while reading."""
    stream = CountingStream(LIMIT * 3)

    response = send(
        http,
        route,
        input_stream=stream,
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert_shipper_answer(response)
    assert response.status_code == 413
    assert stream.taken <= LIMIT + 64 * 1024


def test_a_body_at_the_limit_is_read(http):
    padding = " " * (LIMIT - len(json.dumps(valid_body("create_b2b"))))
    raw = (json.dumps(valid_body("create_b2b")) + padding).encode()
    assert len(raw) == LIMIT

    response = send(http, "create_b2b", data=raw, content_type="application/json")

    assert_shipper_answer(response)
    assert response.status_code == 200


# -- query strings and path segments of every GET route

QUERY_NAMES = {
    "list": [f.data_key or n for n, f in schemas.ListQuerySchema().fields.items()],
    "express": [
        f.data_key or n for n, f in schemas.ExpressQuerySchema().fields.items()
    ],
    "stock": [f.data_key or n for n, f in schemas.StockQuerySchema().fields.items()],
    "stock_warehouse": ["skus", "page", "limit"],
}
GET_ROUTES = {
    "list": f"{V3}/outbounds/{{segment}}",
    "detail_wms": f"{V3}/warehouse/WH-TGR04/outbound/wms/{{segment}}",
    "detail_oms": f"{V3}/warehouse/{{segment}}/outbound/oms/FUZZ-B2C",
    "express": f"{V3}/express",
    "stock": f"{V3}/inventory/stock",
    "stock_warehouse": f"{V3}/inventory/stock/warehouse",
}
QUERY_VALUES = st.one_of(
    texts(),
    st.integers().map(str),
    huge_ints().map(str),
    st.sampled_from(
        ["2022-02-30", "2022-13-01", "9999-12-31", "0000-00-00", "WMS", "OMS", "OMSWMS"]
    ),
    st.sampled_from(list(schemas.API_STATUSES)).map(str.lower),
)


@st.composite
def query_strings(draw, route: str) -> str:
    names = QUERY_NAMES.get(route, []) + ["x", "page", "limit"]
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(names) | st.text(max_size=8), QUERY_VALUES),
            max_size=25,
        )
    )
    if draw(st.booleans()):
        # Encoded as a client would.
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    # Or raw: stray %, +, &, = and broken escapes left as they are.
    raw = "&".join(f"{k}={v}" for k, v in pairs)
    return quote(raw, safe="%&=+;")


SEGMENTS = st.one_of(
    st.sampled_from(["WMS", "OMS", "wms", "FUZZ-B2B", "FUZZ-B2C", "WH-TGR04"]),
    st.text(min_size=1, max_size=60),
)


@pytest.mark.parametrize("route", list(GET_ROUTES))
@fuzz(120)
@given(data=st.data())
def test_random_query_strings_are_answered_in_the_envelope(http, route, data):
    query = data.draw(query_strings(route))
    segment = quote(data.draw(SEGMENTS), safe="")
    path = GET_ROUTES[route].format(segment=segment)

    response = http.get(path, query_string=query, headers=HEADERS)

    body = assert_shipper_answer(response)
    assert response.status_code in (200, 400, 404)
    if response.status_code == 200 and "pagination" in body:
        page = body["pagination"]
        assert 0 <= page["current_elements"] <= schemas.MAX_LIMIT
        assert page["current_elements"] <= page["total_elements"] or (
            page["current_elements"] == 0
        )


@fuzz(150)
@given(
    key=st.one_of(
        st.none(), st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF))
    ),
    route=st.sampled_from([*BODY_ROUTES, *GET_ROUTES]),
)
def test_random_api_keys_get_the_gateways_401(http, key, route):
    if route in BODY_ROUTES:
        method, path = BODY_ROUTES[route]
    else:
        method, path = "GET", GET_ROUTES[route].format(segment="WMS")
    headers = {} if key is None else {"x-api-key": key}

    response = http.open(path, method=method, headers=headers, json={})

    assert_shipper_answer(response)
    if key != DEMO_KEY:
        assert response.status_code == 401
