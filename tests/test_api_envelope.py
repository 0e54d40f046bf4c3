"""Shipper's envelope, the gateway's 401 and how bad requests are answered."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import DEMO_KEY, ShipperClient, b2b_body, b2c_body, cancel_body

ISO_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
UNAUTHORIZED = "Unauthorized Access. You are not authorized to access this resource."
INVALID = "Invalid Input. Please Validate Your Input."

# Every Shipper route, with a body where it takes one.
ROUTES = [
    ("POST", "/outbound/oms", b2c_body()),
    ("POST", "/outbound/wms", b2b_body()),
    ("PUT", "/outbound/oms", b2c_body()),
    ("PUT", "/outbound/wms", b2b_body()),
    ("PATCH", "/outbound/oms/cancel", cancel_body("SHOPEE-2207-000123")),
    ("PATCH", "/outbound/wms/cancel", cancel_body("ERP-SO-0042")),
    ("GET", "/outbounds/WMS", None),
    ("GET", "/outbounds/OMS", None),
    ("GET", "/warehouse/WH-TGR04/outbound/wms/ERP-SO-0042", None),
    ("GET", "/warehouse/WH-TGR04/outbound/oms/SHOPEE-2207-000123", None),
    ("GET", "/express", None),
    ("GET", "/inventory/stock?warehouse_code=WH-TGR04&stock_type=WMS", None),
    ("GET", "/inventory/stock/warehouse?skus=SKU-CAP-01", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]

# Bodies that are not a JSON object, or not JSON at all.
NOT_AN_OBJECT = {
    "empty": b"",
    "blank": b"  \n ",
    "text": b"hello",
    "truncated": b'{"warehouse_id": "WH-TGR04"',
    "not utf-8": b"\xff\xfe\x00",
    "array": b'[{"warehouse_id": "WH-TGR04"}]',
    "string": b'"WH-TGR04"',
    "number": b"42",
    "null": b"null",
    "NaN": b'{"order_price": NaN}',
    "Infinity": b'{"order_price": Infinity}',
    "-Infinity": b'{"order_price": -Infinity}',
    "deeply nested arrays": b"[" * 50_000 + b"]" * 50_000,
    "deeply nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
}

BODY_ROUTES = [
    ("POST", "/outbound/oms"),
    ("POST", "/outbound/wms"),
    ("PUT", "/outbound/oms"),
    ("PUT", "/outbound/wms"),
    ("PATCH", "/outbound/oms/cancel"),
    ("PATCH", "/outbound/wms/cancel"),
]


def assert_envelope(response, status: int) -> dict:
    """The metadata every non-401 answer carries, with the right types."""
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    metadata = body["metadata"]
    assert set(metadata) >= {"path", "http_status_code", "http_status", "timestamp"}
    assert type(metadata["http_status_code"]) is int
    assert metadata["http_status_code"] == status
    assert type(metadata["timestamp"]) is int
    assert abs(metadata["timestamp"] - time.time()) < 5
    assert isinstance(metadata["path"], str)
    return body


def assert_error(response, status: int, code: int, message: str) -> dict:
    body = assert_envelope(response, status)
    assert set(body) == {"metadata"}
    assert body["metadata"]["errors"] == [{"code": code, "message": message}]
    return body


def assert_unauthorized(response, method: str, path: str) -> None:
    assert response.status_code == 401
    body = response.get_json()
    assert set(body) == {"metadata"}
    metadata = body["metadata"]
    assert set(metadata) == {
        "path",
        "status_code",
        "status",
        "message",
        "error",
        "timestamp",
    }
    assert metadata["path"] == path
    assert metadata["status_code"] == 401
    assert metadata["status"] == "Unauthorized"
    inner = path.replace("/v3/", "/v1/", 1)
    assert metadata["message"] == f"{method} {inner} [401] Unauthorized"
    assert metadata["error"] == {"code": 802, "message": UNAUTHORIZED}
    assert ISO_SECONDS.fullmatch(metadata["timestamp"])


# -- the envelope -------------------------------------------------------------


def test_success_envelope_has_shippers_metadata_fields_and_types(api):
    response = api.create("oms", b2c_body())

    body = assert_envelope(response, 200)

    assert body["metadata"] == {
        "path": "/v3/fulfillment/outbound/oms",
        "http_status_code": 200,
        "http_status": "OK",
        "timestamp": body["metadata"]["timestamp"],
    }
    assert set(body) == {"metadata", "data"}


def test_list_envelope_carries_pagination_with_int_fields(api):
    body = assert_envelope(api.list("WMS"), 200)

    assert set(body) == {"metadata", "data", "pagination"}
    pagination = body["pagination"]
    assert set(pagination) == {
        "current_page",
        "current_elements",
        "total_pages",
        "total_elements",
    }
    assert all(type(value) is int for value in pagination.values())


def test_envelope_path_echoes_the_query_string(api):
    response = api.call("GET", "/outbounds/WMS?page=2&limit=5")

    body = assert_envelope(response, 200)

    assert body["metadata"]["path"] == "/v3/fulfillment/outbounds/WMS?page=2&limit=5"


def test_error_envelope_puts_errors_inside_metadata(api):
    response = api.create("oms", b2c_body(so_number="bad number!"))

    body = assert_error(response, 400, 810, INVALID)

    assert body["metadata"]["http_status"] == "Bad Request"


def test_every_response_has_a_unique_request_id(api, http):
    responses = [
        api.create("oms", b2c_body()),
        api.create("oms", b2c_body()),
        api.list("OMS"),
        api.call("GET", "/nowhere"),
        ShipperClient(http, "wrong-key").list("OMS"),
        http.get("/_sim/health"),
    ]

    ids = [r.headers.get("x-request-id") for r in responses]

    assert all(ids)
    assert len(set(ids)) == len(ids)


def test_request_id_is_the_one_the_journal_records(api, http):
    response = api.create("oms", b2c_body(so_number="bad number!"))

    (entry,) = http.get("/_sim/requests").get_json()["requests"]

    assert entry["request_id"] == response.headers["x-request-id"]


def test_simulator_failure_answers_803_in_the_envelope(api, sim, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sim.backend, "list_sales_orders", broken)

    response = api.list("WMS")

    assert_error(
        response, 500, 803, "Internal Server Error. Please Call Administrator."
    )
    assert response.get_json()["metadata"]["http_status"] == "Internal Server Error"
    assert "disk on fire" in response.headers["x-sim-error"]


# -- authentication --------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_missing_key_gets_the_gateway_401_on_every_route(http, method, path, body):
    response = http.open("/v3/fulfillment" + path, method=method, json=body)

    assert_unauthorized(response, method, "/v3/fulfillment" + path.split("?")[0])


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_unknown_key_gets_the_gateway_401_on_every_route(http, method, path, body):
    response = ShipperClient(http, "no-such-key").call(method, path, body)

    assert_unauthorized(response, method, "/v3/fulfillment" + path.split("?")[0])


def test_unauthorized_request_stores_nothing(http, api):
    ShipperClient(http, "no-such-key").create("oms", b2c_body())

    assert api.listed("OMS") == []


def test_empty_key_is_refused(http):
    response = ShipperClient(http, "").list("WMS")

    assert_unauthorized(response, "GET", "/v3/fulfillment/outbounds/WMS")


def test_key_value_is_matched_exactly(http):
    response = ShipperClient(http, DEMO_KEY.upper()).list("WMS")

    assert response.status_code == 401


@pytest.mark.parametrize("name", ["x-api-key", "X-API-Key", "X-Api-Key", "X-API-KEY"])
def test_key_header_name_is_case_insensitive(http, name):
    response = http.get("/v3/fulfillment/outbounds/WMS", headers={name: DEMO_KEY})

    assert_envelope(response, 200)


def test_key_header_name_is_case_insensitive_over_a_real_socket(live_server):
    import http.client

    connection = http.client.HTTPConnection(*live_server, timeout=5)
    try:
        connection.request(
            "GET", "/v3/fulfillment/outbounds/WMS", headers={"X-API-KEY": DEMO_KEY}
        )
        reply = connection.getresponse()
        body = json.loads(reply.read())
    finally:
        connection.close()

    assert reply.status == 200
    assert body["metadata"]["http_status_code"] == 200


def test_unknown_route_without_key_gets_401_first(http):
    response = http.get("/v3/fulfillment/no/such/route")

    assert_unauthorized(response, "GET", "/v3/fulfillment/no/such/route")


# -- unknown routes and wrong methods -----------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v3/fulfillment/nowhere", "/v3/fulfillment/outbound/xyz", "/v3/x", "/"]
)
def test_unknown_route_with_valid_key_is_404_10004(http, path):
    response = http.get(path, headers={"x-api-key": DEMO_KEY})

    body = assert_error(
        response,
        404,
        10004,
        "Record Does Not Exist. Please Validate Your Input Or Contact Administrator.",
    )
    assert body["metadata"]["http_status"] == "Not Found"
    assert body["metadata"]["path"] == path
    assert "no route" in response.headers["x-sim-error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/outbound/oms"),
        ("GET", "/outbound/wms"),
        ("PATCH", "/outbound/oms"),
        ("POST", "/outbounds/WMS"),
        ("PUT", "/outbound/wms/cancel"),
    ],
)
def test_wrong_method_on_a_known_path_answers_in_the_envelope(api, method, path):
    response = api.call(method, path, {})

    # [decided] in docs/differences.md: treated as an unknown route.
    assert_error(
        response,
        404,
        10004,
        "Record Does Not Exist. Please Validate Your Input Or Contact Administrator.",
    )
    assert method in response.headers["x-sim-error"]


def test_wrong_method_without_key_gets_401(http):
    response = http.delete("/v3/fulfillment/outbound/oms")

    assert_unauthorized(response, "DELETE", "/v3/fulfillment/outbound/oms")


# -- bodies that are not what the route takes ---------------------------------------


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("raw", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_body_that_is_not_a_json_object_is_400_810(api, method, path, raw):
    response = api.call(
        method, path, data=raw, headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, 810, INVALID)
    assert response.headers["x-sim-error"].startswith("body:")


def test_body_is_read_as_json_whatever_its_content_type(api):
    response = api.call(
        "POST",
        "/outbound/oms",
        data=json.dumps(b2c_body()),
        headers={"Content-Type": "text/plain"},
    )

    assert_envelope(response, 200)


@pytest.mark.parametrize(
    "shape",
    [
        {"details": "SKU-CAP-01"},
        {"details": [1, None, [], "x"]},
        {"details": [{"sku": ["SKU-CAP-01"], "qty_ordered": {"n": 1}}]},
        {"data": {"outbound": []}},
        {"data": {"outbound": None}},
        {"consignee": {"name": "Budi"}},
        {"order_price": [1, 2]},
    ],
)
def test_json_of_the_wrong_shape_is_400_810(api, shape):
    body = b2c_body()
    body.update(shape)

    assert_error(api.create("oms", body), 400, 810, INVALID)


@pytest.mark.parametrize(
    "cancel",
    [
        {"data": []},
        {"data": {"cancellation": []}},
        {"data": {"cancellation": None}},
        {"data": {"cancellation": {"order_no": ["x"], "warehouse_id": {}}}},
    ],
)
def test_cancel_of_the_wrong_shape_is_400_810(api, cancel):
    response = api.call("PATCH", "/outbound/oms/cancel", cancel)

    assert_error(response, 400, 810, INVALID)


def test_nested_value_just_under_the_parser_limit_is_refused_not_crashed(api):
    body = b2c_body()
    raw = json.dumps(body)[:-1] + ', "order_source": ' + "[" * 900 + "]" * 900 + "}"

    response = api.call("POST", "/outbound/oms", data=raw)

    assert_error(response, 400, 810, INVALID)
    assert response.headers["x-sim-error"].startswith("order_source:")


def test_lone_surrogate_in_a_string_is_400_810_not_500(api):
    body = b2c_body(buyer_remark="\ud800")

    response = api.call("POST", "/outbound/oms", data=json.dumps(body))

    assert_error(response, 400, 810, INVALID)
    assert api.listed("OMS") == []


@pytest.mark.parametrize(
    "raw_remark",
    [b'"\\uDC00"', b'"ab\\udbffcd"', b'"\xed\xa0\x80"'],
    ids=["upper-case escape", "high half alone", "utf-8 encoded"],
)
def test_every_spelling_of_a_lone_surrogate_is_400_810(api, raw_remark):
    marker = b'"MARK"'
    raw = json.dumps(b2c_body(buyer_remark="MARK")).encode().replace(marker, raw_remark)

    response = api.call("POST", "/outbound/oms", data=raw)

    assert_error(response, 400, 810, INVALID)
    assert api.listed("OMS") == []


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32"])
def test_a_lone_surrogate_in_a_utf16_or_utf32_body_is_400_810(api, encoding):
    text = json.dumps(b2c_body(buyer_remark="MARK")).replace("MARK", "\\ud800")

    response = api.call("POST", "/outbound/oms", data=text.encode(encoding))

    assert_error(response, 400, 810, INVALID)
    assert api.listed("OMS") == []


def test_a_surrogate_pair_is_a_character_and_is_taken(api):
    raw = json.dumps(b2c_body(buyer_remark="MARK")).encode()
    raw = raw.replace(b'"MARK"', b'"\\ud83d\\ude9a truck"')

    response = api.call("POST", "/outbound/oms", data=raw)

    assert response.status_code == 200, response.get_json()


def test_huge_body_is_refused_with_a_4xx_envelope(api):
    body = b2c_body(buyer_remark="x" * 1_100_000)

    response = api.create("oms", body)

    assert 400 <= response.status_code < 500
    payload = assert_envelope(response, response.status_code)
    assert payload["metadata"]["errors"][0]["code"] == 810
    assert api.listed("OMS") == []


# -- which field failed ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"so_number": "SO 1"}, "so_number"),
        ({"express_code": 7}, "express_code"),
        ({"order_identification_code": 2}, "order_identification_code"),
        ({"consignee_email": ""}, "consignee_email"),
        (
            {"details": [{"sku": "SKU-CAP-01", "qty_ordered": -1}]},
            "details[0].qty_ordered",
        ),
    ],
)
def test_x_sim_error_names_the_field_that_failed(api, change, field):
    response = api.create("oms", b2c_body(**change))

    assert response.status_code == 400
    assert response.headers["x-sim-error"].startswith(f"{field}:")


def test_x_sim_error_names_a_missing_field(api):
    body = b2b_body()
    del body["consignee_name"]

    response = api.create("wms", body)

    assert response.headers["x-sim-error"] == "consignee_name: is required"


def test_x_sim_error_is_absent_on_success(api):
    response = api.create("wms", b2b_body())

    assert response.status_code == 200
    assert "x-sim-error" not in response.headers


def test_x_sim_error_survives_text_outside_latin_1(api):
    response = api.create("oms", b2c_body(consignee="\u4e2d" * 201))

    assert response.status_code == 400
    assert response.headers["x-sim-error"].startswith("consignee:")


def test_x_sim_error_writes_characters_outside_latin_1_as_their_escapes(api):
    response = api.create("oms", b2c_body(so_number="AB\u0661\u0662"))

    assert response.status_code == 400
    assert "'AB\\u0661\\u0662'" in response.headers["x-sim-error"]


# -- detail paths ------------------------------------------------------------------


def test_detail_path_echoes_route_parameters_like_shippers_router(api):
    api.create_ok("wms", b2b_body(doc_no="SO1"))

    response = api.detail("wms", "SO1")

    body = assert_envelope(response, 200)
    assert body["metadata"]["path"] == (
        "/v3/fulfillment/warehouse/WH-TGR04/outbound/wms/SO1"
        "?%3Aorder_number=SO1&%3Awarehouse_id=WH-TGR04&"
    )


def test_oms_detail_path_echoes_route_parameters(api):
    api.create_ok("oms", b2c_body(so_number="SO1"))

    body = assert_envelope(api.detail("oms", "SO1"), 200)

    assert body["metadata"]["path"] == (
        "/v3/fulfillment/warehouse/WH-TGR04/outbound/oms/SO1"
        "?%3Aorder_number=SO1&%3Awarehouse_id=WH-TGR04&"
    )


def test_unknown_detail_echoes_route_parameters_in_its_404(api):
    response = api.detail("wms", "NOPE", "WH-BAL")

    body = assert_error(
        response,
        404,
        10004,
        "Record Does Not Exist. Please Validate Your Input Or Contact Administrator.",
    )
    assert body["metadata"]["path"] == (
        "/v3/fulfillment/warehouse/WH-BAL/outbound/wms/NOPE"
        "?%3Aorder_number=NOPE&%3Awarehouse_id=WH-BAL&"
    )


def test_huge_chunked_body_is_refused_with_a_4xx_envelope(live_server):
    import http.client

    def chunks():
        yield b'{"buyer_remark": "'
        for _ in range(150):
            yield b"x" * 10_000
        yield b'"}'

    connection = http.client.HTTPConnection(*live_server, timeout=10)
    try:
        connection.request(
            "POST",
            "/v3/fulfillment/outbound/oms",
            body=chunks(),
            headers={"x-api-key": DEMO_KEY, "Content-Type": "application/json"},
            encode_chunked=True,
        )
        reply = connection.getresponse()
        body = json.loads(reply.read())
    finally:
        connection.close()

    assert 400 <= reply.status < 500
    assert body["metadata"]["http_status_code"] == reply.status
    assert body["metadata"]["errors"][0]["code"] == 810
