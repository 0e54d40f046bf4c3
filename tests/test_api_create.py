"""Create Sales Order B2C and B2B: the samples, every field rule, refusals."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest
from conftest import (
    DEMO_ID,
    SECOND_ID,
    ShipperClient,
    b2b_body,
    b2c_body,
    sample,
    webhooks,
)

GROUP_KEY = re.compile(
    r"(hwoutboundoms|hwoutboundwms)\.(\d{4})\.(\d\d)\.(\d{8})\.(\d+)"
)


def refused_810(api: ShipperClient, kind: str, body: dict) -> str:
    """Send a body that must be refused with 810; answers the reason."""
    response = api.create(kind, body)

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["metadata"]["errors"][0]["code"] == 810
    return response.headers["x-sim-error"]


def error_code(response) -> int:
    return response.get_json()["metadata"]["errors"][0]["code"]


def without(body: dict, field: str) -> dict:
    body = dict(body)
    del body[field]
    return body


# -- the samples, as they are ----------------------------------------------------


def test_b2c_sample_is_created(api):
    response = api.create("oms", sample("create_b2c_request.json"))

    assert response.status_code == 200
    body = response.get_json()
    assert set(body["data"]) == {"group_key"}
    assert body["metadata"]["path"] == "/v3/fulfillment/outbound/oms"


def test_b2b_sample_is_created(api):
    response = api.create("wms", sample("create_b2b_request.json"))

    assert response.status_code == 200
    assert set(response.get_json()["data"]) == {"group_key"}


def test_cancel_sample_cancels_the_b2c_sample(api):
    api.create_ok("oms", sample("create_b2c_request.json"))

    response = api.call("PATCH", "/outbound/oms/cancel", sample("cancel_request.json"))

    assert response.status_code == 200
    assert set(response.get_json()) == {"metadata"}
    (record,) = api.listed("OMS")
    assert record["so_status"] == "CANCELLED"


def test_b2c_order_is_stored_registered_and_pending_audit(api):
    api.create_ok("oms", b2c_body())

    outbound = api.outbound("oms", "SHOPEE-2207-000123")

    assert outbound["so_status"] == ""
    assert [s["so_status"] for s in outbound["sub_orders"]] == ["PendingAudit"]
    (record,) = api.listed("OMS")
    assert record["so_status"] == "REGISTERED"
    assert record["release_status"] is False


def test_b2b_order_is_stored_created_in_the_wms(api):
    api.create_ok("wms", b2b_body())

    outbound = api.outbound("wms", "ERP-SO-0042")

    assert outbound["so_status"] == "CREATED"
    assert outbound["release_status"] is True
    assert [line["qty_released"] for line in outbound["details"]] == [40, 25]


def test_create_queues_the_so_created_webhook(api, http):
    api.create_ok("oms", b2c_body())

    assert [w["event"] for w in webhooks(http)] == ["so_created"]


def test_b2b_create_queues_so_created_then_status_00(api, http):
    api.create_ok("wms", b2b_body())

    queued = webhooks(http)

    assert [w["event"] for w in queued] == ["so_created", "status"]
    assert queued[1]["payload"]["status_code"] == "00"


# -- the group key ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "prefix"),
    [("oms", b2c_body(), "hwoutboundoms"), ("wms", b2b_body(), "hwoutboundwms")],
)
def test_group_key_names_kind_time_and_client(api, kind, body, prefix):
    response = api.create(kind, body)
    answered = response.get_json()

    found = GROUP_KEY.fullmatch(answered["data"]["group_key"])

    assert found, answered["data"]["group_key"]
    assert found.group(1) == prefix
    assert int(found.group(5)) == DEMO_ID
    # UTC, as Shipper's sample pairs timestamp 1643963534 with 2022.02.04083214.
    stamp = datetime.strptime(".".join(found.group(2, 3, 4)), "%Y.%m.%d%H%M%S").replace(
        tzinfo=UTC
    )
    assert abs(stamp.timestamp() - answered["metadata"]["timestamp"]) <= 1


def test_group_key_carries_the_calling_clients_id(second_api):
    body = b2c_body(customer_id="CS792", lines=[("SKU-CAP-01", 1)])

    group_key = second_api.create_ok("oms", body)["data"]["group_key"]

    assert group_key.endswith(f".{SECOND_ID}")


def test_so_created_webhook_carries_the_answered_group_key(api, http):
    group_key = api.create_ok("wms", b2b_body())["data"]["group_key"]

    (created,) = webhooks(http, event="so_created")

    assert created["payload"]["group_key"] == group_key


# -- accepted variants ----------------------------------------------------------------


def test_b2c_body_wrapped_in_data_outbound_is_accepted(api):
    response = api.create("oms", {"data": {"outbound": b2c_body()}})

    assert response.status_code == 200
    assert api.outbound("oms", "SHOPEE-2207-000123")["consignee"] == "Budi Santoso"


def test_b2c_older_field_names_are_accepted_and_stored_newer(api, http):
    body = b2c_body()
    del body["zip_code"], body["consignee_mobile"]
    body["zipcode"] = "10250"
    body["mobile"] = "0812999"

    api.create_ok("oms", body)

    outbound = api.outbound("oms", "SHOPEE-2207-000123")
    assert outbound["zip_code"] == "10250"
    assert outbound["consignee_mobile"] == "0812999"


def test_b2c_optional_fields_may_be_left_out(api):
    body = {
        key: value
        for key, value in b2c_body().items()
        if key
        in {
            "warehouse_id",
            "customer_id",
            "so_number",
            "order_identification_code",
            "internal_order_status",
            "express_code",
            "tenant_name",
            "consignee",
            "consignee_phone",
            "consignee_email",
            "consignee_full_address",
            "consignee_state",
            "consignee_province",
            "consignee_city",
            "zip_code",
            "details",
        }
    }

    api.create_ok("oms", body)

    outbound = api.outbound("oms", "SHOPEE-2207-000123")
    assert outbound["order_type"] == "SO"
    assert outbound["platform"] == ""


def test_b2b_order_type_so_is_accepted_as_cso(api, http):
    api.create_ok("wms", b2b_body(order_type="SO"))

    (created,) = webhooks(http, event="so_created")
    (status,) = webhooks(http, event="status")

    assert status["payload"]["order_type"] == "CSO"
    assert '"order_type": "CSO"' in created["payload"]["items"][0]["payload"]


@pytest.mark.parametrize("zip_code", [12345, "01234"])
def test_b2b_zip_may_be_five_digits_as_number_or_string(api, zip_code):
    assert api.create("wms", b2b_body(consignee_zip=zip_code)).status_code == 200


@pytest.mark.parametrize("order_type", ["CSO", "RT", "TT", "CD"])
def test_b2b_accepts_each_order_type(api, order_type):
    assert api.create("wms", b2b_body(order_type=order_type)).status_code == 200


@pytest.mark.parametrize("order_type", ["SO", "TT"])
def test_b2c_accepts_each_order_type(api, order_type):
    assert api.create("oms", b2c_body(order_type=order_type)).status_code == 200


def test_unknown_fields_are_ignored(api):
    assert api.create("oms", b2c_body(something_new="x")).status_code == 200


# -- B2C field rules ---------------------------------------------------------------

B2C_REQUIRED = [
    "warehouse_id",
    "customer_id",
    "so_number",
    "order_identification_code",
    "internal_order_status",
    "express_code",
    "tenant_name",
    "consignee",
    "consignee_phone",
    "consignee_email",
    "consignee_full_address",
    "consignee_state",
    "consignee_province",
    "consignee_city",
    "zip_code",
    "details",
]


@pytest.mark.parametrize("field", B2C_REQUIRED)
def test_b2c_missing_required_field_is_810(api, field):
    reason = refused_810(api, "oms", without(b2c_body(), field))

    assert reason.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("warehouse_id", 20),
        ("customer_id", 20),
        ("so_number", 50),
        ("order_source", 32),
        ("internal_order_status", 30),
        ("express_code", 40),
        ("tenant_name", 200),
        ("consignee", 200),
        ("consignee_phone", 300),
        ("consignee_mobile", 300),
        ("consignee_email", 200),
        ("consignee_full_address", 200),
        ("consignee_state", 30),
        ("consignee_province", 50),
        ("consignee_city", 50),
        ("zip_code", 20),
    ],
)
def test_b2c_string_longer_than_its_limit_is_810(api, field, limit):
    reason = refused_810(api, "oms", b2c_body(**{field: "A" * (limit + 1)}))

    assert reason.startswith(f"{field}: must be at most {limit} characters")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("warehouse_id", 4),
        ("so_number", 123456),
        ("order_identification_code", "1"),
        ("order_identification_code", True),
        ("order_identification_code", 1.0),
        ("order_identification_code", 2),
        ("express_code", ["JNE"]),
        ("consignee", None),
        ("zip_code", 10250),
        ("consignee_doc_type", "1"),
        ("consignee_doc_type", 4),
        ("order_price", "185000"),
        ("postage", -1),
        ("payment_type", 2),
        ("payment_type", False),
        ("order_type", "CSO"),
        ("platform", "AMAZON"),
        ("order_time", "2022-07-15T11:58:40Z"),
        ("order_time", "2022-07-15"),
        ("payment_time", "2022-02-30 12:00:00"),
        ("so_number", "SHOPEE 2207"),
        ("so_number", "SHOPEE/2207"),
        ("so_number", "SHOPEE.2207"),
        ("so_number", "   "),
        ("customer_id", "HJ"),
        ("customer_id", "CS792"),
        ("details", []),
        ("details", {"sku": "SKU-CAP-01", "qty_ordered": 1}),
    ],
)
def test_b2c_field_rule_is_810(api, field, value):
    reason = refused_810(api, "oms", b2c_body(**{field: value}))

    assert reason.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"qty_ordered": 1}, "sku"),
        ({"sku": "SKU-CAP-01"}, "qty_ordered"),
        ({"sku": "SKU-CAP-01", "qty_ordered": 0}, "qty_ordered"),
        ({"sku": "SKU-CAP-01", "qty_ordered": -3}, "qty_ordered"),
        ({"sku": "SKU-CAP-01", "qty_ordered": 1.5}, "qty_ordered"),
        ({"sku": "SKU-CAP-01", "qty_ordered": "1"}, "qty_ordered"),
        ({"sku": "SKU-CAP-01", "qty_ordered": True}, "qty_ordered"),
        ({"sku": "S" * 51, "qty_ordered": 1}, "sku"),
        ({"sku": 12, "qty_ordered": 1}, "sku"),
        ({"sku": "SKU-CAP-01", "qty_ordered": 1, "price": "100"}, "price"),
    ],
)
def test_b2c_line_rule_is_810_naming_the_line(api, line, field):
    body = b2c_body()
    body["details"] = [body["details"][0], line]

    reason = refused_810(api, "oms", body)

    assert reason.startswith(f"details[1].{field}:")


# -- B2B field rules ---------------------------------------------------------------

B2B_REQUIRED = [
    "warehouse_id",
    "customer_id",
    "order_type",
    "doc_no",
    "order_time",
    "consignee_name",
    "consignee_tel",
    "consignee_mail",
    "consignee_zip",
    "consignee_address",
    "carrier_id",
    "details",
]


@pytest.mark.parametrize("field", B2B_REQUIRED)
def test_b2b_missing_required_field_is_810(api, field):
    reason = refused_810(api, "wms", without(b2b_body(), field))

    assert reason.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("warehouse_id", 20),
        ("customer_id", 50),
        ("doc_no", 20),
        ("consignee_id", 50),
        ("consignee_name", 50),
        ("consignee_tel", 30),
        ("consignee_address", 200),
        ("delivery_no", 30),
        ("carrier_id", 30),
        ("carrier_name", 200),
        ("priority", 1),
        ("notes", 200),
    ],
)
def test_b2b_string_longer_than_its_limit_is_810(api, field, limit):
    reason = refused_810(api, "wms", b2b_body(**{field: "A" * (limit + 1)}))

    assert reason.startswith(f"{field}: must be at most {limit} characters")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_type", "XX"),
        ("order_type", "cso"),
        ("doc_no", "ERP/SO/42"),
        ("doc_no", 42),
        ("order_time", "2021-05-07 00:00:00"),
        ("order_time", "2021-05-07T00:00:00"),
        ("order_time", "2021-05-07T00:00:00+07:00"),
        ("order_time", "2021-02-30T00:00:00Z"),
        ("consignee_mail", "not-an-email"),
        ("consignee_mail", "a@" + "b" * 95 + ".com"),
        ("consignee_zip", 1234),
        ("consignee_zip", 123456),
        ("consignee_zip", "1234"),
        ("consignee_zip", "12a45"),
        ("consignee_zip", 12345.0),
        ("consignee_tel", 213000000),
        ("carrier_id", ""),
        ("customer_id", "CS674"),
        ("details", []),
    ],
)
def test_b2b_field_rule_is_810(api, field, value):
    reason = refused_810(api, "wms", b2b_body(**{field: value}))

    assert reason.startswith(f"{field}:")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"line_no": None}, "line_no"),
        ({"line_no": "2"}, "line_no"),
        ({"line_no": 0}, "line_no"),
        ({"qty_ordered": 0}, "qty_ordered"),
        ({"mfg_date": "2022/01/01"}, "mfg_date"),
        ({"exp_date": "2022-13-01"}, "exp_date"),
        ({"batch_no": 7}, "batch_no"),
    ],
)
def test_b2b_line_rule_is_810_naming_the_line(api, change, field):
    body = b2b_body()
    body["details"][1].update(change)
    if change.get(field, "") is None:
        del body["details"][1][field]

    reason = refused_810(api, "wms", body)

    assert reason.startswith(f"details[1].{field}:")


def test_b2b_line_numbers_must_be_unique(api):
    body = b2b_body()
    body["details"][1]["line_no"] = 1

    reason = refused_810(api, "wms", body)

    assert reason.startswith("details[1].line_no: must be unique")


def test_b2b_line_dates_are_stored(api):
    body = b2b_body()
    body["details"][0].update(mfg_date="2022-01-02", exp_date="2024-01-02")

    api.create_ok("wms", body)

    line = api.outbound("wms", "ERP-SO-0042")["details"][0]
    assert (line["mfg_date"], line["exp_date"]) == ("2022-01-02", "2024-01-02")


# -- business refusals ---------------------------------------------------------------


def test_duplicate_number_in_the_same_warehouse_is_3011(api):
    api.create_ok("oms", b2c_body())

    response = api.create("oms", b2c_body())

    assert response.status_code == 400
    assert error_code(response) == 3011
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Order Number Already Exists."
    )
    assert len(api.listed("OMS")) == 1


def test_duplicate_b2b_doc_no_is_3011(api):
    api.create_ok("wms", b2b_body())

    response = api.create("wms", b2b_body())

    assert error_code(response) == 3011
    assert response.headers["x-sim-error"] == (
        "doc_no: 'ERP-SO-0042' already exists in WH-TGR04 for this client"
    )


def test_b2b_and_b2c_share_one_number_space_per_warehouse(api):
    api.create_ok("wms", b2b_body(doc_no="SO-1"))

    assert error_code(api.create("oms", b2c_body(so_number="SO-1"))) == 3011


def test_same_number_in_another_warehouse_is_a_new_order(api):
    api.create_ok("oms", b2c_body())

    response = api.create("oms", b2c_body(warehouse_id="WH-BAL"))

    assert response.status_code == 200
    assert {r["warehouse_id"] for r in api.listed("OMS")} == {"WH-TGR04", "WH-BAL"}


def test_another_client_may_reuse_the_number(api, second_api):
    api.create_ok("wms", b2b_body())

    body = b2b_body(customer_id="MDS", lines=[("SKU-TSHIRT-M", 1)])
    response = second_api.create("wms", body)

    assert response.status_code == 200
    assert len(api.listed("WMS")) == 1
    assert len(second_api.listed("WMS")) == 1


def test_a_cancelled_number_is_still_taken(api):
    api.create_ok("oms", b2c_body())
    api.cancel("oms", "SHOPEE-2207-000123")

    assert error_code(api.create("oms", b2c_body())) == 3011


@pytest.mark.parametrize(
    "sku",
    ["SKU-NOPE", "SKU-KERIPIK-BALADO-200", "sku-cap-01"],
    ids=["unknown", "other client's", "wrong case"],
)
def test_sku_the_warehouse_does_not_hold_for_the_client_is_3013(api, sku):
    body = b2c_body(lines=[("SKU-CAP-01", 1), (sku, 1)])

    response = api.create("oms", body)

    assert error_code(response) == 3013
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "SKU Does Not Exist."
    )
    assert response.headers["x-sim-error"].startswith("details[1].sku:")


def test_b2b_unknown_sku_is_3013(api):
    assert error_code(api.create("wms", b2b_body(lines=[("SKU-NOPE", 1)]))) == 3013


@pytest.mark.parametrize(
    "warehouse_id", ["WH-NOPE", "WH-SBY01"], ids=["unknown", "other client's"]
)
@pytest.mark.parametrize(
    ("kind", "make"), [("oms", b2c_body), ("wms", b2b_body)], ids=["B2C", "B2B"]
)
def test_warehouse_unknown_to_the_client_is_3014(api, kind, make, warehouse_id):
    response = api.create(kind, make(warehouse_id=warehouse_id))

    assert error_code(response) == 3014
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Warehouse Does Not Exist."
    )


@pytest.mark.parametrize(
    ("kind", "make", "field", "code"),
    [
        ("oms", b2c_body, "express_code", "NOPE"),
        ("oms", b2c_body, "express_code", "BARAKA"),
        ("oms", b2c_body, "express_code", "jne"),
        ("wms", b2b_body, "carrier_id", "NOPE"),
        ("wms", b2b_body, "carrier_id", "SPX"),
        ("wms", b2b_body, "carrier_id", "GOSEND"),
    ],
    ids=[
        "B2C unknown",
        "B2C WMS-only",
        "B2C case",
        "B2B unknown",
        "B2B OMS-only",
        "B2B OMS-only 2",
    ],
)
def test_express_code_unknown_or_of_the_wrong_type_is_3015(
    api, kind, make, field, code
):
    response = api.create(kind, make(**{field: code}))

    assert error_code(response) == 3015
    assert response.get_json()["metadata"]["errors"][0]["message"] == (
        "Express Code Does Not Exist."
    )
    assert response.headers["x-sim-error"].startswith(f"{field}:")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b2b_body(warehouse_id="WH-NOPE", carrier_id="NOPE"), 3014),
        (b2b_body(carrier_id="NOPE", lines=[("SKU-NOPE", 1)]), 3015),
        (b2b_body(lines=[("SKU-NOPE", 1)], doc_no="FIRST-ONE"), 3013),
    ],
    ids=["warehouse before express", "express before SKU", "SKU before number"],
)
def test_a_create_wrong_in_several_ways_names_the_first_check(api, body, code):
    api.create("wms", b2b_body(doc_no="FIRST-ONE"))

    assert error_code(api.create("wms", body)) == code


def test_express_code_of_the_right_type_is_accepted(api):
    assert api.create("oms", b2c_body(express_code="SPX")).status_code == 200
    assert api.create("wms", b2b_body(carrier_id="BARAKA")).status_code == 200


# -- nothing stored after a refusal -------------------------------------------------

REFUSALS = {
    "810": ("oms", b2c_body(so_number="bad number!")),
    "810 customer": ("wms", b2b_body(customer_id="XX")),
    "810 line": ("oms", b2c_body(lines=[("SKU-TSHIRT-M", 5), ("SKU-CAP-01", 0)])),
    "3013": ("wms", b2b_body(lines=[("SKU-TSHIRT-M", 5), ("SKU-NOPE", 1)])),
    "3014": ("oms", b2c_body(warehouse_id="WH-SBY01")),
    "3015": ("wms", b2b_body(carrier_id="SPX")),
}


@pytest.mark.parametrize(("kind", "body"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refused_create_stores_nothing(api, http, kind, body):
    before = [api.qty("SKU-TSHIRT-M", t) for t in ("OMS", "WMS")]

    response = api.create(kind, body)

    assert response.status_code == 400
    assert api.listed("OMS") == []
    assert api.listed("WMS") == []
    assert [api.qty("SKU-TSHIRT-M", t) for t in ("OMS", "WMS")] == before
    assert webhooks(http) == []
    assert http.get("/_sim/orders").get_json()["orders"] == []


def test_refused_duplicate_leaves_the_first_order_alone(api, http):
    api.create_ok("oms", b2c_body(lines=[("SKU-TSHIRT-M", 2)]))
    oms_before = api.qty("SKU-TSHIRT-M", "OMS")

    api.create("oms", b2c_body(lines=[("SKU-TSHIRT-M", 50)]))

    assert api.qty("SKU-TSHIRT-M", "OMS") == oms_before
    (line,) = api.outbound("oms", "SHOPEE-2207-000123")["details"]
    assert line["qty_ordered"] == 2
    assert len(webhooks(http)) == 1


def test_concurrent_creates_of_one_number_store_one_order(app, api):
    results: list[int] = []

    def create() -> None:
        client = ShipperClient(app.test_client(), api.api_key)
        results.append(client.create("wms", b2b_body()).status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200] + [400] * 7
    assert len(api.listed("WMS")) == 1
