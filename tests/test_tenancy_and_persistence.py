"""Clients see only their own data; state survives a restart; reset."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    DEMO_ID,
    DEMO_KEY,
    SECOND_ID,
    SECOND_KEY,
    Receiver,
    ShipperClient,
    advance_ok,
    b2b_body,
    b2c_body,
    close_app,
    make_live_app,
    point_webhooks,
    set_stock,
    sim_stock,
    wait_until,
    webhooks,
)
from flask import Flask

from simulator.app import create_app
from simulator.config import Config

B2C_NO = "SHOPEE-2207-000123"
B2B_NO = "ERP-SO-0042"


def second_b2c(**fields) -> dict:
    return b2c_body(customer_id="CS792", lines=[("SKU-KOPI-ROBUSTA-250", 2)], **fields)


def second_b2b(**fields) -> dict:
    return b2b_body(customer_id="MDS", lines=[("SKU-TSHIRT-M", 3)], **fields)


# -- tenancy ----------------------------------------------------------------------


def test_clients_list_only_their_own_orders(api, second_api):
    api.create_ok("wms", b2b_body(doc_no="DEMO-ONLY"))
    api.create_ok("oms", b2c_body(so_number="DEMO-B2C"))
    second_api.create_ok("wms", second_b2b(doc_no="SECOND-ONLY"))

    assert [r["order_no"] for r in api.listed("WMS")] == ["DEMO-ONLY"]
    assert [r["order_no"] for r in api.listed("OMS")] == ["DEMO-B2C"]
    assert [r["order_no"] for r in second_api.listed("WMS")] == ["SECOND-ONLY"]
    assert second_api.listed("OMS") == []


def test_a_client_cannot_read_another_clients_detail(api, second_api, http):
    api.create_ok("wms", b2b_body())
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2C_NO, step="release")

    for kind, order_no in (("wms", B2B_NO), ("oms", B2C_NO), ("wms", B2C_NO)):
        response = second_api.detail(kind, order_no)
        assert response.status_code == 404
        assert response.get_json()["metadata"]["errors"][0]["code"] == 10004


def test_same_number_in_a_shared_warehouse_is_two_orders(api, second_api, http):
    api.create_ok("wms", b2b_body())
    second_api.create_ok("wms", second_b2b())
    advance_ok(http, B2B_NO, to="PICKED", client_id=DEMO_ID)

    mine = api.outbound("wms", B2B_NO)
    theirs = second_api.outbound("wms", B2B_NO)

    assert mine["so_status"] == "PICKED"
    assert theirs["so_status"] == "CREATED"
    assert [d["qty_ordered"] for d in theirs["details"]] == [3]


def test_clients_see_their_own_stock_in_a_shared_warehouse(api, second_api):
    assert api.qty("SKU-TSHIRT-M", "WMS") == 1200
    assert second_api.qty("SKU-TSHIRT-M", "WMS") == 289

    second_api.create_ok("wms", second_b2b())

    assert api.qty("SKU-TSHIRT-M", "OMS") == 1200
    assert second_api.qty("SKU-TSHIRT-M", "OMS") == 286


def test_shipping_one_clients_order_leaves_the_others_stock(api, second_api, http):
    second_api.create_ok("wms", second_b2b())

    advance_ok(http, B2B_NO, to="SHIPPED")

    assert second_api.qty("SKU-TSHIRT-M", "WMS") == 286
    assert api.qty("SKU-TSHIRT-M", "WMS") == 1200
    assert sim_stock(http, "SKU-TSHIRT-M")["qty_on_hand"] == 1200


def test_a_client_cannot_read_another_clients_warehouse_stock(api, second_api):
    assert api.stock("WH-SBY01", "WMS").status_code == 400
    assert second_api.stock("WH-BAL", "OMS").status_code == 400


def test_stock_per_warehouse_covers_only_the_clients_warehouses(api, second_api):
    mine = api.call("GET", "/inventory/stock/warehouse?skus=SKU-TSHIRT-M")
    theirs = second_api.call("GET", "/inventory/stock/warehouse?skus=SKU-TSHIRT-M")

    (my_row,) = mine.get_json()["data"]
    (their_row,) = theirs.get_json()["data"]
    assert {d["warehouse_id"] for d in my_row["details"]} == {"WH-BAL", "WH-TGR04"}
    assert {d["warehouse_id"] for d in their_row["details"]} == {"WH-SBY01", "WH-TGR04"}
    assert their_row["stock"] == 289 + 30


def test_a_client_cannot_use_another_clients_customer_code(api):
    response = api.create("oms", b2c_body(customer_id="CS792"))

    assert response.status_code == 400
    assert response.get_json()["metadata"]["errors"][0]["code"] == 810


def test_deliveries_go_to_each_clients_own_url_with_its_own_key():
    first, second = Receiver(), Receiver()
    app = make_live_app()
    try:
        http = app.test_client()
        point_webhooks(http, DEMO_ID, first.url)
        point_webhooks(http, SECOND_ID, second.url)

        ShipperClient(http, DEMO_KEY).create_ok("oms", b2c_body(so_number="MINE"))
        ShipperClient(http, SECOND_KEY).create_ok("wms", second_b2b(doc_no="THEIRS"))

        mine = first.wait_for(1)
        theirs = second.wait_for(2)
        wait_until(lambda: all(w["state"] == "delivered" for w in webhooks(http)))
    finally:
        close_app(app)
        first.close()
        second.close()

    assert len(first.requests) == 1
    assert mine[0].headers["x-api-key"] == DEMO_KEY
    assert mine[0].json()["client_id"] == DEMO_ID
    assert all(r.headers["x-api-key"] == SECOND_KEY for r in theirs)
    assert theirs[1].json()["shop_code"] == "CS792"
    assert theirs[1].json()["client_id"] == SECOND_ID


def test_delivery_log_filters_by_client(api, second_api, http):
    api.create_ok("oms", b2c_body())
    second_api.create_ok("oms", second_b2c())

    assert {w["client_id"] for w in webhooks(http, client_id=DEMO_ID)} == {DEMO_ID}
    assert {w["client_id"] for w in webhooks(http, client_id=SECOND_ID)} == {SECOND_ID}


def test_journal_filters_by_client(api, second_api, http):
    api.list("WMS")
    second_api.list("OMS")

    entries = http.get(f"/_sim/requests?client_id={SECOND_ID}").get_json()["requests"]

    assert [e["path"] for e in entries] == ["/v3/fulfillment/outbounds/OMS"]


# -- persistence -----------------------------------------------------------------


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "sim.db"


@pytest.fixture
def reopen(db_file: Path) -> Iterator:
    """Open apps on one database file; closes whatever is still open."""
    opened: list[Flask] = []

    def open_app(**config) -> Flask:
        settings = {"db_path": str(db_file), "start_workers": False, **config}
        app = create_app(Config(**settings))
        opened.append(app)
        return app

    yield open_app, opened
    for app in opened:
        if not getattr(app, "_closed", False):
            close_app(app)


def shut(app: Flask) -> None:
    close_app(app)
    app._closed = True


def test_orders_stock_and_deliveries_survive_a_restart(reopen):
    open_app, _ = reopen
    first = open_app()
    http = first.test_client()
    api = ShipperClient(http)
    api.create_ok("wms", b2b_body())
    api.create_ok("oms", b2c_body())
    advance_ok(http, B2B_NO, to="PICKED")
    advance_ok(http, B2C_NO, to="SHIPPED")
    before = {
        "wms": api.outbound("wms", B2B_NO),
        "oms": api.outbound("oms", B2C_NO),
        "list": api.listed("WMS"),
        "stock": sim_stock(http, "SKU-TSHIRT-M"),
        "webhooks": webhooks(http),
        "journal": http.get("/_sim/requests").get_json()["requests"],
    }
    shut(first)

    second = open_app()
    http = second.test_client()
    api = ShipperClient(http)

    assert api.outbound("wms", B2B_NO) == before["wms"]
    assert api.outbound("oms", B2C_NO) == before["oms"]
    assert api.listed("WMS") == before["list"]
    assert sim_stock(http, "SKU-TSHIRT-M") == before["stock"]
    assert before["stock"]["qty_allocated"] == 40
    assert webhooks(http) == before["webhooks"]
    assert len(before["webhooks"]) == 12
    journal = http.get("/_sim/requests").get_json()["requests"]
    assert journal[-len(before["journal"]) :] == before["journal"]


def test_a_restarted_simulator_goes_on_where_it_stopped(reopen):
    open_app, _ = reopen
    first = open_app()
    http = first.test_client()
    ShipperClient(http).create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")
    shut(first)

    second = open_app()
    http = second.test_client()
    api = ShipperClient(http)
    shipped = advance_ok(http, B2B_NO, to="SHIPPED")

    assert shipped["so_status"] == "SHIPPED"
    assert sim_stock(http, "SKU-TSHIRT-M")["qty_on_hand"] == 1160
    assert (
        api.create("wms", b2b_body()).get_json()["metadata"]["errors"][0]["code"]
        == 3011
    )


def test_numbers_made_up_after_a_restart_are_new(reopen):
    open_app, _ = reopen
    first = open_app()
    http = first.test_client()
    api = ShipperClient(http)
    api.create_ok("oms", b2c_body(so_number="BEFORE"))
    before = advance_ok(http, "BEFORE", to="SHIPPED")
    before_oms = api.outbound("oms", "BEFORE")
    shut(first)

    second = open_app()
    http = second.test_client()
    api = ShipperClient(http)
    api.create_ok("oms", b2c_body(so_number="AFTER"))
    after = advance_ok(http, "AFTER", to="SHIPPED")
    after_oms = api.outbound("oms", "AFTER")

    assert after["delivery_no"] != before["delivery_no"]
    assert after["so_reference_1"] != before["so_reference_1"]
    assert after["details"][0]["pack_id"] != before["details"][0]["pack_id"]
    assert after_oms["sub_orders"][0]["doc_no"] != before_oms["sub_orders"][0]["doc_no"]


def test_clients_and_stock_set_through_control_survive_a_restart(reopen):
    open_app, _ = reopen
    first = open_app()
    http = first.test_client()
    http.post(
        "/_sim/clients",
        json={
            "api_key": "key-new",
            "client_id": 9001,
            "tenant_name": "Toko Baru",
            "oms_customer_id": "CS900",
            "wms_customer_id": "NEW",
            "warehouses": ["WH-TGR04"],
        },
    )
    set_stock(http, "SKU-LIMITED-01", 9)
    shut(first)

    second = open_app()
    http = second.test_client()

    assert http.get("/_sim/clients/9001").status_code == 200
    assert ShipperClient(http, "key-new").list("WMS").status_code == 200
    assert ShipperClient(http).qty("SKU-LIMITED-01", "WMS") == 9


def test_deliveries_pending_at_shutdown_are_sent_after_a_restart(reopen, receiver):
    open_app, _ = reopen
    first = open_app()
    http = first.test_client()
    point_webhooks(http, DEMO_ID, receiver.url)
    ShipperClient(http).create_ok("wms", b2b_body())
    assert {w["state"] for w in webhooks(http)} == {"pending"}
    shut(first)

    open_app(start_workers=True, retry_delays=(0.05,), webhook_timeout=0.5)

    received = receiver.wait_for(2)
    assert "items" in received[0].json()
    assert received[1].json()["status_code"] == "00"


# -- reset ------------------------------------------------------------------------


def test_reset_drops_orders_deliveries_and_journal(api, second_api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="SHIPPED")
    second_api.create_ok("oms", second_b2c())

    response = http.post("/_sim/reset")

    assert response.status_code == 200
    assert api.listed("WMS") == []
    assert second_api.listed("OMS") == []
    assert webhooks(http) == []
    journal = http.get("/_sim/requests").get_json()["requests"]
    assert [e["path"] for e in journal] == [
        "/v3/fulfillment/outbounds/OMS",
        "/v3/fulfillment/outbounds/WMS",
    ]


def test_reset_reloads_fixture_stock_and_clients(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="SHIPPED")
    set_stock(http, "SKU-LIMITED-01", 50)
    http.post(
        "/_sim/clients",
        json={
            "api_key": "key-new",
            "client_id": 9001,
            "tenant_name": "Toko Baru",
            "oms_customer_id": "CS900",
            "wms_customer_id": "NEW",
            "warehouses": ["WH-TGR04"],
        },
    )

    http.post("/_sim/reset")

    assert api.qty("SKU-TSHIRT-M", "WMS") == 1200
    assert api.qty("SKU-LIMITED-01", "WMS") == 3
    assert sim_stock(http, "SKU-TSHIRT-M")["qty_allocated"] == 0
    assert http.get("/_sim/clients/9001").status_code == 404
    assert api.create("wms", b2b_body()).status_code == 200


def test_reset_of_one_client_leaves_the_others_alone(api, second_api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="SHIPPED", client_id=DEMO_ID)
    second_api.create_ok("wms", second_b2b())
    advance_ok(http, B2B_NO, step="allocate", client_id=SECOND_ID)

    response = http.post(f"/_sim/reset?client_id={DEMO_ID}")

    assert response.status_code == 200
    journal = http.get("/_sim/requests").get_json()["requests"]
    assert journal and {e["client_id"] for e in journal} == {SECOND_ID}
    assert api.listed("WMS") == []
    assert api.qty("SKU-TSHIRT-M", "WMS") == 1200
    assert {w["client_id"] for w in webhooks(http)} == {SECOND_ID}
    assert second_api.outbound("wms", B2B_NO)["so_status"] == "ALLOCATED"
    assert sim_stock(http, "SKU-TSHIRT-M", SECOND_ID)["qty_allocated"] == 3


def test_reset_of_an_unknown_client_is_404(http):
    assert http.post("/_sim/reset?client_id=1").status_code == 404


def test_reset_with_a_bad_client_id_is_400(http):
    response = http.post("/_sim/reset?client_id=abc")

    assert response.status_code == 400
    assert response.get_json()["field"] == "client_id"


STORE_GROWTH_PROBE = """
import json, os
from simulator.store import Store

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

