"""Fault injection: API calls that fail, wait or drop, and webhooks that misbehave.

API faults are checked over the Flask test client, except ``drop``, which
needs a real socket to close. Webhook faults run on a frozen clock against a
real receiver on 127.0.0.1, moved on with ``POST /_sim/clock/advance`` so
that "late" and "out of order" are exact rather than timed.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from conftest import (
    DEMO_ID,
    DEMO_KEY,
    SECOND_ID,
    WAREHOUSE,
    Receiver,
    ShipperClient,
    b2b_body,
    b2c_body,
    close_app,
    point_webhooks,
)
from flask.testing import FlaskClient

from simulator.app import create_app
from simulator.config import Config
from simulator.schemas import FAULT_ENDPOINTS

# 2022-07-15 11:00:00 in Jakarta.
FROZEN_AT = 1657857600.0


# -- helpers ------------------------------------------------------------------


def add_fault(http: FlaskClient, **spec: object) -> dict:
    response = http.post("/_sim/faults", json=spec)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def faults(http: FlaskClient) -> list[dict]:
    response = http.get("/_sim/faults")
    assert response.status_code == 200
    return response.get_json()["faults"]


def errors_of(response) -> list[dict]:
    return response.get_json()["metadata"]["errors"]


def orders(http: FlaskClient) -> list[dict]:
    return http.get("/_sim/orders").get_json()["orders"]


def advance_clock(http: FlaskClient, seconds: float) -> dict:
    response = http.post("/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stored_order(received) -> dict:
    """The order inside an SO-created payload (a JSON string)."""
    return json.loads(received.json()["items"][0]["payload"])


def events_received(receiver: Receiver) -> list[str]:
    return [r.headers["x-sim-event"] for r in receiver.requests]


# -- API faults: what they answer ---------------------------------------------


def test_error_code_fault_answers_that_shipper_error_and_stores_nothing(
    http: FlaskClient, api: ShipperClient
):
    add_fault(http, endpoint="create_sales_order", error_code=3014)

    response = api.create("oms", b2c_body("SO-FAULTED"))

    assert response.status_code == 400
    body = response.get_json()
    assert body["metadata"]["http_status_code"] == 400
    assert body["metadata"]["http_status"] == "Bad Request"
    assert body["metadata"]["path"] == "/v3/fulfillment/outbound/oms"
    assert errors_of(response) == [
        {"code": 3014, "message": "Warehouse Does Not Exist."}
    ]
    assert "data" not in body

    assert orders(http) == []
    assert api.detail("oms", "SO-FAULTED").status_code == 404
    assert http.get("/_sim/webhooks").get_json()["webhooks"] == []


@pytest.mark.parametrize(
    ("status", "phrase", "message"),
    [
        # Shipper's table fixes 803's message; http_status names the status.
        (429, "Too Many Requests", "Internal Server Error. Please Call Administrator."),
        (
            500,
            "Internal Server Error",
            "Internal Server Error. Please Call Administrator.",
        ),
        (
            503,
            "Service Unavailable",
            "Internal Server Error. Please Call Administrator.",
        ),
    ],
)
def test_status_fault_answers_that_status_with_code_803(
    http: FlaskClient, api: ShipperClient, status: int, phrase: str, message: str
):
    add_fault(http, endpoint="create_sales_order", status=status)

    response = api.create("wms", b2b_body("ERP-FAULTED"))

    assert response.status_code == status
    metadata = response.get_json()["metadata"]
    assert metadata["http_status_code"] == status
    assert metadata["http_status"] == phrase
    assert metadata["errors"] == [{"code": 803, "message": message}]
    assert orders(http) == []


def test_count_fault_affects_exactly_the_next_n_matching_calls(
    http: FlaskClient, api: ShipperClient
):
    add_fault(http, endpoint="create_sales_order", status=503, count=2)

    first = api.create("oms", b2c_body("SO-1"))
    # A call the fault does not match neither fails nor uses it up.
    between = api.call("GET", "/express")
    second = api.create("oms", b2c_body("SO-1"))
    third = api.create("oms", b2c_body("SO-1"))
    fourth = api.create("oms", b2c_body("SO-2"))

    assert [first.status_code, second.status_code] == [503, 503]
    assert between.status_code == 200
    assert third.status_code == 200
    assert fourth.status_code == 200
    assert faults(http) == []
    assert sorted(o["order_no"] for o in orders(http)) == ["SO-1", "SO-2"]


def test_count_fault_lists_what_is_left_and_its_hits(
    http: FlaskClient, api: ShipperClient
):
    fault = add_fault(http, endpoint="get_express_list", status=500, count=3)

    api.call("GET", "/express")

    (waiting,) = faults(http)
    assert waiting["id"] == fault["id"]
    assert waiting["count"] == 2
    assert waiting["hits"] == 1


def rate_pattern(seed: int, calls: int = 24) -> list[int]:
    """Statuses of ``calls`` express-list calls under a 50% fault of ``seed``."""
    app = create_app(Config(start_workers=False))
    try:
        http = app.test_client()
        add_fault(http, endpoint="get_express_list", status=503, rate=0.5, seed=seed)
        api = ShipperClient(http, DEMO_KEY)
        pattern = [api.call("GET", "/express").status_code for _ in range(calls)]
        (fault,) = faults(http)
        assert fault["hits"] == pattern.count(503)
        return pattern
    finally:
        close_app(app)


def test_rate_fault_with_a_seed_repeats_exactly_from_run_to_run():
    first, second = rate_pattern(seed=7), rate_pattern(seed=7)

    assert first == second
    # A share, not all or nothing: both outcomes occur.
    assert set(first) == {200, 503}
    assert 4 <= first.count(503) <= 20


def test_rate_fault_with_another_seed_fires_on_other_calls():
    assert rate_pattern(seed=7) != rate_pattern(seed=8)


def test_rate_fault_stays_until_removed(http: FlaskClient, api: ShipperClient):
    add_fault(http, endpoint="get_express_list", status=503, rate=1.0)

    statuses = [api.call("GET", "/express").status_code for _ in range(5)]

    assert statuses == [503] * 5
    assert faults(http)[0]["hits"] == 5


# -- API faults: which calls they match ---------------------------------------


def create_b2c(http: FlaskClient):
    return ShipperClient(http, DEMO_KEY).create("oms", b2c_body("SO-MATCH"))


def create_b2b(http: FlaskClient):
    return ShipperClient(http, DEMO_KEY).create("wms", b2b_body("ERP-MATCH"))


def update_b2c(http: FlaskClient):
    return ShipperClient(http, DEMO_KEY).update("oms", b2c_body("SO-MISSING"))


def get_stock(http: FlaskClient):
    return ShipperClient(http, DEMO_KEY).stock()


@pytest.mark.parametrize(
    ("spec", "matched", "unmatched"),
    [
        ({"endpoint": "create_sales_order"}, create_b2c, get_stock),
        ({"endpoint": "get_stock"}, get_stock, create_b2c),
        ({"method": "POST", "path": "/outbound/oms"}, create_b2c, update_b2c),
        ({"method": "put"}, update_b2c, create_b2c),
        ({"path": "/outbound/wms"}, create_b2b, create_b2c),
        ({"path": "/inventory"}, get_stock, create_b2b),
        ({"client_id": DEMO_ID}, create_b2c, None),
    ],
    ids=[
        "endpoint",
        "endpoint-get",
        "method+path",
        "method",
        "path",
        "path-2",
        "client",
    ],
)
def test_api_fault_fires_only_on_matching_calls(
    http: FlaskClient, spec: dict, matched, unmatched
):
    add_fault(http, status=503, **spec)

    if unmatched is not None:
        assert unmatched(http).status_code != 503
        assert faults(http)[0]["hits"] == 0

    assert matched(http).status_code == 503
    assert faults(http) == []


def test_api_fault_for_one_client_leaves_another_client_alone(
    http: FlaskClient, api: ShipperClient, second_api: ShipperClient
):
    add_fault(http, client_id=SECOND_ID, endpoint="create_sales_order", status=503)

    mine = api.create("oms", b2c_body("SO-MINE"))
    theirs = second_api.create(
        "oms", b2c_body("SO-THEIRS", customer_id="CS792", tenant_name="CV Suwarno")
    )

    assert mine.status_code == 200
    assert theirs.status_code == 503
    assert [o["order_no"] for o in orders(http)] == ["SO-MINE"]


def test_api_fault_without_a_matcher_fires_on_any_call(
    http: FlaskClient, api: ShipperClient
):
    add_fault(http, status=500, count=2)

    assert api.call("GET", "/express").status_code == 500
    assert api.stock().status_code == 500
    assert api.call("GET", "/express").status_code == 200


def test_api_fault_never_fires_on_a_call_refused_for_its_key(
    http: FlaskClient,
):
    add_fault(http, status=503)

    anonymous = http.get("/v3/fulfillment/express")

    assert anonymous.status_code == 401
    assert faults(http)[0]["hits"] == 0


# -- delay and drop -----------------------------------------------------------


def test_delay_fault_waits_then_answers_as_usual(http: FlaskClient, api: ShipperClient):
    add_fault(http, endpoint="create_sales_order", delay=0.3)

    started = time.perf_counter()
    response = api.create("oms", b2c_body("SO-SLOW"))
    took = time.perf_counter() - started

    assert took >= 0.2
    assert response.status_code == 200
    assert response.get_json()["data"]["group_key"].startswith("hwoutboundoms.")
    assert [o["order_no"] for o in orders(http)] == ["SO-SLOW"]
    assert response.headers["x-sim-error"] == "fault 1 (delay=0.3) injected"

    started = time.perf_counter()
    assert api.create("oms", b2c_body("SO-FAST")).status_code == 200
    assert time.perf_counter() - started < 0.2


def test_delay_fault_with_a_status_waits_then_fails(
    http: FlaskClient, api: ShipperClient
):
    add_fault(http, endpoint="get_express_list", delay=0.25, status=429)

    started = time.perf_counter()
    response = api.call("GET", "/express")

    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 429
    assert errors_of(response)[0]["code"] == 803


def test_drop_fault_closes_the_connection_without_an_answer(
    http: FlaskClient, live_server: tuple[str, int]
):
    host, port = live_server
    url = f"http://{host}:{port}/v3/fulfillment/outbound/oms"
    headers = {"x-api-key": DEMO_KEY}
    add_fault(http, endpoint="create_sales_order", drop=True)

    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            session.post(url, json=b2c_body("SO-DROPPED"), headers=headers, timeout=5)

        # Nothing was stored, and the server answers the next call as usual.
        assert orders(http) == []
        again = session.post(
            url, json=b2c_body("SO-DROPPED"), headers=headers, timeout=5
        )

    assert again.status_code == 200
    assert [o["order_no"] for o in orders(http)] == ["SO-DROPPED"]

    dropped = http.get("/_sim/requests", query_string={"limit": 2}).get_json()
    oldest = dropped["requests"][-1]
    assert oldest["reason"] == "fault 1 (drop=True) injected"
    assert oldest["response_body"] is None


# -- listing and removing -----------------------------------------------------


def test_faults_are_listed_until_removed_one_by_one_or_all(
    http: FlaskClient, api: ShipperClient
):
    first = add_fault(http, endpoint="create_sales_order", status=503)
    second = add_fault(http, endpoint="get_stock", error_code=810, count=4)
    third = add_fault(http, target="webhook", event="pgi", duplicate=True)

    listed = faults(http)
    assert [f["id"] for f in listed] == [first["id"], second["id"], third["id"]]
    assert listed[1] == {
        "id": second["id"],
        "target": "api",
        "endpoint": "get_stock",
        "count": 4,
        "error_code": 810,
        "hits": 0,
    }

    assert http.delete(f"/_sim/faults/{first['id']}").get_json() == {"removed": 1}
    assert [f["id"] for f in faults(http)] == [second["id"], third["id"]]
    # The removed fault no longer fires.
    assert api.create("oms", b2c_body("SO-AFTER")).status_code == 200

    missing = http.delete(f"/_sim/faults/{first['id']}")
    assert missing.status_code == 404
    assert str(first["id"]) in missing.get_json()["error"]

    assert http.delete("/_sim/faults").get_json() == {"removed": 2}
    assert faults(http) == []
    assert api.stock().status_code == 200


def test_fault_ids_are_not_reused_after_removal(http: FlaskClient):
    first = add_fault(http, drop=True)
    http.delete("/_sim/faults")

    assert add_fault(http, drop=True)["id"] == first["id"] + 1


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, "target"),
        ({"target": "sms", "drop": True}, "target"),
        ({"status": 200}, "status"),
        ({"status": "503"}, "status"),
        ({"error_code": 9999}, "error_code"),
        ({"error_code": 3011, "status": 503}, "status"),
        ({"count": 0, "drop": True}, "count"),
        ({"rate": 1.5, "drop": True}, "rate"),
        ({"rate": 0.5, "seed": -1, "drop": True}, "seed"),
        ({"delay": -1}, "delay"),
        ({"delay": 61}, "delay"),
        ({"drop": "yes"}, "drop"),
        ({"method": "DELETE", "drop": True}, "method"),
        ({"client_id": "112233", "drop": True}, "client_id"),
        ({"endpoint": "create_order", "drop": True}, "endpoint"),
        ({"endpiont": "create_sales_order", "drop": True}, "endpiont"),
        ({"target": "webhook", "drop": True}, "target"),
        ({"target": "webhook", "event": "shipped", "duplicate": True}, "event"),
        ({"target": "webhook", "late": "soon"}, "late"),
        ({"target": "webhook", "late": 5, "status": 503}, "target"),
    ],
)
def test_bad_fault_spec_is_refused_naming_the_field(
    http: FlaskClient, spec: dict, field: str
):
    response = http.post("/_sim/faults", json=spec)

    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field
    assert field in body["error"]
    assert faults(http) == []


def test_fault_spec_that_is_not_json_is_refused(http: FlaskClient):
    response = http.post("/_sim/faults", data="drop", content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


# -- the journal and the header -----------------------------------------------


def test_faulted_request_shows_the_fault_in_header_and_journal(
    http: FlaskClient, api: ShipperClient
):
    fault = add_fault(http, endpoint="cancel_sales_order", error_code=3020)

    response = api.cancel("oms", "SO-ANY")

    expected = f"fault {fault['id']} (error_code=3020) injected"
    assert response.headers["x-sim-error"] == expected
    (entry,) = http.get("/_sim/requests").get_json()["requests"]
    assert entry["reason"] == expected
    assert entry["status"] == 400
    assert entry["code"] == 3020
    assert entry["path"] == "/v3/fulfillment/outbound/oms/cancel"
    assert entry["request_body"]["data"]["cancellation"]["order_no"] == "SO-ANY"


def test_status_fault_shows_in_the_journal_with_code_803(
    http: FlaskClient, api: ShipperClient
):
    add_fault(http, endpoint="get_stock", status=429)

    api.stock()

    (entry,) = http.get("/_sim/requests", query_string={"status": 429}).get_json()[
        "requests"
    ]
    assert entry["code"] == 803
    assert entry["reason"] == "fault 1 (status=429) injected"


# -- webhook faults -----------------------------------------------------------


@pytest.fixture
def hooks(http: FlaskClient, receiver: Receiver) -> FlaskClient:
    """The demo client's webhooks go to ``receiver``; the clock is frozen."""
    point_webhooks(http, DEMO_ID, receiver.url)
    frozen = http.post("/_sim/clock/freeze", json={"at": FROZEN_AT})
    assert frozen.status_code == 200
    return http


