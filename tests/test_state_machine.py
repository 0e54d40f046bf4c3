"""The warehouse steps, driven through POST /_sim/orders/{wh}/{no}/advance."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from conftest import (
    DEMO_ID,
    SECOND_ID,
    ShipperClient,
    advance,
    advance_ok,
    b2b_body,
    b2c_body,
    point_webhooks,
    set_stock,
    sim_stock,
    wait_until,
    webhooks,
)

B2C_NO = "SHOPEE-2207-000123"
B2B_NO = "ERP-SO-0042"
QUANTITIES = ("qty_released", "qty_allocated", "qty_picked", "qty_shipped")


def refused(http, order_no: str, **body) -> str:
    """An advance that must be refused with a 400; answers its reason."""
    response = advance(http, order_no, **body)

    assert response.status_code == 400, response.get_json()
    reason = response.get_json()["error"]
    assert reason
    return reason


def line(outbound: dict, sku: str) -> dict:
    (found,) = [d for d in outbound["details"] if d["sku"] == sku]
    return found


def status_codes(http, order_no: str) -> list[str]:
    return [
        w["payload"]["status_code"]
        for w in webhooks(http, order_no=order_no, event="status")
    ]


def wms_code(http, order_no: str) -> str:
    (found,) = [
        o
        for o in http.get("/_sim/orders").get_json()["orders"]
        if o["order_no"] == order_no
    ]
    return found["wms_code"]


# -- to: every step up to a status -----------------------------------------------


def test_advance_to_a_status_runs_every_step_in_full(api, http):
    api.create_ok("wms", b2b_body())

    outbound = advance_ok(http, B2B_NO, to="SHIPPED")

    assert outbound["so_status"] == "SHIPPED"
    assert [[d[q] for q in QUANTITIES] for d in outbound["details"]] == [
        [40, 40, 40, 40],
        [25, 25, 25, 25],
    ]
    assert status_codes(http, B2B_NO) == ["00", "40", "60", "63", "66", "80"]


def test_advance_answers_the_order_as_the_detail_shows_it(api, http):
    api.create_ok("wms", b2b_body())

    outbound = advance_ok(http, B2B_NO, to="PICKED")

    assert outbound == api.outbound("wms", B2B_NO)


def test_advance_to_a_b2c_status_releases_first(api, http):
    api.create_ok("oms", b2c_body())

    outbound = advance_ok(http, B2C_NO, to="ALLOCATED")

    assert outbound["so_status"] == "ALLOCATED"
    assert status_codes(http, B2C_NO) == ["00", "40"]


def test_advance_to_a_wms_code_stops_at_that_code(api, http):
    api.create_ok("wms", b2b_body())

    advance_ok(http, B2B_NO, to="66")

    assert wms_code(http, B2B_NO) == "66"
    assert status_codes(http, B2B_NO)[-1] == "66"


def test_advance_to_the_current_status_runs_nothing(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="PICKED")
    sent = len(webhooks(http))

    advance_ok(http, B2B_NO, to="PICKED")

    assert len(webhooks(http)) == sent


def test_advance_to_a_status_already_passed_is_refused(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="PACKED")

    assert "past" in refused(http, B2B_NO, to="ALLOCATED")


@pytest.mark.parametrize("target", ["CANCELLED", "REGISTERED", "LOST", "12"])
def test_advance_to_a_status_no_step_reaches_is_refused(api, http, target):
    api.create_ok("wms", b2b_body())

    refused(http, B2B_NO, to=target)

    assert api.outbound("wms", B2B_NO)["so_status"] == "CREATED"


def test_advance_of_an_unknown_order_is_404(http):
    response = advance(http, "NOPE", to="SHIPPED")

    assert response.status_code == 404
    assert "NOPE" in response.get_json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"to": "SHIPPED", "step": "pick"},
        {"step": "teleport"},
        {"to": "PICKED", "lines": {"SKU-CAP-01": 1}},
        {"step": "pick", "lines": []},
        {"step": "pick", "lines": {"SKU-CAP-01": -1}},
    ],
)
def test_advance_body_of_the_wrong_shape_is_400(api, http, body):
    api.create_ok("wms", b2b_body())

    response = http.post(f"/_sim/orders/WH-TGR04/{B2B_NO}/advance", json=body)

    assert response.status_code == 400
    assert response.get_json()["error"]
    assert api.outbound("wms", B2B_NO)["so_status"] == "CREATED"


def test_advance_of_a_number_two_clients_share_needs_client_id(api, second_api, http):
    api.create_ok("wms", b2b_body())
    second_api.create_ok(
        "wms", b2b_body(customer_id="MDS", lines=[("SKU-TSHIRT-M", 1)])
    )

    ambiguous = advance(http, B2B_NO, step="allocate")
    chosen = advance(http, B2B_NO, step="allocate", client_id=SECOND_ID)

    assert ambiguous.status_code == 409
    assert "client_id" in ambiguous.get_json()["error"]
    assert chosen.status_code == 200
    assert second_api.outbound("wms", B2B_NO)["so_status"] == "ALLOCATED"
    assert api.outbound("wms", B2B_NO)["so_status"] == "CREATED"


# -- step: one at a time -------------------------------------------------------------


def test_steps_run_one_at_a_time_in_order(api, http):
    api.create_ok("oms", b2c_body())
    reached = []

    for step in ("release", "allocate", "pick", "pack", "load", "ship", "close"):
        advance_ok(http, B2C_NO, step=step)
        reached.append(wms_code(http, B2C_NO))

    assert reached == ["00", "40", "60", "63", "66", "80", "99"]
    assert status_codes(http, B2C_NO) == reached


@pytest.mark.parametrize(
    ("done", "step", "words"),
    [
        (None, "pick", "cannot run yet"),
        (None, "ship", "cannot run yet"),
        (None, "close", "cannot run yet"),
        ("allocate", "pack", "the next step is pick"),
        ("PICKED", "allocate", "is over"),
        ("PACKED", "pick", "is over"),
        ("SHIPPED", "ship", "runs once"),
        (None, "release", "runs once"),
    ],
)
def test_step_out_of_order_is_refused_with_a_reason(api, http, done, step, words):
    api.create_ok("wms", b2b_body())
    if done == "allocate":
        advance_ok(http, B2B_NO, step="allocate")
    elif done:
        advance_ok(http, B2B_NO, to=done)
    before = api.outbound("wms", B2B_NO)
    sent = len(webhooks(http))

    reason = refused(http, B2B_NO, step=step)

    assert words in reason
    assert api.outbound("wms", B2B_NO) == before
    assert len(webhooks(http)) == sent


def test_b2c_order_must_be_released_before_allocation(api, http):
    api.create_ok("oms", b2c_body())

    assert "next step is release" in refused(http, B2C_NO, step="allocate")


def test_release_moves_a_b2c_order_into_the_wms(api, http):
    api.create_ok("oms", b2c_body())

    outbound = advance_ok(http, B2C_NO, step="release")

    assert outbound["so_status"] == "CREATED"
    assert outbound["release_status"] is True
    assert [d["qty_released"] for d in outbound["details"]] == [2, 1]
    sub_order = api.outbound("oms", B2C_NO)["sub_orders"][0]
    assert len(sub_order["doc_no"]) == 14 and sub_order["doc_no"].isdigit()
    assert status_codes(http, B2C_NO) == ["00"]
    assert "runs once" in refused(http, B2C_NO, step="release")


def test_close_follows_shipment_and_ends_the_order(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="SHIPPED")

    closed = advance_ok(http, B2B_NO, step="close")

    assert closed["so_status"] == "CLOSED"
    assert status_codes(http, B2B_NO)[-2:] == ["80", "99"]
    assert "CLOSED" in refused(http, B2B_NO, step="close")
    assert "CLOSED" in refused(http, B2B_NO, to="CLOSED")


def test_close_takes_no_line_quantities(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="SHIPPED")

    assert "no line quantities" in refused(
        http, B2B_NO, step="close", lines={"SKU-CAP-01": 1}
    )


# -- partial and short -------------------------------------------------------------


def test_short_stock_allocates_what_there_is_and_leaves_30(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5), ("SKU-CAP-01", 2)]))

    outbound = advance_ok(http, B2B_NO, step="allocate")

    assert line(outbound, "SKU-LIMITED-01")["qty_allocated"] == 3
    assert line(outbound, "SKU-LIMITED-01")["line_status"] == "30"
    assert line(outbound, "SKU-CAP-01")["qty_allocated"] == 2
    assert line(outbound, "SKU-CAP-01")["line_status"] == "40"
    assert outbound["so_status"] == "ALLOCATED"
    assert wms_code(http, B2B_NO) == "30"
    assert status_codes(http, B2B_NO) == ["00", "30"]


def test_allocation_tops_up_after_stock_arrives(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))
    advance_ok(http, B2B_NO, step="allocate")

    set_stock(http, "SKU-LIMITED-01", 10)
    outbound = advance_ok(http, B2B_NO, step="allocate")

    assert line(outbound, "SKU-LIMITED-01")["qty_allocated"] == 5
    assert wms_code(http, B2B_NO) == "40"
    assert status_codes(http, B2B_NO) == ["00", "30", "40"]
    assert sim_stock(http, "SKU-LIMITED-01")["qty_allocated"] == 5


def test_allocation_top_up_without_new_stock_sends_nothing(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5), ("SKU-CAP-01", 1)]))
    advance_ok(http, B2B_NO, step="allocate")

    response = advance(http, B2B_NO, step="allocate")

    assert response.status_code == 200
    assert status_codes(http, B2B_NO) == ["00", "30"]
    assert sim_stock(http, "SKU-LIMITED-01")["qty_allocated"] == 3


def test_allocation_with_no_stock_at_all_is_refused_and_order_stays_created(api, http):
    set_stock(http, "SKU-LIMITED-01", 0)
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 2)]))

    assert "nothing in stock" in refused(http, B2B_NO, step="allocate")

    assert api.outbound("wms", B2B_NO)["so_status"] == "CREATED"
    assert api.cancel("wms", B2B_NO).status_code == 200


def test_allocation_of_a_named_line_can_be_short_and_topped_up(api, http):
    api.create_ok("wms", b2b_body())

    first = advance_ok(http, B2B_NO, step="allocate", lines={"SKU-TSHIRT-M": 10})
    second = advance_ok(http, B2B_NO, step="allocate")

    assert line(first, "SKU-TSHIRT-M")["qty_allocated"] == 10
    assert line(first, "SKU-CAP-01")["qty_allocated"] == 25
    assert line(second, "SKU-TSHIRT-M")["qty_allocated"] == 40
    assert status_codes(http, B2B_NO) == ["00", "30", "40"]


def test_allocation_of_a_named_line_above_free_stock_is_refused(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))

    reason = refused(http, B2B_NO, step="allocate", lines={"SKU-LIMITED-01": 4})

    assert "only 3 free" in reason
    assert sim_stock(http, "SKU-LIMITED-01")["qty_allocated"] == 0


def test_short_pick_leaves_50_and_can_be_topped_up_before_packing(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")

    short = advance_ok(http, B2B_NO, step="pick", lines={"SKU-TSHIRT-M": 30})
    assert line(short, "SKU-TSHIRT-M")["qty_picked"] == 30
    assert line(short, "SKU-CAP-01")["qty_picked"] == 25
    assert wms_code(http, B2B_NO) == "50"

    topped = advance_ok(http, B2B_NO, step="pick")
    assert line(topped, "SKU-TSHIRT-M")["qty_picked"] == 40
    assert status_codes(http, B2B_NO) == ["00", "40", "50", "60"]


def test_a_shortfall_is_for_good_once_the_next_step_runs(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")
    advance_ok(http, B2B_NO, step="pick", lines={"SKU-TSHIRT-M": 30})
    advance_ok(http, B2B_NO, step="pack")

    assert "is over" in refused(http, B2B_NO, step="pick")
    shipped = advance_ok(http, B2B_NO, to="SHIPPED")

    assert line(shipped, "SKU-TSHIRT-M")["qty_shipped"] == 30
    assert line(shipped, "SKU-CAP-01")["qty_shipped"] == 25
    assert status_codes(http, B2B_NO) == ["00", "40", "50", "62", "65", "70"]


def test_step_quantity_above_what_the_step_before_reached_is_refused(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5)]))
    advance_ok(http, B2B_NO, step="allocate")

    reason = refused(http, B2B_NO, step="pick", lines={"SKU-LIMITED-01": 4})

    assert "at most 3" in reason
    assert line(api.outbound("wms", B2B_NO), "SKU-LIMITED-01")["qty_picked"] == 0


def test_step_quantity_never_goes_backwards(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")
    advance_ok(http, B2B_NO, step="pick", lines={"SKU-TSHIRT-M": 30})

    reason = refused(http, B2B_NO, step="pick", lines={"SKU-TSHIRT-M": 20})

    assert "never go backwards" in reason
    assert line(api.outbound("wms", B2B_NO), "SKU-TSHIRT-M")["qty_picked"] == 30


def test_step_naming_an_unknown_line_is_refused(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")

    assert "SKU-NOPE" in refused(http, B2B_NO, step="pick", lines={"SKU-NOPE": 1})


def test_step_may_name_a_line_by_its_number(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, step="allocate")

    outbound = advance_ok(http, B2B_NO, step="pick", lines={"2": 5})

    assert line(outbound, "SKU-CAP-01")["qty_picked"] == 5


def test_short_shipment_ends_at_70_with_what_left(api, http):
    api.create_ok("wms", b2b_body())
    advance_ok(http, B2B_NO, to="66")

    shipped = advance_ok(http, B2B_NO, step="ship", lines={"SKU-CAP-01": 20})

    assert line(shipped, "SKU-CAP-01")["qty_shipped"] == 20
    assert shipped["so_status"] == "SHIPPED"
    assert wms_code(http, B2B_NO) == "70"
    (pgi,) = webhooks(http, order_no=B2B_NO, event="pgi")
    assert {d["sku"]: d["qty_shipped"] for d in pgi["payload"]["details"]} == {
        "SKU-TSHIRT-M": 40,
        "SKU-CAP-01": 20,
    }
    assert advance_ok(http, B2B_NO, step="close")["so_status"] == "CLOSED"


def test_quantities_never_exceed_the_step_before_through_a_short_run(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-LIMITED-01", 5), ("SKU-CAP-01", 4)]))
    advance_ok(http, B2B_NO, step="allocate")
    advance_ok(http, B2B_NO, step="pick", lines={"SKU-CAP-01": 3})

    final = advance_ok(http, B2B_NO, to="CLOSED")

    for detail in final["details"]:
        chain = [detail["qty_ordered"], *(detail[q] for q in QUANTITIES)]
        assert chain == sorted(chain, reverse=True)
    assert line(final, "SKU-LIMITED-01")["qty_shipped"] == 3
    assert line(final, "SKU-CAP-01")["qty_shipped"] == 3


# -- stock through the steps ----------------------------------------------------------


def test_stock_is_reserved_at_allocation_and_leaves_at_shipment(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-TSHIRT-M", 40)]))
    assert sim_stock(http, "SKU-TSHIRT-M")["qty_allocated"] == 0

    advance_ok(http, B2B_NO, step="allocate")
    allocated = sim_stock(http, "SKU-TSHIRT-M")
    assert (allocated["qty_on_hand"], allocated["qty_allocated"]) == (1200, 40)
    assert allocated["qty_available"] == 1160

    advance_ok(http, B2B_NO, to="66")
    assert sim_stock(http, "SKU-TSHIRT-M")["qty_allocated"] == 40

    advance_ok(http, B2B_NO, step="ship")
    shipped = sim_stock(http, "SKU-TSHIRT-M")
    assert (shipped["qty_on_hand"], shipped["qty_allocated"]) == (1160, 0)


def test_short_pick_frees_the_unpicked_reservation_at_shipment(api, http):
    api.create_ok("wms", b2b_body(lines=[("SKU-TSHIRT-M", 40)]))
    advance_ok(http, B2B_NO, step="allocate")
    advance_ok(http, B2B_NO, step="pick", lines={"SKU-TSHIRT-M": 25})

    advance_ok(http, B2B_NO, to="SHIPPED")

    stock = sim_stock(http, "SKU-TSHIRT-M")
    assert (stock["qty_on_hand"], stock["qty_allocated"]) == (1175, 0)


def test_two_orders_competing_for_short_stock_never_oversell(api, http):
    api.create_ok("wms", b2b_body(doc_no="FIRST", lines=[("SKU-LIMITED-01", 2)]))
    api.create_ok("wms", b2b_body(doc_no="SECOND", lines=[("SKU-LIMITED-01", 2)]))

    first = advance_ok(http, "FIRST", to="ALLOCATED")
    second = advance_ok(http, "SECOND", to="ALLOCATED")

    assert line(first, "SKU-LIMITED-01")["qty_allocated"] == 2
    assert line(second, "SKU-LIMITED-01")["qty_allocated"] == 1
    assert sim_stock(http, "SKU-LIMITED-01")["qty_allocated"] == 3

    advance_ok(http, "FIRST", to="SHIPPED")
    advance_ok(http, "SECOND", to="SHIPPED")
    stock = sim_stock(http, "SKU-LIMITED-01")
    assert (stock["qty_on_hand"], stock["qty_allocated"]) == (0, 0)
    assert api.qty("SKU-LIMITED-01", "WMS") == 0


def test_allocation_from_threads_never_oversells(app, api, http):
    orders = [f"RACE-{n}" for n in range(12)]
    for order_no in orders:
        api.create_ok("wms", b2b_body(doc_no=order_no, lines=[("SKU-LIMITED-01", 1)]))
    results: list[int] = []
    start = threading.Barrier(len(orders))

    def allocate(order_no: str) -> None:
        client = app.test_client()
        start.wait()
        results.append(advance(client, order_no, to="SHIPPED").status_code)

    threads = [threading.Thread(target=allocate, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200] * 3 + [400] * 9
    stock = sim_stock(http, "SKU-LIMITED-01")
    assert (stock["qty_on_hand"], stock["qty_allocated"]) == (0, 0)
    shipped = [r for r in api.listed("WMS", limit=100) if r["so_status"] == "SHIPPED"]
    assert len(shipped) == 3


def test_allocation_over_real_http_from_threads_never_oversells(live_server, api):
    host, port = live_server
    orders = [f"NET-{n}" for n in range(8)]
    for order_no in orders:
        api.create_ok("wms", b2b_body(doc_no=order_no, lines=[("SKU-LIMITED-01", 2)]))
    allocated: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(orders))

    def allocate(order_no: str) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        start.wait()
        try:
            connection.request(
                "POST",
                f"/_sim/orders/WH-TGR04/{order_no}/advance",
                body=json.dumps({"step": "allocate"}),
                headers={"Content-Type": "application/json"},
            )
            reply = connection.getresponse()
            body = json.loads(reply.read())
        finally:
            connection.close()
        if reply.status == 200:
            with lock:
                allocated.append(
                    body["data"]["outbound"]["details"][0]["qty_allocated"]
                )

    threads = [threading.Thread(target=allocate, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(allocated) == 3
    assert sorted(allocated) in ([1, 2], [1, 1, 1])


def test_competing_b2c_orders_in_the_oms_hold_back_sellable_stock(api, http):
    api.create_ok("oms", b2c_body(so_number="A", lines=[("SKU-LIMITED-01", 2)]))
    api.create_ok("oms", b2c_body(so_number="B", lines=[("SKU-LIMITED-01", 2)]))

    assert api.qty("SKU-LIMITED-01", "OMS") == 0
    advance_ok(http, "A", to="SHIPPED")
    advance_ok(http, "B", to="SHIPPED")

    assert api.qty("SKU-LIMITED-01", "WMS") == 0
    (pgi_b,) = webhooks(http, order_no="B", event="pgi")
    assert pgi_b["payload"]["details"][0]["qty_shipped"] == 1


# -- moving on their own --------------------------------------------------------------


def test_client_with_timed_progression_moves_orders_on_its_own(live_http, receiver):
    response = live_http.patch(
        f"/_sim/clients/{DEMO_ID}", json={"progression": "auto", "step_delay": 0.01}
    )
    assert response.status_code == 200
    api = ShipperClient(live_http)
    api.create_ok("wms", b2b_body())

    wait_until(lambda: api.listed("WMS")[0]["so_status"] == "CLOSED")

    assert status_codes(live_http, B2B_NO) == ["00", "40", "60", "63", "66", "80", "99"]


def test_one_order_may_move_on_its_own_while_others_wait(live_http, receiver):
    api = ShipperClient(live_http)
    api.create_ok("wms", b2b_body(doc_no="MOVES"))
    api.create_ok("wms", b2b_body(doc_no="WAITS"))
    live_http.patch(f"/_sim/clients/{DEMO_ID}", json={"step_delay": 0.01})

    response = live_http.put(
        "/_sim/orders/WH-TGR04/MOVES/progression", json={"mode": "auto"}
    )
    assert response.status_code == 200

    wait_until(lambda: api.outbound("wms", "MOVES")["so_status"] == "CLOSED")
    assert api.outbound("wms", "WAITS")["so_status"] == "CREATED"


def test_manual_orders_do_not_move_on_their_own(live_http, receiver):
    api = ShipperClient(live_http)
    api.create_ok("wms", b2b_body())
    point_webhooks(live_http, DEMO_ID, receiver.url)
    receiver.wait_for(2)

    assert api.outbound("wms", B2B_NO)["so_status"] == "CREATED"
    assert webhooks(live_http, event="status")[-1]["payload"]["status_code"] == "00"
