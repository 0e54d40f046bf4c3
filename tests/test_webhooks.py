"""Webhooks, delivered to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from conftest import (
    DEMO_ID,
    DEMO_KEY,
    SECOND_ID,
    ShipperClient,
    advance_ok,
    b2b_body,
    b2c_body,
    close_app,
    make_live_app,
    point_webhooks,
    wait_until,
    webhooks,
)

B2C_NO = "SHOPEE-2207-000123"
B2B_NO = "ERP-SO-0042"
LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
STATUS_KEYS = [
    "warehouse_id",
    "order_no",
    "order_type",
    "shop_code",
    "client_id",
    "tenant_name",
    "express_code",
    "express_no",
    "seller_remark",
    "status",
    "status_code",
    "status_descr",
    "status_time",
]
PGI_KEYS = {
    "warehouse_id",
    "customer_id",
    "order_type",
    "doc_no",
    "delivery_no",
    "carrier_id",
    "carrier_name",
    "so_reference_a",
    "so_reference_b",
    "user_define_1",
    "user_define_2",
    "user_define_3",
    "pgi_date",
    "shop_code",
    "details",
}
PGI_LINE_KEYS = {
    "sku",
    "qty_shipped",
    "mfg_date",
    "exp_date",
    "batch_no",
    "serial_no",
    "receipt_date",
    "stock_condition",
    "user_define_1",
    "user_define_2",
    "user_define_3",
    "project_ref_no",
}


def event_of(body: dict) -> str:
    if "items" in body:
        return "so_created"
    if "pgi_date" in body:
        return "pgi"
    return body["status_code"]


def delivery(http, **query) -> dict:
    (found,) = webhooks(http, **query)
    return found


def settled(http, count: int | None = None) -> list[dict]:
    """Every delivery, once none is pending (and ``count`` exist)."""

    def done():
        rows = webhooks(http)
        if count is not None and len(rows) < count:
            return None
        return rows if all(r["state"] != "pending" for r in rows) else None

    return wait_until(done)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- what is sent ------------------------------------------------------------------


def test_so_created_payload_is_the_stored_order_as_a_json_string(live_api, receiver):
    body = b2c_body()
    del body["zip_code"], body["consignee_mobile"]
    body.update(zipcode="10250", mobile="0812999")
    group_key = live_api.create_ok("oms", body)["data"]["group_key"]

    (received,) = receiver.wait_for(1)

    sent = received.json()
    assert sent["client_id"] == DEMO_ID
    assert sent["group_key"] == group_key
    assert (sent["status"], sent["total_data"], sent["total_success"]) == (
        "success",
        1,
        1,
    )
    (item,) = sent["items"]
    assert isinstance(item["payload"], str)
    stored = json.loads(item["payload"])
    assert stored["so_number"] == B2C_NO
    assert stored["zip_code"] == "10250"
    assert stored["consignee_mobile"] == "0812999"
    assert "zipcode" not in stored and "mobile" not in stored
    assert [d["sku"] for d in stored["details"]] == ["SKU-TSHIRT-M", "SKU-CAP-01"]


def test_webhook_headers_carry_json_and_the_clients_key(live_api, receiver):
    live_api.create_ok("wms", b2b_body())

    for received in receiver.wait_for(2):
        assert received.method == "POST"
        assert received.path == "/webhook"
        assert received.headers["content-type"] == "application/json"
        assert received.headers["x-api-key"] == DEMO_KEY


def test_one_status_webhook_per_code_in_order_with_pgi_after_ship(
    live_api, live_http, receiver
):
    live_api.create_ok("wms", b2b_body())
    advance_ok(live_http, B2B_NO, to="CLOSED")

    received = receiver.wait_for(9)

    assert [event_of(r.json()) for r in received] == [
        "so_created",
        "00",
        "40",
        "60",
        "63",
        "66",
        "80",
        "pgi",
        "99",
    ]
    time.sleep(0.1)
    assert len(receiver.requests) == 9


def test_status_webhook_fields(live_api, live_http, receiver):
    live_api.create_ok("oms", b2c_body(seller_remark="fragile"))
    advance_ok(live_http, B2C_NO, to="PACKED")

    bodies = [r.json() for r in receiver.wait_for(5)]
    statuses = [b for b in bodies if "status_code" in b]

    assert [s["status_code"] for s in statuses] == ["00", "40", "60", "63"]
    picked = statuses[2]
    assert list(picked) == STATUS_KEYS
    assert picked["warehouse_id"] == "WH-TGR04"
    assert picked["order_no"] == B2C_NO
    assert picked["order_type"] == "SO"
    assert picked["shop_code"] == "CS674"
    assert picked["client_id"] == DEMO_ID
    assert picked["tenant_name"] == "Toko Contoh"
    assert picked["express_code"] == "JNE"
    assert picked["seller_remark"] == "fragile"
    assert picked["status"] == picked["status_descr"] == "Picked"
    assert LOCAL_TIME.fullmatch(picked["status_time"])
    assert [s["status"] for s in statuses] == [
        "Create SO",
        "Allocated",
        "Picked",
        "Cartonized",
    ]
    assert statuses[0]["express_no"] == ""
    assert statuses[3]["express_no"].startswith("CGK")


def test_partial_codes_are_named_not_numbered(live_api, live_http, receiver):
    live_api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))
    advance_ok(live_http, B2B_NO, step="allocate")

    partial = receiver.wait_for(3)[2].json()

    assert partial["status_code"] == "30"
    assert partial["status"] == partial["status_descr"] == "Partially Allocated"


def test_pgi_of_a_b2c_order(live_api, live_http, receiver):
    live_api.create_ok("oms", b2c_body())
    advance_ok(live_http, B2C_NO, to="66")
    advance_ok(live_http, B2C_NO, step="ship", lines={"SKU-TSHIRT-M": 1})

    pgi = [r.json() for r in receiver.wait_for(8) if "pgi_date" in r.json()][0]

    assert set(pgi) == PGI_KEYS
    assert pgi["warehouse_id"] == "WH-TGR04"
    assert pgi["customer_id"] == "HJ"
    assert pgi["shop_code"] == "CS674"
    assert re.fullmatch(r"\d{14}", pgi["doc_no"])
    assert pgi["so_reference_a"] == B2C_NO
    assert pgi["delivery_no"] == live_api.outbound("wms", B2C_NO)["delivery_no"]
    assert pgi["delivery_no"].startswith("CGK")
    assert LOCAL_TIME.fullmatch(pgi["pgi_date"])
    assert [set(d) for d in pgi["details"]] == [PGI_LINE_KEYS] * 2
    assert {d["sku"]: d["qty_shipped"] for d in pgi["details"]} == {
        "SKU-TSHIRT-M": 1,
        "SKU-CAP-01": 1,
    }
    assert {d["stock_condition"] for d in pgi["details"]} == {"N"}
    assert pgi["details"][0]["receipt_date"] == "2022-02-22"


def test_pgi_of_a_b2b_order_carries_the_doc_no_twice(live_api, live_http, receiver):
    live_api.create_ok("wms", b2b_body(delivery_no="SICEPAT0001"))
    advance_ok(live_http, B2B_NO, to="SHIPPED")

    pgi = [r.json() for r in receiver.wait_for(8) if "pgi_date" in r.json()][0]

    assert pgi["doc_no"] == pgi["so_reference_a"] == B2B_NO
    assert pgi["delivery_no"] == "SICEPAT0001"
    assert pgi["carrier_name"] == "SiCepat"
    assert pgi["order_type"] == "CSO"


def test_cancel_sends_90_and_nothing_follows(live_api, receiver):
    live_api.create_ok("oms", b2c_body())
    live_api.cancel("oms", B2C_NO)

    received = receiver.wait_for(2)
    time.sleep(0.1)

    assert [event_of(r.json()) for r in received] == ["so_created", "90"]
    assert received[1].json()["status"] == "Shipment Order Cancelled"
    assert len(receiver.requests) == 2


# -- what counts as delivered ---------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202])
def test_200_201_and_202_are_success(live_api, live_http, receiver, status):
    receiver.answer(status)
    live_api.create_ok("wms", b2b_body())

    rows = settled(live_http, 2)

    assert [r["state"] for r in rows] == ["delivered", "delivered"]
    assert [len(r["attempts"]) for r in rows] == [1, 1]
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("status", [204, 301, 400, 404, 500, 503])
def test_other_answers_fail_a_status_webhook(live_api, live_http, receiver, status):
    receiver.answer(status)
    live_api.create_ok("oms", b2c_body())

    (row,) = settled(live_http, 1)

    assert row["state"] == "failed"
    assert [a["status_code"] for a in row["attempts"]] == [status] * 4


def test_a_204_is_success_for_pgi_only(live_api, live_http, receiver):
    receiver.respond(lambda r: 204 if "pgi_date" in r.json() else 200)
    live_api.create_ok("wms", b2b_body())
    advance_ok(live_http, B2B_NO, to="SHIPPED")

    settled(live_http, 8)
    pgi = delivery(live_http, event="pgi")

    assert pgi["state"] == "delivered"
    assert [a["status_code"] for a in pgi["attempts"]] == [204]


def test_a_204_fails_so_created(live_api, live_http, receiver):
    receiver.answer(204)
    live_api.create_ok("oms", b2c_body())

    (row,) = settled(live_http, 1)

    assert row["event"] == "so_created"
    assert row["state"] == "failed"


def test_at_most_3_retries_then_failed(live_api, live_http, receiver):
    receiver.answer(500)
    live_api.create_ok("oms", b2c_body())

    (row,) = settled(live_http, 1)
    time.sleep(0.2)

    assert row["state"] == "failed"
    assert len(receiver.requests) == 4
    assert [a["n"] for a in row["attempts"]] == [1, 2, 3, 4]
    assert delivery(live_http)["attempts"] == row["attempts"]


def test_a_failure_then_success_is_delivered(live_api, live_http, receiver):
    receiver.fail(3)
    live_api.create_ok("oms", b2c_body())

    (row,) = settled(live_http, 1)

    assert row["state"] == "delivered"
    assert [a["status_code"] for a in row["attempts"]] == [500, 500, 500, 200]


def test_every_attempt_is_recorded_with_status_duration_and_error(
    live_api, live_http, receiver
):
    receiver.fail(1, status=503)
    live_api.create_ok("oms", b2c_body())

    (row,) = settled(live_http, 1)

    first, second = row["attempts"]
    assert (first["status_code"], second["status_code"]) == (503, 200)
    for attempt in row["attempts"]:
        assert attempt["url"] == receiver.url
        assert isinstance(attempt["duration_ms"], int | float)
        assert attempt["duration_ms"] >= 0
        assert isinstance(attempt["time"], int | float)
        assert "error" in attempt
    assert second["time"] >= first["time"] + 0.04


def test_refused_connection_counts_as_a_failure(receiver):
    app = make_live_app()
    try:
        http = app.test_client()
        point_webhooks(http, DEMO_ID, f"http://127.0.0.1:{closed_port()}/hook")
        ShipperClient(http).create_ok("oms", b2c_body())

        (row,) = settled(http, 1)
    finally:
        close_app(app)

    assert row["state"] == "failed"
    assert len(row["attempts"]) == 4
    for attempt in row["attempts"]:
        assert attempt["status_code"] is None
        assert "connection" in attempt["error"]


def test_timeout_counts_as_a_failure(receiver):
    receiver.hang(2.0)
    app = make_live_app(webhook_timeout=0.1)
    try:
        http = app.test_client()
        point_webhooks(http, DEMO_ID, receiver.url)
        ShipperClient(http).create_ok("oms", b2c_body())

        (row,) = settled(http, 1)
    finally:
        close_app(app)

    assert row["state"] == "failed"
    assert len(row["attempts"]) == 4
    for attempt in row["attempts"]:
        assert attempt["status_code"] is None
        assert "timed out" in attempt["error"]
        assert attempt["duration_ms"] >= 90


def test_client_without_url_is_recorded_not_sent(live_http, receiver):
    second = ShipperClient(live_http, "demo-key-second-client")
    second.create_ok("oms", b2c_body(customer_id="CS792", lines=[("SKU-CAP-01", 1)]))

    (row,) = settled(live_http, 1)

    assert row["client_id"] == SECOND_ID
    assert row["state"] == "no_url"
    assert receiver.requests == []


def test_a_url_set_later_sends_only_what_comes_after_it(live_http, receiver):
    second = ShipperClient(live_http, "demo-key-second-client")
    body = b2c_body(customer_id="CS792", lines=[("SKU-CAP-01", 1)])
    second.create_ok("oms", body)
    (before,) = settled(live_http, 1)
    assert before["state"] == "no_url" and before["attempts"] == []

    point_webhooks(live_http, SECOND_ID, receiver.url)
    advance_ok(live_http, body["so_number"], body["warehouse_id"], step="release")

    (sent,) = receiver.wait_for(1)
    assert sent.json()["status_code"] == "00"
    rows = settled(live_http, 2)
    assert [r["state"] for r in rows] == ["no_url", "delivered"]
    # What was logged without a URL goes out when redelivered by hand.
    live_http.post(f"/_sim/webhooks/{before['id']}/redeliver")
    assert event_of(receiver.wait_for(2)[1].json()) == "so_created"


def test_redelivering_for_a_client_without_url_is_no_url_at_once(live_http):
    second = ShipperClient(live_http, "demo-key-second-client")
    second.create_ok("oms", b2c_body(customer_id="CS792", lines=[("SKU-CAP-01", 1)]))
    (first,) = settled(live_http, 1)

    response = live_http.post(f"/_sim/webhooks/{first['id']}/redeliver")

    assert response.status_code == 202
    assert response.get_json()["state"] == "no_url"


# -- redelivery and order -----------------------------------------------------------


def test_redeliver_sends_the_same_payload_again(live_api, live_http, receiver):
    live_api.create_ok("oms", b2c_body())
    (first,) = settled(live_http, 1)

    response = live_http.post(f"/_sim/webhooks/{first['id']}/redeliver")

    assert response.status_code == 202
    again = response.get_json()
    assert again["redelivery_of"] == first["id"]
    assert again["id"] != first["id"]
    original, repeated = receiver.wait_for(2)
    assert repeated.body == original.body
    rows = settled(live_http, 2)
    assert [r["state"] for r in rows] == ["delivered", "delivered"]


def test_redeliver_a_failed_webhook(live_api, live_http, receiver):
    receiver.fail(4)
    live_api.create_ok("oms", b2c_body())
    (failed,) = settled(live_http, 1)
    assert failed["state"] == "failed"

    live_http.post(f"/_sim/webhooks/{failed['id']}/redeliver")

    rows = settled(live_http, 2)
    assert rows[1]["state"] == "delivered"
    assert rows[0]["state"] == "failed"


def test_redeliver_of_an_unknown_delivery_is_404(live_http):
    assert live_http.post("/_sim/webhooks/999/redeliver").status_code == 404


def test_webhooks_of_one_order_arrive_in_order_even_when_the_first_needs_retries(
    live_api, live_http, receiver
):
    receiver.fail(2)
    live_api.create_ok("wms", b2b_body())
    advance_ok(live_http, B2B_NO, to="PICKED")

    received = receiver.wait_for(6)

    assert [event_of(r.json()) for r in received] == [
        "so_created",
        "so_created",
        "so_created",
        "00",
        "40",
        "60",
    ]


def test_webhooks_filter_by_order_and_event(live_api, live_http, receiver):
    live_api.create_ok("wms", b2b_body(doc_no="ONE"))
    live_api.create_ok("wms", b2b_body(doc_no="TWO"))
    settled(live_http, 4)

    assert {w["order_no"] for w in webhooks(live_http, order_no="ONE")} == {"ONE"}
    assert [w["event"] for w in webhooks(live_http, event="so_created")] == [
        "so_created",
        "so_created",
    ]


def test_the_api_answer_does_not_wait_for_a_slow_receiver(receiver):
    receiver.hang(3.0)
    app = make_live_app(webhook_timeout=5.0)
    try:
        http = app.test_client()
        point_webhooks(http, DEMO_ID, receiver.url)
        api = ShipperClient(http)
        api.create_ok("oms", b2c_body(so_number="FIRST"))
        receiver.wait_for(1)  # the receiver now holds FIRST's webhook

        started = time.perf_counter()
        api.create_ok("oms", b2c_body(so_number="SECOND"))
        cancelled = api.cancel("oms", "FIRST")
        listed = api.listed("OMS")
        answered = time.perf_counter() - started
        in_flight = webhooks(http, order_no="FIRST")[0]
    finally:
        close_app(app)

    assert answered < 1.0
    assert cancelled.status_code == 200
    assert len(listed) == 2
    assert in_flight["attempts"] == []


def test_a_slow_order_does_not_hold_back_another_orders_webhooks(
    live_api, live_http, receiver
):
    receiver.respond(lambda r: 500 if "SLOW" in r.body.decode() else 200)
    live_api.create_ok("oms", b2c_body(so_number="SLOW"))
    live_api.create_ok("oms", b2c_body(so_number="FAST"))

    wait_until(lambda: delivery(live_http, order_no="FAST")["state"] == "delivered")
    slow = delivery(live_http, order_no="SLOW")

    assert len(slow["attempts"]) <= 4


def test_webhook_payloads_send_no_null_except_receipt_date(
    live_api, live_http, receiver
):
    live_api.create_ok("oms", b2c_body())
    live_api.create_ok("wms", b2b_body(doc_no="B2B-1"))
    advance_ok(live_http, B2C_NO, to="CLOSED")
    advance_ok(live_http, "B2B-1", to="SHIPPED")
    live_api.create_ok("wms", b2b_body(doc_no="B2B-2"))
    live_api.cancel("wms", "B2B-2")

    received = receiver.wait_for(20)

    def nulls(value, path=""):
        if isinstance(value, dict):
            return [n for k, v in value.items() for n in nulls(v, f"{path}.{k}")]
        if isinstance(value, list):
            return [n for v in value for n in nulls(v, f"{path}[]")]
        return [path] if value is None and not path.endswith("receipt_date") else []

    assert [n for r in received for n in nulls(r.json())] == []
    created = [r.json() for r in received if "items" in r.json()]
    assert [
        n for c in created for n in nulls(json.loads(c["items"][0]["payload"]))
    ] == []
