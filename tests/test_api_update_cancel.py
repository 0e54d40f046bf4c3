"""Update and Cancel Sales Order: allowed until allocation, refused after."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from conftest import (
    DEMO_ID,
    SECOND_ID,
    ShipperClient,
    advance,
    advance_ok,
    b2b_body,
    b2c_body,
    cancel_body,
    set_stock,
    sim_stock,
    webhooks,
)

from simulator.clock import JAKARTA

B2C_NO = "SHOPEE-2207-000123"
B2B_NO = "ERP-SO-0042"


def error_of(response) -> tuple[int, int]:
    return response.status_code, response.get_json()["metadata"]["errors"][0]["code"]


def summary(http, order_no: str) -> dict:
    (found,) = [
        o
        for o in http.get("/_sim/orders").get_json()["orders"]
        if o["order_no"] == order_no
    ]
    return found


def jakarta(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=JAKARTA).timestamp()


# -- update ----------------------------------------------------------------------


def test_update_answers_metadata_only(api):
    api.create_ok("oms", b2c_body())

    response = api.update("oms", b2c_body(lines=[("SKU-CAP-01", 3)]))

    assert response.status_code == 200
    assert set(response.get_json()) == {"metadata"}
    assert response.get_json()["metadata"]["path"] == "/v3/fulfillment/outbound/oms"


def test_update_replaces_b2c_lines_and_header(api):
    api.create_ok("oms", b2c_body())

    api.update("oms", b2c_body(lines=[("SKU-HOODIE-M", 4)], consignee="Siti"))

    outbound = api.outbound("oms", B2C_NO)
    assert [(d["sku"], d["qty_ordered"]) for d in outbound["details"]] == [
        ("SKU-HOODIE-M", 4)
    ]
    assert outbound["consignee"] == "Siti"
    assert outbound["sub_orders"][0]["details"][0]["qty_released"] == 0


def test_update_replaces_b2b_lines_and_keeps_them_released(api):
    api.create_ok("wms", b2b_body())

    api.update(
        "wms", b2b_body(lines=[("SKU-CAP-01", 7), ("SKU-TOTE-01", 2)], notes="urgent")
    )

    outbound = api.outbound("wms", B2B_NO)
    assert [
        (d["order_line"], d["sku"], d["qty_ordered"], d["qty_released"])
        for d in outbound["details"]
    ] == [(1, "SKU-CAP-01", 7, 7), (2, "SKU-TOTE-01", 2, 2)]
    assert outbound["notes"] == "urgent"
    assert outbound["so_status"] == "CREATED"


def test_update_of_a_released_b2c_order_is_allowed(api, http):
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2C_NO, step="release")

    response = api.update("oms", b2c_body(lines=[("SKU-CAP-01", 9)]))

    assert response.status_code == 200
    (line,) = api.outbound("wms", B2C_NO)["details"]
    assert (line["qty_ordered"], line["qty_released"]) == (9, 9)


def test_update_moves_updated_but_not_created(api, http, sim):
    sim.clock.freeze(jakarta("2022-07-15 10:00:00"))
    api.create_ok("oms", b2c_body())
    created = summary(http, B2C_NO)

    sim.clock.freeze(jakarta("2022-07-17 09:00:00"))
    api.update("oms", b2c_body(lines=[("SKU-CAP-01", 1)]))

    after = summary(http, B2C_NO)
    assert after["created"] == created["created"]
    assert after["updated"] == jakarta("2022-07-17 09:00:00")
    assert api.listed("OMS", updated_start="2022-07-17") != []
    assert api.listed("OMS", updated_end="2022-07-16") == []
    assert api.listed("OMS", created_end="2022-07-15") != []


def test_update_moves_oms_stock_from_old_lines_to_new(api):
    tshirt, cap = api.qty("SKU-TSHIRT-M", "OMS"), api.qty("SKU-CAP-01", "OMS")
    api.create_ok("oms", b2c_body(lines=[("SKU-TSHIRT-M", 10)]))

    api.update("oms", b2c_body(lines=[("SKU-CAP-01", 4)]))

    assert api.qty("SKU-TSHIRT-M", "OMS") == tshirt
    assert api.qty("SKU-CAP-01", "OMS") == cap - 4


def test_update_after_allocation_is_refused_and_changes_nothing(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")
    before = api.outbound("wms", B2B_NO)
    sent = len(webhooks(http))

    response = api.update("wms", b2b_body(lines=[("SKU-CAP-01", 1)], notes="x"))

    assert error_of(response) == (400, 3021)
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Sales Order Has Been Allocated. Update Is Not Allowed."
    )
    assert api.outbound("wms", B2B_NO) == before
    assert len(webhooks(http)) == sent


@pytest.mark.parametrize("status", ["PICKED", "PACKED", "SHIPPED", "CLOSED"])
def test_update_in_any_later_status_is_3021(api, http, status):
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2C_NO, to=status)

    assert error_of(api.update("oms", b2c_body()))[1] == 3021


def test_update_after_partial_allocation_is_3021(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))
    advance_ok(http, B2B_NO, step="allocate")

    assert error_of(api.update("wms", b2b_body(lines=[("SKU-CAP-01", 1)]))) == (
        400,
        3021,
    )


def test_update_of_a_cancelled_order_is_3022(api):
    api.create_ok("oms", b2c_body())
    api.cancel("oms", B2C_NO)

    response = api.update("oms", b2c_body())

    assert error_of(response) == (400, 3022)
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Sales Order Has Been Cancelled."
    )


def test_update_of_an_unknown_order_is_3012(api):
    response = api.update("wms", b2b_body())

    assert error_of(response) == (400, 3012)
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Order Doesn't Exist in WMS and OMS."
    )
    assert api.listed("WMS") == []


def test_update_of_the_other_kind_is_3012(api):
    api.create_ok("oms", b2c_body(so_number="SAME-1"))

    response = api.update("wms", b2b_body(doc_no="SAME-1"))

    assert error_of(response) == (400, 3012)


def test_update_of_another_clients_order_is_3012(api, second_api):
    api.create_ok("oms", b2c_body())

    body = b2c_body(customer_id="CS792", lines=[("SKU-CAP-01", 1)])
    response = second_api.update("oms", body)

    assert error_of(response) == (400, 3012)
    assert api.outbound("oms", B2C_NO)["details"][0]["sku"] == "SKU-TSHIRT-M"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"consignee": ""}, 810),
        ({"lines": [("SKU-NOPE", 1)]}, 3013),
        ({"express_code": "BARAKA"}, 3015),
    ],
)
def test_refused_update_changes_nothing(api, http, change, code):
    api.create_ok("oms", b2c_body())
    before = api.outbound("oms", B2C_NO)

    response = api.update("oms", b2c_body(**change))

    assert error_of(response) == (400, code)
    assert api.outbound("oms", B2C_NO) == before


# -- cancel ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "make", "order_no"),
    [("oms", b2c_body, B2C_NO), ("wms", b2b_body, B2B_NO)],
    ids=["B2C", "B2B"],
)
def test_cancel_before_allocation_answers_metadata_only(api, kind, make, order_no):
    api.create_ok(kind, make())

    response = api.cancel(kind, order_no)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"metadata"}
    assert body["metadata"]["path"] == f"/v3/fulfillment/outbound/{kind}/cancel"
    (record,) = api.listed("OMS" if kind == "oms" else "WMS")
    assert record["so_status"] == "CANCELLED"


def test_cancel_of_a_released_b2c_order_is_allowed(api, http):
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2C_NO, step="release")

    assert api.cancel("oms", B2C_NO).status_code == 200
    assert api.outbound("wms", B2C_NO)["so_status"] == "CANCELLED"
    assert api.outbound("oms", B2C_NO)["sub_orders"][0]["so_status"] == "CANCELLED"


def test_cancel_sends_a_90_status_row_and_nothing_follows(api, http):
    api.create_ok("wms", b2b_body())

    api.cancel("wms", B2B_NO)

    rows = webhooks(http, order_no=B2B_NO)
    assert [(w["event"], w["payload"].get("status_code")) for w in rows] == [
        ("so_created", None),
        ("status", "00"),
        ("status", "90"),
    ]
    cancelled = rows[-1]["payload"]
    assert (
        cancelled["status"] == cancelled["status_descr"] == ("Shipment Order Cancelled")
    )

    refused = advance(http, B2B_NO, step="allocate")
    assert refused.status_code == 400
    assert "CANCELLED" in refused.get_json()["error"]
    assert advance(http, B2B_NO, to="SHIPPED").status_code == 400
    assert len(webhooks(http, order_no=B2B_NO)) == 3


def test_cancel_of_a_registered_b2c_order_sends_90(api, http):
    api.create_ok("oms", b2c_body())

    api.cancel("oms", B2C_NO)

    codes = [w["payload"].get("status_code") for w in webhooks(http, event="status")]
    assert codes == ["90"]


def test_cancel_frees_what_was_held_for_sale_and_takes_nothing(api, http):
    oms, wms = api.qty("SKU-TSHIRT-M", "OMS"), api.qty("SKU-TSHIRT-M", "WMS")
    api.create_ok("wms", b2b_body(lines=[("SKU-TSHIRT-M", 30)]))
    assert api.qty("SKU-TSHIRT-M", "OMS") == oms - 30

    api.cancel("wms", B2B_NO)

    assert api.qty("SKU-TSHIRT-M", "OMS") == oms
    assert api.qty("SKU-TSHIRT-M", "WMS") == wms
    assert sim_stock(http, "SKU-TSHIRT-M")["qty_allocated"] == 0


def test_cancel_after_allocation_is_refused(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")
    before = api.outbound("wms", B2B_NO)
    sent = len(webhooks(http))

    response = api.cancel("wms", B2B_NO)

    assert error_of(response) == (400, 3020)
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Sales Order Has Been Allocated. Cancel Is Not Allowed."
    )
    assert api.outbound("wms", B2B_NO) == before
    assert len(webhooks(http)) == sent


def test_cancel_after_partial_allocation_is_refused(api, http):
    api.create_ok("oms", b2c_body(lines=[("SKU-LIMITED-01", 5)]))
    advance_ok(http, B2C_NO, step="release")
    assert advance_ok(http, B2C_NO, step="allocate")["details"][0]["qty_allocated"] == 3

    assert error_of(api.cancel("oms", B2C_NO)) == (400, 3020)
    assert sim_stock(http, "SKU-LIMITED-01")["qty_allocated"] == 3


@pytest.mark.parametrize("status", ["PICKED", "PACKED", "SHIPPED", "CLOSED"])
def test_cancel_in_any_later_status_is_3020(api, http, status):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to=status)

    assert error_of(api.cancel("wms", B2B_NO)) == (400, 3020)


def test_cancel_of_a_cancelled_order_is_3022(api, http):
    api.create_ok("oms", b2c_body())
    api.cancel("oms", B2C_NO)

    assert error_of(api.cancel("oms", B2C_NO)) == (400, 3022)
    assert len(webhooks(http, event="status")) == 1


def test_cancel_of_an_unknown_order_is_3012(api):
    response = api.cancel("oms", "NO-SUCH-ORDER")

    assert error_of(response) == (400, 3012)


def test_cancel_of_the_other_kind_is_3012(api):
    api.create_ok("wms", b2b_body())

    assert error_of(api.cancel("oms", B2B_NO)) == (400, 3012)
    assert api.outbound("wms", B2B_NO)["so_status"] == "CREATED"


def test_cancel_of_another_clients_order_is_3012(api, second_api):
    api.create_ok("oms", b2c_body())

    response = second_api.cancel("oms", B2C_NO)

    assert error_of(response) == (400, 3012)
    assert api.listed("OMS")[0]["so_status"] == "REGISTERED"


def test_cancel_names_the_warehouse_of_the_order(api):
    api.create_ok("oms", b2c_body(warehouse_id="WH-BAL"))

    assert error_of(api.cancel("oms", B2C_NO, "WH-TGR04")) == (400, 3012)
    assert api.cancel("oms", B2C_NO, "WH-BAL").status_code == 200


def test_flat_cancel_body_is_810(api):
    api.create_ok("oms", b2c_body())
    flat = cancel_body(B2C_NO)["data"]["cancellation"]

    response = api.call("PATCH", "/outbound/oms/cancel", flat)

    assert error_of(response) == (400, 810)
    assert response.headers["x-sim-error"].startswith("body:")
    assert api.listed("OMS")[0]["so_status"] == "REGISTERED"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order_no": None}, "order_no"),
        ({"warehouse_id": None}, "warehouse_id"),
        ({"cancel_reason": None}, "cancel_reason"),
        ({"cancel_reason": ""}, "cancel_reason"),
        ({"cancel_reason": "x" * 51}, "cancel_reason"),
        ({"order_no": 123}, "order_no"),
    ],
)
def test_cancel_field_rules_are_810(api, change, field):
    api.create_ok("oms", b2c_body())
    body = cancel_body(B2C_NO)
    cancellation = body["data"]["cancellation"]
    for key, value in change.items():
        if value is None:
            del cancellation[key]
        else:
            cancellation[key] = value

    response = api.call("PATCH", "/outbound/oms/cancel", body)

    assert error_of(response) == (400, 810)
    assert response.headers["x-sim-error"].startswith(f"data.cancellation.{field}:")
    assert api.listed("OMS")[0]["so_status"] == "REGISTERED"


def test_cancel_reason_of_exactly_50_characters_is_accepted(api):
    api.create_ok("oms", b2c_body())

    body = cancel_body(B2C_NO, reason="x" * 50)

    assert api.call("PATCH", "/outbound/oms/cancel", body).status_code == 200


def test_cancel_racing_allocation_leaves_one_consistent_outcome(app, api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-TSHIRT-M", 10)]))
    outcomes: dict[str, int] = {}

    def cancel() -> None:
        client = ShipperClient(app.test_client(), api.api_key)
        outcomes["cancel"] = client.cancel("wms", B2B_NO).status_code

    def allocate() -> None:
        outcomes["allocate"] = advance(
            app.test_client(), B2B_NO, step="allocate"
        ).status_code

    threads = [threading.Thread(target=cancel), threading.Thread(target=allocate)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    status = api.listed("WMS")[0]["so_status"]
    reserved = sim_stock(http, "SKU-TSHIRT-M")["qty_allocated"]
    if outcomes["cancel"] == 200:
        assert (status, reserved, outcomes["allocate"]) == ("CANCELLED", 0, 400)
    else:
        assert (status, reserved, outcomes["allocate"]) == ("ALLOCATED", 10, 200)


def test_stock_top_up_does_not_reopen_a_cancelled_order(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))
    api.cancel("wms", B2B_NO)

    set_stock(http, "SKU-LIMITED-01", 50)

    assert advance(http, B2B_NO, step="allocate").status_code == 400
    assert sim_stock(http, "SKU-LIMITED-01")["qty_allocated"] == 0


def test_second_client_cancels_its_own_order_of_the_same_number(api, second_api, http):
    api.create_ok("wms", b2b_body())
    second_api.create_ok(
        "wms", b2b_body(customer_id="MDS", lines=[("SKU-TSHIRT-M", 1)])
    )

    assert second_api.cancel("wms", B2B_NO).status_code == 200

    assert api.listed("WMS")[0]["so_status"] == "CREATED"
    assert second_api.listed("WMS")[0]["so_status"] == "CANCELLED"
    cancelled = webhooks(http, client_id=SECOND_ID, event="status")[-1]
    assert cancelled["payload"]["status_code"] == "90"
    assert all(
        w["payload"].get("status_code") != "90"
        for w in webhooks(http, client_id=DEMO_ID)
    )