store, other = Store(), Store()
for s in (store, other):
    s.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
before = rss_mb()
for _ in range(60):
    with store.transaction():
        for _ in range(100):
            store.execute("INSERT INTO blobs (data) VALUES (?)", (os.urandom(10_000),))
print(json.dumps({
    "growth_mb": rss_mb() - before,
    "rows": store.value("SELECT COUNT(*) FROM blobs"),
    "bytes": store.value("SELECT SUM(length(data)) FROM blobs"),
    "other_rows": other.value("SELECT COUNT(*) FROM blobs"),
}))
"""


def run_probe(source: str) -> dict:
    """Run ``source`` in a fresh interpreter; answers the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_without_a_file_the_state_is_private_and_stays_off_the_heap():
    found = run_probe(STORE_GROWTH_PROBE)
    assert found["rows"] == 6000 and found["bytes"] == 60_000_000
    assert found["other_rows"] == 0, "two stores without a file shared their data"
    # 60 MB stored; SQLite keeps its page cache (about 2 MB) in memory and
    # the rest in its unlinked temporary file.
    assert found["growth_mb"] < 20, found


FULL_DISK_PROBE = """
import json, resource, sys
sys.path.insert(0, "tests")
from conftest import DEMO_KEY, b2b_body
from simulator.app import create_app
from simulator.config import Config

# Files this process writes may not grow past 1 MB: the temp space is full.
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
app = create_app(Config(start_workers=False))
http = app.test_client()
assert http.get("/_sim/health").status_code == 200
for n in range(20_000):
    body = b2b_body(doc_no=f"FULL-{n:05d}", buyer_remark="x" * 2000)
    answer = http.post(
        "/v3/fulfillment/outbound/wms", json=body, headers={"x-api-key": DEMO_KEY}
    )
    if answer.status_code != 200:
        break
health = http.get("/_sim/health")
read = http.get(
    "/v3/fulfillment/warehouse/WH-TGR04/outbound/wms/FULL-00000",
    headers={"x-api-key": DEMO_KEY},
)
print(json.dumps({
    "read": read.status_code,
    "created": n,
    "status": answer.status_code,
    "code": answer.get_json()["metadata"]["errors"][0]["code"],
    "reason": answer.headers.get("x-sim-error", ""),
    "health": health.status_code,
    "health_body": health.get_json(),
}))
"""


def test_a_full_temp_folder_fails_clearly_and_health_says_so():
    found = run_probe(FULL_DISK_PROBE)
    assert found["created"] > 0
    assert found["status"] == 500 and found["code"] == 803
    assert "OperationalError" in found["reason"], found
    assert "is there space left in the temp folder" in found["reason"]
    # SQLite cannot read its spilled pages back either: every answer says so.
    assert found["read"] == 500
    assert found["health"] == 503
    assert found["health_body"]["status"] == "failing"
    assert "is there space left in the temp folder" in found["health_body"]["error"]
