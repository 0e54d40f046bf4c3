"""The control API: clients, stock and the request journal."""

from __future__ import annotations

import json

import pytest
from conftest import (
    DEMO_ID,
    SECOND_ID,
    ShipperClient,
    advance_ok,
    b2b_body,
    b2c_body,
    sim_stock,
)

from simulator.app import create_app
from simulator.config import Config

NEW_CLIENT = {
    "api_key": "key-toko-baru",
    "client_id": 900001,
    "tenant_name": "Toko Baru",
    "oms_customer_id": "CS900",
    "wms_customer_id": "BARU",
    "warehouses": ["WH-TGR04", "WH-NEW01"],
    "webhook_url": "http://127.0.0.1:9000/hook",
    "progression": "manual",
    "step_delay": 1.5,
}


def new_client(**changes) -> dict:
    body = dict(NEW_CLIENT)
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def put_stock(http, **changes):
    body = {
        "client_id": DEMO_ID,
        "warehouse_id": "WH-TGR04",
        "sku": "SKU-CAP-01",
        "qty": 10,
        **changes,
    }
    return http.put("/_sim/stock", json={k: v for k, v in body.items() if v is not ...})


def journal(http, **query) -> list[dict]:
    response = http.get("/_sim/requests", query_string=query)
    assert response.status_code == 200
    return response.get_json()["requests"]


# -- health -----------------------------------------------------------------------


def test_health_is_ok(http):
    response = http.get("/_sim/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_control_api_needs_no_key(http):
    assert http.get("/_sim/clients").status_code == 200


def test_unknown_control_route_answers_plain_json(http):
    response = http.get("/_sim/nowhere")

    assert response.status_code == 404
    assert "error" in response.get_json()


# -- clients -------------------------------------------------------------------------


def test_adding_a_client_answers_201_with_the_client(http):
    response = http.post("/_sim/clients", json=NEW_CLIENT)

    assert response.status_code == 201
    added = response.get_json()
    assert added["client_id"] == 900001
    assert added["warehouses"] == ["WH-NEW01", "WH-TGR04"]
    assert added["step_delay"] == 1.5
    assert http.get("/_sim/clients/900001").get_json() == added
    assert 900001 in [
        c["client_id"] for c in http.get("/_sim/clients").get_json()["clients"]
    ]


def test_an_added_client_can_use_shippers_api(http):
    http.post("/_sim/clients", json=NEW_CLIENT)
    http.put(
        "/_sim/stock",
        json={
            "client_id": 900001,
            "warehouse_id": "WH-NEW01",
            "sku": "SKU-BARU-1",
            "qty": 5,
            "sku_descr": "Barang baru",
        },
    )
    api = ShipperClient(http, "key-toko-baru")

    body = b2c_body(
        warehouse_id="WH-NEW01", customer_id="CS900", lines=[("SKU-BARU-1", 2)]
    )
    group_key = api.create_ok("oms", body)["data"]["group_key"]

    assert group_key.endswith(".900001")
    assert api.qty("SKU-BARU-1", "OMS", "WH-NEW01") == 3
    assert api.outbound("oms", "SHOPEE-2207-000123", "WH-NEW01")["shop_code"] == (
        "CS900"
    )
    assert api.create("oms", b2c_body()).status_code == 400


def test_removing_a_client_takes_its_orders_and_key_with_it(http):
    http.post("/_sim/clients", json=NEW_CLIENT)
    put_stock(http, client_id=900001, warehouse_id="WH-NEW01", sku="SKU-BARU-1")
    api = ShipperClient(http, "key-toko-baru")
    body = b2c_body(
        warehouse_id="WH-NEW01", customer_id="CS900", lines=[("SKU-BARU-1", 2)]
    )
    api.create_ok("oms", body)

    removed = http.delete("/_sim/clients/900001")

    assert removed.status_code == 200
    assert http.get("/_sim/clients/900001").status_code == 404
    assert (
        http.get("/_sim/orders", query_string={"client_id": 900001}).get_json()[
            "orders"
        ]
        == []
    )
    assert api.create("oms", body).status_code == 401
    assert http.delete("/_sim/clients/900001").status_code == 404
    # The others are untouched.
    assert http.get(f"/_sim/clients/{DEMO_ID}").status_code == 200


def test_optional_client_fields_take_their_defaults(http):
    body = new_client(webhook_url=..., progression=..., step_delay=...)

    added = http.post("/_sim/clients", json=body).get_json()

    assert added["webhook_url"] == ""
    assert added["progression"] == "manual"
    # The simulator's own default, not zero.
    assert added["step_delay"] == Config().step_delay


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", ...),
        ("api_key", ""),
        ("api_key", "has space"),
        ("api_key", 12345),
        ("client_id", ...),
        ("client_id", "900001"),
        ("client_id", 0),
        ("client_id", True),
        ("client_id", 2**31),
        ("tenant_name", ...),
        ("tenant_name", ""),
        ("oms_customer_id", ...),
        ("oms_customer_id", "C" * 21),
        ("wms_customer_id", ...),
        ("warehouses", ...),
        ("warehouses", []),
        ("warehouses", "WH-TGR04"),
        ("warehouses", ["WH TGR"]),
        ("warehouses", ["WH-TGR04", "WH-TGR04"]),
        ("webhook_url", "ftp://example.com/hook"),
        ("webhook_url", "not a url"),
        ("webhook_url", 9000),
        ("progression", "sometimes"),
        ("step_delay", -1),
        ("step_delay", "2"),
    ],
)
def test_a_bad_client_field_is_400_naming_it(http, field, value):
    response = http.post("/_sim/clients", json=new_client(**{field: value}))

    assert response.status_code == 400
    body = response.get_json()
    assert body["field"].startswith(field)
    assert body["error"].startswith(field)
    assert http.get("/_sim/clients/900001").status_code == 404