def test_duplicate_fault_sends_the_same_payload_twice(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", event="so_created", duplicate=True)
    api.create_ok("oms", b2c_body("SO-TWICE"))

    advance_clock(hooks, 0)

    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.json()["group_key"].endswith(f".{DEMO_ID}")
    assert events_received(receiver) == ["so_created", "so_created"]

    original, copy = hooks.get(
        "/_sim/webhooks", query_string={"order_no": "SO-TWICE"}
    ).get_json()["webhooks"]
    assert [original["state"], copy["state"]] == ["delivered", "delivered"]
    assert copy["redelivery_of"] == original["id"]
    assert copy["payload"] == original["payload"]


def test_duplicate_fault_touches_one_delivery_only(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", event="so_created", duplicate=True)
    api.create_ok("oms", b2c_body("SO-A"))
    api.create_ok("oms", b2c_body("SO-B"))

    advance_clock(hooks, 0)

    numbers = [stored_order(r)["so_number"] for r in receiver.requests]
    assert sorted(numbers) == ["SO-A", "SO-A", "SO-B"]


def test_late_fault_holds_a_webhook_and_those_behind_it(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", event="so_created", late=30)
    api.create_ok("wms", b2b_body("ERP-LATE"))  # so_created, then status 00

    advance_clock(hooks, 0)
    advance_clock(hooks, 29.5)
    assert receiver.requests == []

    advance_clock(hooks, 0.5)

    receiver.wait_for(2)
    assert events_received(receiver) == ["so_created", "status"]
    created, status = hooks.get(
        "/_sim/webhooks", query_string={"order_no": "ERP-LATE"}
    ).get_json()["webhooks"]
    assert created["attempts"][0]["time"] == FROZEN_AT + 30
    assert status["attempts"][0]["time"] == FROZEN_AT + 30
    assert [created["state"], status["state"]] == ["delivered", "delivered"]


def test_late_fault_leaves_other_orders_on_time(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", order_no="ERP-LATE", late=30)
    api.create_ok("wms", b2b_body("ERP-LATE"))
    api.create_ok("wms", b2b_body("ERP-ON-TIME"))

    advance_clock(hooks, 0)

    assert [r.json().get("order_no") for r in receiver.requests[-1:]] == ["ERP-ON-TIME"]
    assert len(receiver.requests) == 2  # ERP-ON-TIME's so_created and status
    assert hooks.get(
        "/_sim/webhooks", query_string={"order_no": "ERP-LATE", "state": "pending"}
    ).get_json()["webhooks"]


def test_out_of_order_fault_lets_the_next_webhook_of_the_order_go_first(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", event="so_created", out_of_order=True)
    api.create_ok("wms", b2b_body("ERP-SWAP"))  # so_created, then status 00

    advance_clock(hooks, 0)
    assert events_received(receiver) == ["status"]

    advance_clock(hooks, 1)

    receiver.wait_for(2)
    assert events_received(receiver) == ["status", "so_created"]
    assert receiver.requests[0].json()["status_code"] == "00"


def test_out_of_order_fault_holds_its_webhook_late_seconds_if_given(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", event="so_created", out_of_order=True, late=5)
    api.create_ok("wms", b2b_body("ERP-SWAP"))

    advance_clock(hooks, 4.5)
    assert events_received(receiver) == ["status"]

    advance_clock(hooks, 0.5)

    receiver.wait_for(2)
    assert events_received(receiver) == ["status", "so_created"]
    created = hooks.get(
        "/_sim/webhooks", query_string={"event": "so_created"}
    ).get_json()["webhooks"][0]
    assert created["attempts"][0]["time"] == FROZEN_AT + 5


def test_webhook_fault_matches_by_event(
    hooks: FlaskClient, api: ShipperClient, receiver: Receiver
):
    add_fault(hooks, target="webhook", event="pgi", duplicate=True)
    api.create_ok("wms", b2b_body("ERP-PGI"))
    advance_clock(hooks, 0)
    assert len(receiver.requests) == 2  # so_created and status 00, once each

    response = hooks.post(
        f"/_sim/orders/{WAREHOUSE}/ERP-PGI/advance", json={"to": "SHIPPED"}
    )
    assert response.status_code == 200
    advance_clock(hooks, 0)

    events = events_received(receiver)
    assert events.count("pgi") == 2
    assert events.count("so_created") == 1
    assert faults(hooks) == []


def test_every_shipper_route_can_be_named_as_a_fault_endpoint(app):
    routes = {
        rule.endpoint.split(".", 1)[1]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("shipper.")
    }

    assert routes == set(FAULT_ENDPOINTS)
