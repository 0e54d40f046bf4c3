"""Requests at the same moment, against real servers on 127.0.0.1.

Every test runs against both ways of serving: the single-process server
(threads over one SQLite connection) and ``serve --workers 3 --db FILE``
(gunicorn processes over one WAL file, webhooks from one background
process). Each fires its requests from many threads released by one barrier,
and the duplicate-number test also from several client processes.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections import Counter

import pytest
from conftest import b2b_body, b2c_body
from serving import (
    Api,
    CountingReceiver,
    SimServer,
    at_once,
    create_burst,
    error_code,
    wait_for,
)

OPTIONS = ("--retry-delays", "0.2,0.2,0.2", "--webhook-timeout", "5")


@pytest.fixture(scope="module", params=["single", "workers"])
def server(request, tmp_path_factory):
    if request.param == "single":
        found = SimServer(*OPTIONS)
    else:
        db = tmp_path_factory.mktemp("concurrency") / "state.db"
        found = SimServer(*OPTIONS, db=db, workers=3)
    with found:
        yield found


@pytest.fixture
def api(server: SimServer) -> Api:
    return Api(server.url)


_serial = itertools.count(1)


def unique(prefix: str) -> str:
    """An order number or SKU no other test uses (doc_no takes 20 characters)."""
    return f"{prefix}-{next(_serial):05d}"


def b2b_order(doc_no: str, sku: str, qty: int = 1) -> dict:
    return b2b_body(doc_no, lines=[(sku, qty)])


# -- one order number, many creates ----------------------------------------------


def test_same_number_created_50_times_at_once_from_threads_gives_one_order(api):
    so_number, doc_no = unique("DUPO"), unique("DUPW")
    calls = [lambda: api.create("oms", b2c_body(so_number))] * 50
    calls += [lambda: api.create("wms", b2b_body(doc_no))] * 50

    results = at_once(calls)

    for kind, number, answers in (
        ("oms", so_number, results[:50]),
        ("wms", doc_no, results[50:]),
    ):
        outcomes = Counter((r.status_code, error_code(r)) for r in answers)
        assert outcomes == {(200, None): 1, (400, 3011): 49}, (kind, outcomes)
        assert api.detail(kind, number).status_code == 200
        created = api.deliveries(order_no=number, event="so_created")
        assert len(created) == 1, created


def test_same_number_created_50_times_at_once_from_processes_gives_one_order(
    api, server
):
    doc_no = unique("DUPP")
    context = multiprocessing.get_context("spawn")
    start, answers = context.Barrier(6), context.Queue()
    clients = [
        context.Process(
            target=create_burst,
            args=(server.url, "wms", b2b_body(doc_no), 10, start, answers),
        )
        for _ in range(5)
    ]
    for client in clients:
        client.start()
    try:
        start.wait(timeout=60)  # every client process is up and waiting
        results = [r for _ in clients for r in answers.get(timeout=60)]
    finally:
        for client in clients:
            client.join(timeout=10)
            if client.is_alive():
                client.kill()

    assert Counter(results) == {(200, None): 1, (400, 3011): 49}
    assert api.outbound("wms", doc_no)["order_no"] == doc_no
    assert len(api.deliveries(order_no=doc_no, event="so_created")) == 1


# -- stock ----------------------------------------------------------------------


def test_orders_allocated_at_once_never_take_more_stock_than_exists(api):
    sku, stock = unique("SKU-RACE"), 10
    api.set_stock(sku, stock)
    numbers = [unique("ALLOC") for i in range(25)]
    for doc_no in numbers:
        assert api.create("wms", b2b_order(doc_no, sku, qty=2)).status_code == 200

    answers = at_once([lambda n=n: api.advance(n, to="ALLOCATED") for n in numbers])

    # Each allocation took what was left or was refused for want of stock;
    # none failed otherwise.
    assert {r.status_code for r in answers} <= {200, 400}, [r.text for r in answers]
    lines = [api.outbound("wms", n)["details"][0] for n in numbers]
    allocated = sum(line["qty_allocated"] for line in lines)
    assert allocated == stock  # never more than exists, and none of it lost
    assert all(0 <= line["qty_allocated"] <= 2 for line in lines)

    row = api.sim_stock(sku)
    assert row["qty_on_hand"] == stock
    assert row["qty_allocated"] == allocated
    assert row["qty_available"] == 0
    assert api.stock_qty(sku, "WMS") == stock
    # 25 open orders want 50 units of 10: nothing left to sell.
    assert api.stock_qty(sku, "OMS") == 0
    assert api.stock_qty(sku, "OMSWMS") == 0


def test_cancel_racing_allocation_ends_in_exactly_one_of_the_two(api):
    sku = unique("SKU-CANCEL-RACE")
    api.set_stock(sku, 1000)
    numbers = [unique("RACE") for i in range(15)]
    for doc_no in numbers:
        assert api.create("wms", b2b_order(doc_no, sku, qty=3)).status_code == 200

    calls = []
    for doc_no in numbers:
        calls.append(lambda n=doc_no: api.cancel("wms", n))
        calls.append(lambda n=doc_no: api.advance(n, to="ALLOCATED"))
    answers = at_once(calls)

    reserved = 0
    for i, doc_no in enumerate(numbers):
        cancel, advance = answers[2 * i], answers[2 * i + 1]
        order = api.outbound("wms", doc_no)
        line = order["details"][0]
        if cancel.status_code == 200:
            assert advance.status_code == 400, advance.text
            assert order["so_status"] == "CANCELLED"
            assert line["qty_allocated"] == 0
        else:
            assert (cancel.status_code, error_code(cancel)) == (400, 3020), cancel.text
            assert advance.status_code == 200, advance.text
            assert order["so_status"] == "ALLOCATED"
            assert line["qty_allocated"] == 3
            reserved += 3

        codes = [
            d["payload"]["status_code"]
            for d in api.deliveries(order_no=doc_no, event="status")
        ]
        expected_last = "90" if order["so_status"] == "CANCELLED" else "40"
        assert codes == ["00", expected_last], (doc_no, codes)

    assert api.sim_stock(sku)["qty_allocated"] == reserved


def test_list_totals_agree_with_the_orders_after_concurrent_changes(api):
    sku = unique("SKU-TOTALS")
    api.set_stock(sku, 1000)
    numbers = [unique("TOTW") for _ in range(8)] + [unique("TOTO") for _ in range(8)]

    def change(i: int, number: str) -> None:
        kind = "wms" if number.startswith("TOTW") else "oms"
        body = (
            b2b_order(number, sku)
            if kind == "wms"
            else b2c_body(number, lines=[(sku, 1)])
        )
        api.create(kind, body)
        if i % 3 == 0:
            api.cancel(kind, number)
        elif i % 3 == 1:
            api.advance(number, to="SHIPPED")

    at_once([lambda i=i, n=n: change(i, n) for i, n in enumerate(numbers)])

    # total_elements is kept apart from the rows (see the store's
    # order_counts): it must match what the pages hold, for every filter.
    for outbound_type in ("WMS", "OMS"):
        for status in ("", "REGISTERED", "CREATED", "SHIPPED", "CANCELLED"):
            query = {"limit": 100, **({"so_status": status} if status else {})}
            first = api.call("GET", f"/outbounds/{outbound_type}", params=query)
            assert first.status_code == 200, first.text
            pagination = first.json()["pagination"]
            listed = []
            for page in range(1, pagination["total_pages"] + 1):
                found = api.call(
                    "GET", f"/outbounds/{outbound_type}", params={**query, "page": page}
                )
                listed += found.json()["data"]["outbounds"]
            assert pagination["total_elements"] == len(listed), (outbound_type, status)
            assert all(not status or o["so_status"] == status for o in listed)


# -- webhooks ---------------------------------------------------------------------


def test_no_webhook_is_lost_or_doubled_under_concurrent_creates_and_advances(api):
    receiver = CountingReceiver()
    try:
        api.point_webhooks(receiver.url)
        sku = unique("SKU-HOOKS")
        api.set_stock(sku, 1000)
        orders = [("wms", unique("HOOKW")) for i in range(10)]
        orders += [("oms", unique("HOOKO")) for i in range(10)]

        def life_of(kind: str, number: str) -> list[int]:
            body = (
                b2b_order(number, sku)
                if kind == "wms"
                else b2c_body(number, lines=[(sku, 1)])
            )
            answers = [api.create(kind, body).status_code]
            for target in ("ALLOCATED", "PACKED", "SHIPPED", "CLOSED"):
                answers.append(api.advance(number, to=target).status_code)
            return answers

        results = at_once([lambda k=k, n=n: life_of(k, n) for k, n in orders])
        assert all(r == [200] * 5 for r in results), results

        # Per order: created, one status per code (B2C's 00 comes at
        # release), the goods issue.
        codes = ["00", "40", "60", "63", "66", "80", "99"]
        expected = Counter()
        for _, number in orders:
            expected[(number, "so_created", "")] = 1
            expected[(number, "pgi", "")] = 1
            for code in codes:
                expected[(number, "status", code)] = 1
        receiver.wait_total(sum(expected.values()), timeout=30)
        numbers = {n for _, n in orders}
        wait_for(
            lambda: all(
                d["state"] == "delivered"
                for d in api.deliveries()
                if d["order_no"] in numbers
            ),
            10,
            "every delivery recorded as delivered",
        )
        time.sleep(0.5)  # room for a double to arrive

        ours = {k: v for k, v in receiver.counts.items() if k[0] in numbers}
        assert ours == expected
        for _, number in orders:
            assert receiver.codes_in_arrival_order(number) == codes, number
    finally:
        api.point_webhooks("")
        receiver.close()