@pytest.mark.parametrize("raw", [b"", b"[]", b"not json", b"[" * 5000 + b"]" * 5000])
def test_a_client_body_that_is_not_an_object_is_400(http, raw):
    response = http.post(
        "/_sim/clients", data=raw, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.get_json()["error"]


def test_a_taken_client_id_is_400(http):
    response = http.post("/_sim/clients", json=new_client(client_id=DEMO_ID))

    assert response.status_code == 400
    assert response.get_json()["field"] == "client_id"


def test_a_taken_api_key_is_400(http):
    http.post("/_sim/clients", json=NEW_CLIENT)

    response = http.post(
        "/_sim/clients", json=new_client(client_id=900002, api_key="key-toko-baru")
    )

    assert response.status_code == 400
    assert response.get_json()["field"] == "api_key"
    assert http.get("/_sim/clients/900002").status_code == 404


def test_adding_the_same_client_twice_is_400(http):
    assert http.post("/_sim/clients", json=NEW_CLIENT).status_code == 201

    assert http.post("/_sim/clients", json=NEW_CLIENT).status_code == 400


def test_an_unknown_client_is_404(http):
    assert http.get("/_sim/clients/42").status_code == 404


def test_patching_a_client_changes_only_what_was_sent(http):
    response = http.patch(f"/_sim/clients/{DEMO_ID}", json={"step_delay": 0.5})

    assert response.status_code == 200
    changed = response.get_json()
    assert changed["step_delay"] == 0.5
    assert changed["progression"] == "manual"
    assert changed["tenant_name"] == "Toko Contoh"


def test_patching_a_client_with_a_bad_url_is_400(http):
    response = http.patch(f"/_sim/clients/{DEMO_ID}", json={"webhook_url": "x"})

    assert response.status_code == 400
    assert response.get_json()["field"] == "webhook_url"


# -- stock --------------------------------------------------------------------------


def test_put_stock_sets_physical_stock(api, http):
    response = put_stock(http, qty=42)

    assert response.status_code == 200
    assert response.get_json()["qty_on_hand"] == 42
    assert api.qty("SKU-CAP-01", "WMS") == 42
    assert api.qty("SKU-CAP-01", "OMS") == 42


def test_put_stock_creates_a_new_sku_with_its_description(api, http):
    put_stock(http, sku="SKU-NEW-9", qty=4, sku_descr="Barang baru")

    (row,) = api.stock(sku="SKU-NEW-9").get_json()["data"]["stock"]

    assert row == {
        "sku": "SKU-NEW-9",
        "sku_descr": "Barang baru",
        "warehouse_id": "WH-TGR04",
        "qty": 4,
    }
    assert api.create("wms", b2b_body(lines=[("SKU-NEW-9", 1)])).status_code == 200


def test_put_stock_keeps_the_description_when_none_is_given(api, http):
    put_stock(http, qty=3)

    (row,) = api.stock(sku="SKU-CAP-01").get_json()["data"]["stock"]

    assert row["sku_descr"] == "Topi baseball hitam"


def test_put_stock_keeps_what_is_allocated(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-CAP-01", 6)]))
    advance_ok(http, "ERP-SO-0042", step="allocate")

    put_stock(http, qty=20)

    stock = sim_stock(http, "SKU-CAP-01")
    assert (stock["qty_on_hand"], stock["qty_allocated"]) == (20, 6)
    assert stock["qty_available"] == 14


def test_put_stock_below_what_is_allocated_is_refused(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-CAP-01", 6)]))
    advance_ok(http, "ERP-SO-0042", step="allocate")

    response = put_stock(http, qty=5)

    assert response.status_code == 400
    assert response.get_json()["field"] == "qty"
    assert "6" in response.get_json()["error"]
    assert sim_stock(http, "SKU-CAP-01")["qty_on_hand"] == 800
    advance_ok(http, "ERP-SO-0042", to="SHIPPED")
    assert api.qty("SKU-CAP-01", "WMS") == 794


@pytest.mark.parametrize(
    ("changes", "field", "status"),
    [
        ({"client_id": ...}, "client_id", 400),
        ({"client_id": "112233"}, "client_id", 400),
        ({"client_id": 42}, "client_id", 404),
        ({"warehouse_id": ...}, "warehouse_id", 400),
        ({"warehouse_id": "WH-SBY01"}, "warehouse_id", 400),
        ({"sku": ...}, "sku", 400),
        ({"sku": "S" * 51}, "sku", 400),
        ({"qty": ...}, "qty", 400),
        ({"qty": -1}, "qty", 400),
        ({"qty": "10"}, "qty", 400),
        ({"qty": 1.5}, "qty", 400),
    ],
)
def test_a_bad_stock_field_is_refused_naming_it(api, http, changes, field, status):
    response = put_stock(http, **changes)

    assert response.status_code == status
    assert response.get_json()["field"] == field
    assert api.qty("SKU-CAP-01", "WMS") == 800


def test_stock_listing_needs_a_client_id(http):
    response = http.get("/_sim/stock")

    assert response.status_code == 400
    assert response.get_json()["field"] == "client_id"


# -- the request journal ---------------------------------------------------------------


def test_journal_is_newest_first(api, http):
    api.list("WMS")
    api.list("OMS")
    api.call("GET", "/express")

    paths = [e["path"] for e in journal(http)]

    assert paths == [
        "/v3/fulfillment/express",
        "/v3/fulfillment/outbounds/OMS",
        "/v3/fulfillment/outbounds/WMS",
    ]


def test_journal_entry_records_the_request_and_its_answer(api, http):
    api.create_ok("wms", b2b_body())

    (entry,) = journal(http)

    assert entry["method"] == "POST"
    assert entry["path"] == "/v3/fulfillment/outbound/wms"
    assert entry["status"] == 200
    assert entry["client_id"] == DEMO_ID
    assert entry["code"] is None
    assert entry["reason"] == ""
    assert entry["request_body"]["doc_no"] == "ERP-SO-0042"
    assert entry["response_body"]["data"]["group_key"].startswith("hwoutboundwms.")
    assert entry["duration_ms"] >= 0


def test_journal_gives_the_reason_for_an_810(api, http):
    body = b2c_body()
    body["details"][0]["qty_ordered"] = -1

    api.create("oms", body)

    (entry,) = journal(http)
    assert entry["status"] == 400
    assert entry["code"] == 810
    assert entry["reason"].startswith("details[0].qty_ordered:")
    assert "-1" in entry["reason"]


def test_journal_gives_the_reason_for_business_errors_and_401(api, http):
    api.create("oms", b2c_body(warehouse_id="WH-SBY01"))
    ShipperClient(http, "wrong").list("WMS")

    unauthorized, unknown_warehouse = journal(http)

    assert (unknown_warehouse["code"], unauthorized["code"]) == (3014, 802)
    assert "WH-SBY01" in unknown_warehouse["reason"]
    assert unauthorized["reason"].startswith("x-api-key")
    assert unauthorized["client_id"] is None


def test_journal_keeps_a_body_that_is_not_json(api, http):
    api.call("POST", "/outbound/oms", data=b"not json")

    (entry,) = journal(http)

    assert entry["request_body"] == "not json"
    assert entry["reason"].startswith("body:")


def test_journal_keeps_a_body_with_a_lone_surrogate_as_its_text(api, http):
    raw = b'{"doc_no": "A\\ud800"}'
    assert api.call("POST", "/outbound/wms", data=raw).status_code == 400

    response = http.get("/_sim/requests", query_string={"limit": 5})

    assert response.status_code == 200
    (entry,) = response.get_json()["requests"]
    assert entry["request_body"] == raw.decode()


def refuse(constant: str):
    raise AssertionError(f"the answer holds {constant}, which is not JSON")


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"NaN", b"-Infinity"])
def test_journal_keeps_a_body_with_a_number_no_float_holds_as_its_text(
    api, http, number
):
    raw = b'{"doc_no": "A", "extra": ' + number + b"}"
    api.call("POST", "/outbound/wms", data=raw)

    response = http.get("/_sim/requests", query_string={"limit": 5})

    assert response.status_code == 200
    (entry,) = json.loads(response.data, parse_constant=refuse)["requests"]
    assert entry["request_body"] == raw.decode()


def test_journal_filters_by_status_method_and_path(api, http):
    api.create("oms", b2c_body(so_number="bad!"))
    api.create_ok("oms", b2c_body())
    api.list("OMS")

    assert [e["status"] for e in journal(http, status=400)] == [400]
    assert [e["method"] for e in journal(http, method="get")] == ["GET"]
    assert len(journal(http, path="/outbound/oms")) == 2


def test_journal_leaves_out_the_control_api(http):
    http.get("/_sim/health")
    http.get("/_sim/clients")

    assert journal(http) == []


def test_journal_is_bounded():
    app = create_app(Config(start_workers=False, journal_size=5))
    try:
        http = app.test_client()
        api = ShipperClient(http)
        for page in range(1, 13):
            api.list("WMS", page=page)

        entries = journal(http, limit=1000)
    finally:
        app.extensions["shipper_sim"].stop()
        app.extensions["shipper_sim"].store.close()

    assert [e["path"] for e in entries] == [
        f"/v3/fulfillment/outbounds/WMS?page={page}" for page in range(12, 7, -1)
    ]


def test_journal_limit_is_honoured(api, http):
    for _ in range(4):
        api.list("WMS")

    assert len(journal(http, limit=2)) == 2


# -- change marks ------------------------------------------------------------------


def marks(http, client_id: int | None = None) -> dict[str, str]:
    query = {"client_id": client_id} if client_id is not None else {}
    response = http.get("/_sim/changes", query_string=query)
    assert response.status_code == 200
    body = response.get_json()
    assert body["client_id"] == client_id
    assert set(body["marks"]) == {"orders", "webhooks", "stock", "requests", "clients"}
    return body["marks"]


def moved(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_a_create_moves_orders_webhooks_stock_and_requests(api, http):
    before = marks(http, DEMO_ID)

    api.create_ok("oms", b2c_body())

    # Stock moves too: what the OMS can still sell dropped.
    assert moved(before, marks(http, DEMO_ID)) == {
        "orders",
        "webhooks",
        "stock",
        "requests",
    }


def test_reading_moves_only_the_requests_mark(api, http):
    api.create_ok("oms", b2c_body())
    before = marks(http, DEMO_ID)

    api.call("GET", "/outbounds/OMS")
    http.get("/_sim/webhooks")

    assert moved(before, marks(http, DEMO_ID)) == {"requests"}


def test_a_step_a_stock_change_and_a_client_change_each_move_their_mark(api, http):
    api.create_ok("wms", b2b_body())
    before = marks(http, DEMO_ID)

    advance_ok(http, "ERP-SO-0042", step="allocate")
    after_step = marks(http, DEMO_ID)
    assert moved(before, after_step) == {"orders", "webhooks", "stock"}

    assert put_stock(http, qty=77).status_code == 200
    after_stock = marks(http, DEMO_ID)
    assert moved(after_step, after_stock) == {"stock"}

    http.patch(f"/_sim/clients/{DEMO_ID}", json={"tenant_name": "Toko Lain"})
    assert moved(after_stock, marks(http, DEMO_ID)) == {"clients"}


def test_one_clients_changes_leave_anothers_marks_but_move_the_totals(api, http):
    second_before = marks(http, SECOND_ID)
    total_before = marks(http)

    api.create_ok("oms", b2c_body())

    assert moved(second_before, marks(http, SECOND_ID)) == {"requests"}
    assert {"orders", "webhooks", "stock"} <= moved(total_before, marks(http))


@pytest.mark.parametrize("whole", [True, False], ids=["full reset", "client reset"])
def test_a_reset_moves_every_mark_of_what_it_dropped(api, http, whole):
    api.create_ok("oms", b2c_body())
    before = marks(http, DEMO_ID)

    query = {} if whole else {"client_id": DEMO_ID}
    assert http.post("/_sim/reset", query_string=query).status_code == 200

    assert {"orders", "webhooks", "stock"} <= moved(before, marks(http, DEMO_ID))


def test_removing_a_client_moves_the_totals(http):
    assert http.post("/_sim/clients", json=new_client()).status_code == 201
    assert put_stock(http, client_id=NEW_CLIENT["client_id"]).status_code == 200
    ShipperClient(http, NEW_CLIENT["api_key"]).create_ok(
        "oms",
        b2c_body(customer_id="CS900", lines=[("SKU-CAP-01", 1)]),
    )
    before = marks(http)

    assert http.delete(f"/_sim/clients/{NEW_CLIENT['client_id']}").status_code == 200

    assert {"orders", "webhooks", "stock", "clients"} <= moved(before, marks(http))


@pytest.mark.parametrize("whole", [True, False], ids=["full reset", "client reset"])
def test_the_requests_mark_never_comes_back_after_a_reset(api, http, whole):
    query = {} if whole else {"client_id": DEMO_ID}
    seen = []
    for _ in range(3):
        assert http.post("/_sim/reset", query_string=query).status_code == 200
        for _ in range(3):
            api.call("GET", "/outbounds/OMS")
        seen.append(marks(http, DEMO_ID)["requests"])

    assert len(set(seen)) == 3, seen


def test_the_clients_mark_moves_for_a_new_key_codes_or_warehouses(http):
    assert http.post("/_sim/clients", json=new_client()).status_code == 201
    before = marks(http, DEMO_ID)["clients"]

    assert http.delete(f"/_sim/clients/{NEW_CLIENT['client_id']}").status_code == 200
    again = new_client(api_key="key-toko-lain", warehouses=["WH-TGR04"])
    assert http.post("/_sim/clients", json=again).status_code == 201

    assert marks(http, DEMO_ID)["clients"] != before
    # Nothing of a client's setup is in the mark itself.
    assert marks(http)["clients"].isdigit()


def test_orders_filter_by_status_in_any_case_and_refuse_one_that_is_not(http, api):
    api.create_ok("oms", b2c_body(so_number="SO-REG-1"))
    api.create_ok("wms", b2b_body(doc_no="SO-CRE-1"))

    def numbers(status: str) -> list[str]:
        found = http.get("/_sim/orders", query_string={"status": status})
        assert found.status_code == 200, found.get_json()
        return [o["order_no"] for o in found.get_json()["orders"]]

    assert numbers("REGISTERED") == numbers("registered") == ["SO-REG-1"]
    assert numbers("Created") == ["SO-CRE-1"]
    refused = http.get("/_sim/orders", query_string={"status": "SHIPPING"})
    assert refused.status_code == 400
    assert "status must be one of REGISTERED" in refused.get_json()["error"]
