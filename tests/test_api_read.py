"""Reading: the list, both details, the express list and the stock endpoints."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from conftest import (
    advance_ok,
    b2b_body,
    b2c_body,
    sample,
    set_stock,
)

from simulator.clock import JAKARTA

B2C_NO = "SHOPEE-2207-000123"
B2B_NO = "ERP-SO-0042"
LIST_SAMPLE_KEYS = [
    "order_no",
    "order_type",
    "so_status",
    "warehouse_id",
    "consignee_id",
    "consignee_name",
    "release_status",
    "order_time",
    "wave_no",
    "so_reference_1",
    "so_reference_2",
    "so_reference_3",
    "so_reference_4",
    "so_reference_5",
    "consignee_address_1",
    "consignee_city",
    "billing_id",
    "carrier_name",
]
WMS_LINE_KEYS = {
    "sku",
    "order_line",
    "line_status",
    "sku_descr",
    "qty_ordered",
    "qty_released",
    "qty_allocated",
    "qty_picked",
    "qty_shipped",
    "pack_id",
    "udf_01",
    "udf_02",
    "udf_03",
    "udf_04",
    "udf_05",
    "mfg_date",
    "exp_date",
    "batch_no",
    "serial_no",
    "receipt_date",
    "product_condition",
}
QUANTITIES = ("qty_released", "qty_allocated", "qty_picked", "qty_shipped")


def jakarta(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=JAKARTA).timestamp()


def refused_810(response) -> str:
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["metadata"]["errors"][0]["code"] == 810
    return response.headers["x-sim-error"]


def numbers(records: list[dict]) -> list[str]:
    return [r["order_no"] for r in records]


def create_many(api, count: int, prefix: str = "SO") -> list[str]:
    made = [f"{prefix}-{n:02d}" for n in range(1, count + 1)]
    for order_no in made:
        api.create_ok("wms", b2b_body(doc_no=order_no, lines=[("SKU-CAP-01", 1)]))
    return made


# -- the list -----------------------------------------------------------------------


def test_empty_list_has_zero_pagination(api):
    body = api.list("WMS").get_json()

    assert body["data"] == {"outbounds": []}
    assert body["pagination"] == {
        "current_page": 1,
        "current_elements": 0,
        "total_pages": 0,
        "total_elements": 0,
    }


def test_wms_list_holds_b2b_orders_and_released_b2c_orders(api, http):
    api.create_ok("wms", b2b_body())
    api.create_ok("oms", b2c_body(so_number="B2C-WAITING"))
    api.create_ok("oms", b2c_body(so_number="B2C-RELEASED"))
    advance_ok(http, "B2C-RELEASED", step="release")

    assert sorted(numbers(api.listed("WMS"))) == ["B2C-RELEASED", B2B_NO]


def test_oms_list_holds_b2c_orders_only(api, http):
    api.create_ok("wms", b2b_body())
    api.create_ok("oms", b2c_body(so_number="B2C-WAITING"))
    api.create_ok("oms", b2c_body(so_number="B2C-RELEASED"))
    advance_ok(http, "B2C-RELEASED", step="release")

    records = {r["order_no"]: r for r in api.listed("OMS")}

    assert set(records) == {"B2C-WAITING", "B2C-RELEASED"}
    assert records["B2C-WAITING"]["release_status"] is False
    assert records["B2C-RELEASED"]["release_status"] is True
    assert records["B2C-RELEASED"]["so_status"] == "CREATED"


def test_list_record_has_the_sample_fields_with_empty_strings(api):
    api.create_ok("wms", b2b_body())

    (record,) = api.listed("WMS")

    assert list(record) == LIST_SAMPLE_KEYS
    assert record == {
        "order_no": B2B_NO,
        "order_type": "B2B",
        "so_status": "CREATED",
        "warehouse_id": "WH-TGR04",
        "consignee_id": "",
        "consignee_name": "",
        "release_status": True,
        "order_time": "2021-05-07 07:00:00",
        "wave_no": "",
        "so_reference_1": "",
        "so_reference_2": "",
        "so_reference_3": "",
        "so_reference_4": "",
        "so_reference_5": "",
        "consignee_address_1": "",
        "consignee_city": "",
        "billing_id": "",
        "carrier_name": "SiCepat",
    }


def test_b2c_list_record_carries_fo_number_and_so_number(api):
    api.create_ok("oms", b2c_body())

    (record,) = api.listed("OMS")

    assert record["order_type"] == "B2C"
    assert re.fullmatch(r"FO\d{18}", record["so_reference_1"])
    assert record["so_reference_2"] == B2C_NO
    assert record["order_time"] == "2022-07-15 11:58:40"
    assert record["consignee_name"] == record["consignee_city"] == ""
    assert record["so_reference_4"] == record["so_reference_5"] == ""
    assert record["carrier_name"] == "JNE"


def test_list_is_newest_first(api, sim):
    for n, order_no in enumerate(["OLD", "MIDDLE", "NEW"]):
        sim.clock.freeze(jakarta("2022-07-15 10:00:00") + n * 60)
        api.create_ok("wms", b2b_body(doc_no=order_no, lines=[("SKU-CAP-01", 1)]))

    assert numbers(api.listed("WMS")) == ["NEW", "MIDDLE", "OLD"]


def test_orders_created_in_the_same_second_are_still_newest_first(api, sim):
    sim.clock.freeze(jakarta("2022-07-15 10:00:00"))

    made = create_many(api, 3)

    assert numbers(api.listed("WMS")) == made[::-1]


def test_created_date_filters_are_inclusive_jakarta_days(api, sim):
    for order_no, at in [
        ("DAY-14-LATE", "2022-07-14 23:59:59"),
        ("DAY-15-EARLY", "2022-07-15 00:00:00"),
        ("DAY-15-LATE", "2022-07-15 23:59:59"),
        ("DAY-16-EARLY", "2022-07-16 00:00:00"),
    ]:
        sim.clock.freeze(jakarta(at))
        api.create_ok("wms", b2b_body(doc_no=order_no, lines=[("SKU-CAP-01", 1)]))

    on_the_15th = api.listed(
        "WMS", created_start="2022-07-15", created_end="2022-07-15"
    )
    from_the_15th = api.listed("WMS", created_start="2022-07-15")
    to_the_15th = api.listed("WMS", created_end="2022-07-15")

    assert sorted(numbers(on_the_15th)) == ["DAY-15-EARLY", "DAY-15-LATE"]
    assert sorted(numbers(from_the_15th)) == [
        "DAY-15-EARLY",
        "DAY-15-LATE",
        "DAY-16-EARLY",
    ]
    assert sorted(numbers(to_the_15th)) == [
        "DAY-14-LATE",
        "DAY-15-EARLY",
        "DAY-15-LATE",
    ]


def test_updated_date_filters_follow_the_last_change(api, http, sim):
    sim.clock.freeze(jakarta("2022-07-15 10:00:00"))
    api.create_ok("wms", b2b_body(doc_no="MOVED", lines=[("SKU-CAP-01", 1)]))
    api.create_ok("wms", b2b_body(doc_no="STILL", lines=[("SKU-CAP-01", 1)]))
    sim.clock.freeze(jakarta("2022-07-18 10:00:00"))
    advance_ok(http, "MOVED", step="allocate")

    assert numbers(api.listed("WMS", updated_start="2022-07-18")) == ["MOVED"]
    assert numbers(api.listed("WMS", updated_end="2022-07-17")) == ["STILL"]
    assert (
        numbers(api.listed("WMS", updated_start="2022-07-16", updated_end="2022-07-17"))
        == []
    )


def test_list_filters_by_warehouse(api):
    api.create_ok("wms", b2b_body(doc_no="IN-TGR"))
    api.create_ok(
        "wms",
        b2b_body(doc_no="IN-BAL", warehouse_id="WH-BAL", lines=[("SKU-CAP-01", 1)]),
    )

    assert numbers(api.listed("WMS", warehouse_id="WH-BAL")) == ["IN-BAL"]
    assert numbers(api.listed("WMS", warehouse_id="WH-NOPE")) == []
    # Another client's warehouse: nothing of this client's is there.
    assert numbers(api.listed("WMS", warehouse_id="WH-SBY01")) == []


def test_a_list_parameter_given_twice_counts_with_its_first_value(api):
    for n in range(3):
        api.create_ok("wms", b2b_body(doc_no=f"TWICE-{n}"))

    first = api.call(
        "GET", "/outbounds/WMS", query_string=[("limit", "1"), ("limit", "abc")]
    )
    refused = api.call(
        "GET", "/outbounds/WMS", query_string=[("limit", "abc"), ("limit", "1")]
    )

    assert numbers(first.get_json()["data"]["outbounds"]) == ["TWICE-2"]
    assert refused.status_code == 400


def test_list_filters_by_order_type(api, http):
    api.create_ok("wms", b2b_body(doc_no="NORMAL", order_type="CSO"))
    api.create_ok("wms", b2b_body(doc_no="RETURN", order_type="RT"))
    api.create_ok("wms", b2b_body(doc_no="TRANSFER", order_type="TT"))
    api.create_ok("oms", b2c_body(so_number="SHOP", order_type="SO"))
    advance_ok(http, "SHOP", step="release")

    assert sorted(numbers(api.listed("WMS", order_type="SO"))) == ["NORMAL", "SHOP"]
    assert numbers(api.listed("WMS", order_type="RT")) == ["RETURN"]
    assert numbers(api.listed("WMS", order_type="TT")) == ["TRANSFER"]


def test_list_filters_by_so_status(api, http):
    api.create_ok("wms", b2b_body(doc_no="WAITS"))
    api.create_ok("wms", b2b_body(doc_no="GOES"))
    advance_ok(http, "GOES", to="PICKED")
    api.create_ok("oms", b2c_body(so_number="NEW-B2C"))

    assert numbers(api.listed("WMS", so_status="PICKED")) == ["GOES"]
    assert numbers(api.listed("WMS", so_status="CREATED")) == ["WAITS"]
    assert numbers(api.listed("OMS", so_status="REGISTERED")) == ["NEW-B2C"]
    assert api.listed("WMS", so_status="SHIPPED") == []


def test_list_pages_through_the_orders(api):
    made = create_many(api, 12)

    pages = [api.list("WMS", page=p, limit=5).get_json() for p in (1, 2, 3)]

    assert [numbers(p["data"]["outbounds"]) for p in pages] == [
        made[::-1][:5],
        made[::-1][5:10],
        made[::-1][10:],
    ]
    assert pages[2]["pagination"] == {
        "current_page": 3,
        "current_elements": 2,
        "total_pages": 3,
        "total_elements": 12,
    }


def test_list_default_page_size_is_10(api):
    create_many(api, 11)

    body = api.list("WMS").get_json()

    assert len(body["data"]["outbounds"]) == 10
    assert body["pagination"]["total_pages"] == 2


def test_page_past_the_end_is_an_empty_list(api):
    create_many(api, 3)

    response = api.list("WMS", page=7, limit=2)

    assert response.status_code == 200
    body = response.get_json()
    assert body["data"]["outbounds"] == []
    assert body["pagination"] == {
        "current_page": 7,
        "current_elements": 0,
        "total_pages": 2,
        "total_elements": 3,
    }


def test_limit_of_100_is_accepted(api):
    assert api.list("WMS", limit=100).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "1.5"}, "page"),
        ({"created_start": "15-07-2022"}, "created_start"),
        ({"created_end": "2022-02-30"}, "created_end"),
        ({"updated_start": "2022-07-15 00:00:00"}, "updated_start"),
        ({"created_start": "2022-07-16", "created_end": "2022-07-15"}, "created_start"),
        ({"order_type": "CSO"}, "order_type"),
        ({"order_type": "B2B"}, "order_type"),
        ({"so_status": "Picked"}, "so_status"),
        ({"so_status": "60"}, "so_status"),
    ],
)
def test_bad_list_query_value_is_810(api, query, field):
    reason = refused_810(api.list("WMS", **query))

    assert reason.startswith(f"{field}:")


@pytest.mark.parametrize("outbound_type", ["wms", "oms", "B2B", "ALL", "WMSX"])
def test_bad_outbound_type_is_810(api, outbound_type):
    reason = refused_810(api.list(outbound_type))

    assert reason.startswith("outbound_type:")


# -- WMS detail -------------------------------------------------------------------


def test_wms_detail_of_the_b2b_sample_matches_the_detail_sample(api):
    api.create_ok("wms", sample("create_b2b_request.json"))
    expected = sample("detail_wms_response.json")

    body = api.detail("wms", B2B_NO).get_json()

    assert body["metadata"]["path"] == expected["metadata"]["path"]
    outbound, wanted = body["data"]["outbound"], expected["data"]["outbound"]
    assert list(outbound) == list(wanted)
    header = {k: v for k, v in outbound.items() if k != "details"}
    assert header == {k: v for k, v in wanted.items() if k != "details"}
    assert outbound["details"][0] == wanted["details"][0]
    assert len(outbound["details"]) == 2


def test_wms_detail_of_a_b2c_order_is_404_before_release(api):
    api.create_ok("oms", b2c_body())

    response = api.detail("wms", B2C_NO)

    assert response.status_code == 404
    assert response.get_json()["metadata"]["errors"][0]["code"] == 10004


def test_wms_detail_of_a_released_b2c_order(api, http):
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2C_NO, step="release")

    outbound = api.outbound("wms", B2C_NO)

    assert outbound["order_no"] == B2C_NO
    assert outbound["order_type"] == "B2C"
    assert outbound["so_status"] == "CREATED"
    assert outbound["release_status"] is True
    assert re.fullmatch(r"FO\d{18}", outbound["so_reference_1"])
    assert outbound["so_reference_2"] == B2C_NO
    assert outbound["consignee_name"] == "Budi Santoso"
    assert outbound["consignee_address_1"].startswith("Jl. Contoh No. 5")
    assert outbound["consignee_city"] == "Jakarta Pusat"
    assert outbound["notes"] == "tolong dibungkus rapi"
    assert outbound["carrier_name"] == "JNE"
    assert outbound["order_time"] == "2022-07-15T04:58:40Z"
    assert outbound["delivery_no"] == "*"
    assert [set(d) for d in outbound["details"]] == [WMS_LINE_KEYS] * 2
    assert [(d["qty_ordered"], d["qty_released"]) for d in outbound["details"]] == [
        (2, 2),
        (1, 1),
    ]


def test_wms_detail_of_an_unknown_order_is_404_10004(api):
    response = api.detail("wms", "NOPE")

    assert response.status_code == 404
    assert response.get_json()["metadata"]["errors"][0] == {
        "code": 10004,
        "message": "Record Does Not Exist. Please Validate Your Input Or Contact "
        "Administrator.",
    }


def test_wms_detail_needs_the_orders_warehouse(api):
    api.create_ok("wms", b2b_body())

    assert api.detail("wms", B2B_NO, "WH-BAL").status_code == 404


def test_line_quantities_agree_with_status_at_every_step(api, http):
    api.create_ok("wms", b2b_body())
    seen = {}

    seen["CREATED"] = api.outbound("wms", B2B_NO)
    for step in ("allocate", "pick", "pack", "load", "ship", "close"):
        outbound = advance_ok(http, B2B_NO, step=step)
        seen[step] = outbound
        assert api.outbound("wms", B2B_NO) == outbound

    def quantities(outbound):
        return [tuple(d[q] for q in QUANTITIES) for d in outbound["details"]]

    assert quantities(seen["CREATED"]) == [(40, 0, 0, 0), (25, 0, 0, 0)]
    assert quantities(seen["allocate"]) == [(40, 40, 0, 0), (25, 25, 0, 0)]
    assert quantities(seen["pick"]) == [(40, 40, 40, 0), (25, 25, 25, 0)]
    assert quantities(seen["pack"]) == quantities(seen["pick"])
    assert quantities(seen["load"]) == quantities(seen["pick"])
    assert quantities(seen["ship"]) == [(40, 40, 40, 40), (25, 25, 25, 25)]
    assert quantities(seen["close"]) == quantities(seen["ship"])

    assert [seen[s]["so_status"] for s in seen] == [
        "CREATED",
        "ALLOCATED",
        "PICKED",
        "PACKED",
        "PACKED",
        "SHIPPED",
        "CLOSED",
    ]
    assert [seen[s]["details"][0]["line_status"] for s in seen] == [
        "",
        "40",
        "60",
        "63",
        "66",
        "80",
        "80",
    ]


def test_awb_pack_id_and_receipt_date_appear_when_their_step_runs(api, http):
    api.create_ok("wms", b2b_body())

    picked = advance_ok(http, B2B_NO, to="PICKED")
    packed = advance_ok(http, B2B_NO, step="pack")
    shipped = advance_ok(http, B2B_NO, to="SHIPPED")

    assert picked["delivery_no"] == "*"
    assert picked["details"][0]["pack_id"] == ""
    assert packed["delivery_no"] not in ("*", "")
    assert packed["details"][0]["pack_id"].startswith("PK")
    assert packed["details"][0]["receipt_date"] is None
    assert shipped["delivery_no"] == packed["delivery_no"]
    assert shipped["details"][0]["receipt_date"] == "2022-02-22"


def test_awb_the_client_gave_is_kept(api, http):
    api.create_ok("wms", b2b_body(delivery_no="CGK1234567890"))

    assert api.outbound("wms", B2B_NO)["delivery_no"] == "CGK1234567890"
    assert advance_ok(http, B2B_NO, to="SHIPPED")["delivery_no"] == "CGK1234567890"


# -- OMS detail ------------------------------------------------------------------


def test_oms_detail_fields_of_the_b2c_sample(api):
    api.create_ok("oms", sample("create_b2c_request.json"))

    outbound = api.outbound("oms", B2C_NO)

    assert outbound["order_no"] == B2C_NO
    assert outbound["so_status"] == ""
    assert outbound["warehouse_id"] == "WH-TGR04"
    assert outbound["shop_code"] == "CS674"
    assert re.fullmatch(r"FO\d{18}", outbound["so_reference_1"])
    assert outbound["so_reference_2"] == B2C_NO
    assert outbound["notes"] == "tolong dibungkus rapi"
    assert outbound["has_split"] is False
    assert outbound["payment_type"] == "PAY_ONLINE"
    assert outbound["total_discount"] == 0
    assert outbound["seller_discount"] == 0
    assert outbound["buyer_paid_shipping_fee"] == 10000
    assert outbound["currency"] == "IDR"
    assert outbound["total_amount"] == 185000
    assert outbound["order_time"] == "2022-07-15T04:58:40Z"
    assert outbound["payment_time"] == "2022-07-15T05:01:02Z"
    assert outbound["zip_code"] == "10250"
    assert outbound["express_code"] == "JNE"
    (sub_order,) = outbound["sub_orders"]
    assert sub_order["warehouse_id"] == "WH-TGR04"
    assert sub_order["so_status"] == "PendingAudit"
    assert [(d["sku"], d["qty_ordered"]) for d in outbound["details"]] == [
        ("SKU-TSHIRT-M", 2),
        ("SKU-CAP-01", 1),
    ]


def test_oms_detail_shows_cod_and_money_fields(api):
    api.create_ok(
        "oms",
        b2c_body(
            payment_type=1,
            payment_way="COD",
            discount_price=5000,
            postage=9000,
            order_price=0,
            lines=[("SKU-CAP-01", 2)],
        ),
    )

    outbound = api.outbound("oms", B2C_NO)

    assert outbound["payment_type"] == "COD"
    assert outbound["total_discount"] == 5000
    assert outbound["buyer_paid_shipping_fee"] == 9000
    assert outbound["total_amount"] == 2 * 1000 + 9000 - 5000


def test_oms_sub_order_follows_the_warehouse(api, http):
    api.create_ok("oms", b2c_body())
    statuses = [api.outbound("oms", B2C_NO)["sub_orders"][0]["so_status"]]

    for step in ("release", "allocate", "pick", "pack", "load", "ship", "close"):
        advance_ok(http, B2C_NO, step=step)
        outbound = api.outbound("oms", B2C_NO)
        assert outbound["so_status"] == ""
        statuses.append(outbound["sub_orders"][0]["so_status"])

    assert statuses == [
        "PendingAudit",
        "CREATED",
        "ALLOCATED",
        "PICKED",
        "PACKED",
        "PACKED",
        "SHIPPED",
        "CLOSED",
    ]


def test_oms_sub_order_quantities_match_the_wms_detail(api, http):
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2C_NO, to="PICKED")

    sub_lines = api.outbound("oms", B2C_NO)["sub_orders"][0]["details"]
    wms_lines = api.outbound("wms", B2C_NO)["details"]

    assert [[d[q] for q in QUANTITIES] for d in sub_lines] == [
        [d[q] for q in QUANTITIES] for d in wms_lines
    ]


def test_oms_detail_of_a_b2b_order_is_404(api):
    api.create_ok("wms", b2b_body())

    response = api.detail("oms", B2B_NO)

    assert response.status_code == 404
    assert response.get_json()["metadata"]["errors"][0]["code"] == 10004


def test_oms_detail_of_an_unknown_order_is_404(api):
    assert api.detail("oms", "NOPE").status_code == 404


# -- express list -------------------------------------------------------------------


def express(api, **query) -> dict:
    response = api.call("GET", "/express", query_string=query)
    assert response.status_code == 200, response.headers.get("x-sim-error")
    return response.get_json()


def codes(body: dict) -> list[str]:
    return [e["express_code"] for e in body["data"]["express"]]


def test_express_list_holds_code_and_name_with_pagination(api):
    body = express(api, limit=100)

    assert {"express_code": "JNE", "express_name": "JNE"} in body["data"]["express"]
    assert all(
        set(e) == {"express_code", "express_name"} for e in body["data"]["express"]
    )
    assert body["pagination"]["total_elements"] == 14


def test_express_list_filters_by_type(api):
    oms = codes(express(api, express_type="OMS", limit=100))
    wms = codes(express(api, express_type="WMS", limit=100))

    assert "SPX" in oms and "GOSEND" in oms and "BARAKA" not in oms
    assert "BARAKA" in wms and "SPX" not in wms and "GOSEND" not in wms
    assert "JNE" in oms and "JNE" in wms


def test_express_list_filters_by_code_and_name_ignoring_case(api):
    assert codes(express(api, express_code="sicepat")) == ["SICEPAT"]
    assert codes(express(api, express_name="SICEPAT")) == ["SICEPAT"]
    assert codes(express(api, express_name="nope")) == []


def test_express_list_pages(api):
    body = express(api, limit=5, page=3)

    assert len(body["data"]["express"]) == 4
    assert body["pagination"] == {
        "current_page": 3,
        "current_elements": 4,
        "total_pages": 3,
        "total_elements": 14,
    }


def test_express_list_refuses_an_unknown_type(api):
    response = api.call("GET", "/express", query_string={"express_type": "B2B"})

    assert refused_810(response).startswith("express_type:")


# -- stock -------------------------------------------------------------------------


def test_stock_rows_have_the_decided_shape(api):
    response = api.stock(stock_type="WMS", sku="SKU-TSHIRT-M")

    assert response.get_json()["data"]["stock"] == [
        {
            "sku": "SKU-TSHIRT-M",
            "sku_descr": "Kaos polos M",
            "warehouse_id": "WH-TGR04",
            "qty": 1200,
        }
    ]
    assert response.get_json()["pagination"]["total_elements"] == 1


def test_stock_types_move_with_creation_allocation_and_shipment(api, http):
    def levels():
        return [api.qty("SKU-TSHIRT-M", t) for t in ("WMS", "OMS", "OMSWMS")]

    assert levels() == [1200, 1200, 1200]

    api.create_ok("wms", b2b_body())
    assert levels() == [1200, 1160, 1160]

    advance_ok(http, B2B_NO, step="allocate")
    assert levels() == [1200, 1160, 1160]

    advance_ok(http, B2B_NO, to="PACKED")
    assert levels() == [1200, 1160, 1160]

    advance_ok(http, B2B_NO, to="SHIPPED")
    assert levels() == [1160, 1160, 1160]

    advance_ok(http, B2B_NO, to="CLOSED")
    assert levels() == [1160, 1160, 1160]


def test_b2c_order_holds_oms_stock_from_creation(api, http):
    api.create_ok("oms", b2c_body(lines=[("SKU-CAP-01", 5)]))

    assert api.qty("SKU-CAP-01", "OMS") == 795
    assert api.qty("SKU-CAP-01", "WMS") == 800

    advance_ok(http, B2C_NO, step="release")
    assert api.qty("SKU-CAP-01", "OMS") == 795


def test_short_shipment_gives_the_shortfall_back_to_oms_stock(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-TSHIRT-M", 40)]))
    advance_ok(http, B2B_NO, step="allocate")
    advance_ok(http, B2B_NO, step="pick", lines={"SKU-TSHIRT-M": 30})
    advance_ok(http, B2B_NO, to="SHIPPED")

    assert api.qty("SKU-TSHIRT-M", "WMS") == 1170
    assert api.qty("SKU-TSHIRT-M", "OMS") == 1170


def test_omswms_is_the_smaller_of_the_two(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))

    assert api.qty("SKU-LIMITED-01", "WMS") == 3
    assert api.qty("SKU-LIMITED-01", "OMS") == 0
    assert api.qty("SKU-LIMITED-01", "OMSWMS") == 0


def test_stock_takes_repeated_skus_and_sku_together(api):
    response = api.call(
        "GET",
        "/inventory/stock?warehouse_code=WH-TGR04&stock_type=WMS"
        "&sku=SKU-CAP-01&skus=SKU-TSHIRT-M&skus=SKU-LIMITED-01&skus=SKU-NOPE",
    )

    rows = response.get_json()["data"]["stock"]

    assert {r["sku"]: r["qty"] for r in rows} == {
        "SKU-CAP-01": 800,
        "SKU-TSHIRT-M": 1200,
        "SKU-LIMITED-01": 3,
    }


def test_stock_without_skus_pages_through_the_warehouse(api):
    body = api.stock(stock_type="WMS").get_json()

    assert len(body["data"]["stock"]) == 10
    assert body["pagination"]["total_elements"] == 14
    assert body["pagination"]["total_pages"] == 2


def test_stock_of_another_warehouse_is_its_own(api):
    assert api.qty("SKU-TSHIRT-M", "WMS", "WH-BAL") == 55


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"warehouse_code": "", "stock_type": "WMS"}, "warehouse_code"),
        ({"stock_type": "WMS"}, "warehouse_code"),
        ({"warehouse_code": "WH-TGR04"}, "stock_type"),
        ({"warehouse_code": "WH-TGR04", "stock_type": "ALL"}, "stock_type"),
        ({"warehouse_code": "WH-TGR04", "stock_type": "WMS", "limit": 101}, "limit"),
    ],
)
def test_bad_stock_query_is_810(api, query, field):
    response = api.call("GET", "/inventory/stock", query_string=query)

    assert refused_810(response).startswith(f"{field}:")


def test_stock_refuses_more_than_20_skus(api):
    skus = "&".join(f"skus=SKU-{n}" for n in range(21))

    response = api.call(
        "GET", f"/inventory/stock?warehouse_code=WH-TGR04&stock_type=WMS&{skus}"
    )

    assert refused_810(response).startswith("skus:")


def test_stock_of_another_clients_warehouse_is_3014(api):
    response = api.stock("WH-SBY01", "WMS")

    assert response.status_code == 400
    assert response.get_json()["metadata"]["errors"][0]["code"] == 3014


def test_stock_of_a_new_sku_appears_after_put_stock(api, http):
    set_stock(http, "SKU-NEW-01", 7)

    assert api.qty("SKU-NEW-01", "WMS") == 7


# -- stock per warehouse ---------------------------------------------------------------


def test_stock_per_warehouse_is_a_bare_array_over_all_warehouses(api):
    response = api.call(
        "GET", "/inventory/stock/warehouse?skus=SKU-TSHIRT-M&skus=SKU-CAP-01"
    )

    body = response.get_json()
    assert isinstance(body["data"], list)
    assert body["data"] == [
        {
            "sku": "SKU-TSHIRT-M",
            "stock": 1255,
            "details": [
                {"warehouse_id": "WH-BAL", "stock": 55},
                {"warehouse_id": "WH-TGR04", "stock": 1200},
            ],
        },
        {
            "sku": "SKU-CAP-01",
            "stock": 922,
            "details": [
                {"warehouse_id": "WH-BAL", "stock": 122},
                {"warehouse_id": "WH-TGR04", "stock": 800},
            ],
        },
    ]
    assert "pagination" in body


def test_stock_per_warehouse_is_oms_stock(api):
    api.create_ok("oms", b2c_body(lines=[("SKU-TSHIRT-M", 100)]))

    response = api.call("GET", "/inventory/stock/warehouse?skus=SKU-TSHIRT-M")

    (row,) = response.get_json()["data"]
    assert row["stock"] == 1155
    assert {"warehouse_id": "WH-TGR04", "stock": 1100} in row["details"]


def test_stock_per_warehouse_refuses_more_than_20_skus(api):
    skus = "&".join(f"skus=SKU-{n}" for n in range(21))

    response = api.call("GET", f"/inventory/stock/warehouse?{skus}")

    assert refused_810(response).startswith("skus:")


def test_stock_per_warehouse_skips_unknown_skus(api):
    response = api.call("GET", "/inventory/stock/warehouse?skus=SKU-NOPE")

    assert response.get_json()["data"] == []


def nulls(value: object, path: str = "") -> list[str]:
    """Paths of every null in a JSON value, except receipt_date's."""
    if isinstance(value, dict):
        return [
            found
            for key, nested in value.items()
            for found in nulls(nested, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [found for item in value for found in nulls(item, f"{path}[]")]
    if value is None and not path.endswith(".receipt_date"):
        return [path]
    return []


@pytest.mark.parametrize("to", [None, "CREATED", "PACKED", "CLOSED"])
def test_reads_send_no_null_except_receipt_date(api, http, to):
    api.create_ok("oms", b2c_body())
    api.create_ok("wms", b2b_body())
    if to:
        advance_ok(http, B2C_NO, to=to)
        advance_ok(http, B2B_NO, to=to if to != "CREATED" else "ALLOCATED")

    bodies = [
        api.list("OMS").get_json(),
        api.list("WMS").get_json(),
        api.detail("oms", B2C_NO).get_json(),
        api.detail("wms", B2B_NO).get_json(),
        api.stock(stock_type="OMS").get_json(),
        api.call("GET", "/inventory/stock/warehouse").get_json(),
        api.call("GET", "/express").get_json(),
    ]
    if to:
        bodies.append(api.detail("wms", B2C_NO).get_json())

    assert [found for body in bodies for found in nulls(body)] == []
