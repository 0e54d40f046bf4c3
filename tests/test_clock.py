"""The virtual clock: frozen times, timed steps and webhook retries on demand.

A frozen clock stamps envelopes, group keys and webhooks with its own time;
``POST /_sim/clock/advance`` runs every retry and timed step due on the way,
each at its own moment, in milliseconds of real time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from conftest import (
    DEMO_ID,
    WAREHOUSE,
    Receiver,
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
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.app import create_app
from simulator.clock import JAKARTA, jakarta_text, parse_iso_utc, parse_jakarta_text
from simulator.config import Config

# 2022-07-15T04:00:00Z, 11:00:00 in Jakarta.
FROZEN_AT = 1657857600.0
RETRY_DELAYS = (5.0, 10.0, 20.0)

TIMED_ID = 900001
TIMED_KEY = "clock-test-key"
TIMED_SKU = "SKU-CLOCK-01"
# The codes a B2C order reaches, one timed step after another, in full.
B2C_LADDER = ["00", "40", "60", "63", "66", "80", "99"]


# -- helpers ------------------------------------------------------------------


def freeze(http: FlaskClient, at: float | None = FROZEN_AT) -> dict:
    response = http.post("/_sim/clock/freeze", json={} if at is None else {"at": at})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def advance_clock(http: FlaskClient, seconds: float) -> dict:
    response = http.post("/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def clock(http: FlaskClient) -> dict:
    return http.get("/_sim/clock").get_json()


def timeline(http: FlaskClient, order_no: str) -> dict:
    response = http.get(f"/_sim/orders/{WAREHOUSE}/{order_no}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def status_of(http: FlaskClient, order_no: str) -> str:
    return timeline(http, order_no)["order"]["so_status"]


def status_codes_sent(http: FlaskClient, order_no: str) -> list[str]:
    return [
        w["payload"]["status_code"]
        for w in webhooks(http, order_no=order_no, event="status")
    ]


def add_timed_client(http: FlaskClient, step_delay: float) -> ShipperClient:
    """A client whose orders move on their own, one step every ``step_delay``."""
    response = http.post(
        "/_sim/clients",
        json={
            "api_key": TIMED_KEY,
            "client_id": TIMED_ID,
            "tenant_name": "Toko Jam",
            "oms_customer_id": "CS900",
            "wms_customer_id": "JAM",
            "warehouses": [WAREHOUSE],
            "progression": "auto",
            "step_delay": step_delay,
        },
    )
    assert response.status_code == 201, response.get_json()
    stock = http.put(
        "/_sim/stock",
        json={
            "client_id": TIMED_ID,
            "warehouse_id": WAREHOUSE,
            "sku": TIMED_SKU,
            "qty": 50,
        },
    )
    assert stock.status_code == 200, stock.get_json()
    return ShipperClient(http, TIMED_KEY)


def timed_order(api: ShipperClient, so_number: str) -> dict:
    return api.create_ok(
        "oms",
        b2c_body(
            so_number,
            lines=[(TIMED_SKU, 2)],
            customer_id="CS900",
            tenant_name="Toko Jam",
        ),
    )


@pytest.fixture
def failing_receiver(receiver: Receiver) -> Receiver:
    return receiver.answer(500)


@pytest.fixture
def retry_app(failing_receiver: Receiver) -> Iterator[Flask]:
    """Workers running, clock frozen, retries 5/10/20 s, webhooks failing."""
    app = make_live_app(retry_delays=RETRY_DELAYS, freeze_at=FROZEN_AT)
    point_webhooks(app.test_client(), DEMO_ID, failing_receiver.url)
    yield app
    close_app(app)


# -- a frozen clock stamps everything -----------------------------------------


def test_frozen_clock_reports_the_time_it_was_frozen_at(http: FlaskClient):
    assert freeze(http) == {
        "now": FROZEN_AT,
        "iso": "2022-07-15T04:00:00Z",
        "frozen": True,
    }

    time.sleep(0.02)

    assert clock(http)["now"] == FROZEN_AT


def test_freeze_without_a_time_stops_the_clock_now(http: FlaskClient):
    before = time.time()
    frozen = freeze(http, at=None)
    time.sleep(0.02)

    assert frozen["frozen"] is True
    assert before - 1 <= frozen["now"] <= time.time()
    assert clock(http)["now"] == frozen["now"]


def test_frozen_clock_stamps_envelopes_group_keys_and_webhooks(
    http: FlaskClient, api: ShipperClient
):
    freeze(http)

    created = api.create_ok("oms", b2c_body("SO-CLOCK"))

    assert created["metadata"]["timestamp"] == int(FROZEN_AT)
    # Group keys carry UTC, as Shipper's sample does; webhook times Jakarta.
    assert created["data"]["group_key"] == f"hwoutboundoms.2022.07.15040000.{DEMO_ID}"
    (so_created,) = webhooks(http, order_no="SO-CLOCK")
    assert so_created["created"] == FROZEN_AT
    assert so_created["payload"]["group_key"] == created["data"]["group_key"]

    advance_clock(http, 65.5)
    b2b = api.create_ok("wms", b2b_body("ERP-CLOCK"))

    assert b2b["metadata"]["timestamp"] == int(FROZEN_AT) + 65
    assert b2b["data"]["group_key"] == f"hwoutboundwms.2022.07.15040105.{DEMO_ID}"
    (status,) = webhooks(http, order_no="ERP-CLOCK", event="status")
    assert status["payload"]["status_time"] == "2022-07-15 11:01:05"

    advance_clock(http, 3600)
    advance_ok(http, "ERP-CLOCK", to="ALLOCATED")

    allocated = webhooks(http, order_no="ERP-CLOCK", event="status")[-1]
    assert allocated["payload"]["status_code"] == "40"
    assert allocated["payload"]["status_time"] == "2022-07-15 12:01:05"


def test_frozen_clock_stamps_errors_the_journal_and_the_gateway_401(
    http: FlaskClient, api: ShipperClient
):
    freeze(http)

    missing = api.detail("wms", "NOPE")
    refused = http.get("/v3/fulfillment/express")

    assert missing.get_json()["metadata"]["timestamp"] == int(FROZEN_AT)
    assert refused.get_json()["metadata"]["timestamp"] == "2022-07-15T04:00:00Z"
    journal = http.get("/_sim/requests").get_json()["requests"]
    assert [e["time"] for e in journal] == [FROZEN_AT, FROZEN_AT]


def test_frozen_clock_stamps_the_pgi_date_and_order_events(
    http: FlaskClient, api: ShipperClient
):
    freeze(http)
    api.create_ok("wms", b2b_body("ERP-PGI"))
    advance_clock(http, 120)

    advance_ok(http, "ERP-PGI", to="SHIPPED")

    (pgi,) = webhooks(http, order_no="ERP-PGI", event="pgi")
    assert pgi["payload"]["pgi_date"] == "2022-07-15 11:02:00"
    events = timeline(http, "ERP-PGI")["events"]
    assert events[0]["time"] == FROZEN_AT
    assert {e["time"] for e in events[1:]} == {FROZEN_AT + 120}


# -- advance runs the webhook retry schedule ----------------------------------


def test_advance_runs_a_failing_webhook_through_every_retry_until_it_gives_up(
    retry_app: Flask, failing_receiver: Receiver
):
    http = retry_app.test_client()
    api = ShipperClient(http, "demo-key-toko-contoh")
    api.create_ok("oms", b2c_body("SO-RETRY"))

    # What is due at the frozen moment still goes out: the first try.
    failing_receiver.wait_for(1)
    (delivery,) = wait_until(
        lambda: [w for w in webhooks(http, order_no="SO-RETRY") if w["attempts"]]
    )
    assert delivery["state"] == "pending"
    assert delivery["next_attempt_at"] == FROZEN_AT + RETRY_DELAYS[0]

    # Short of the first retry's moment, nothing more is sent.
    advance_clock(http, RETRY_DELAYS[0] - 0.1)
    assert len(failing_receiver.requests) == 1

    started = time.perf_counter()
    result = advance_clock(http, sum(RETRY_DELAYS) - RETRY_DELAYS[0] + 0.1 + 100)
    took = time.perf_counter() - started

    assert took < 1.0
    assert result["ran"] == 3
    assert result["now"] == FROZEN_AT + sum(RETRY_DELAYS) + 100
    (delivery,) = webhooks(http, order_no="SO-RETRY")
    assert delivery["state"] == "failed"
    assert delivery["next_attempt_at"] is None
    attempts = delivery["attempts"]
    assert [a["n"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status_code"] for a in attempts] == [500] * 4
    assert [a["time"] for a in attempts] == [
        FROZEN_AT,
        FROZEN_AT + 5,
        FROZEN_AT + 15,
        FROZEN_AT + 35,
    ]
    gaps = [b["time"] - a["time"] for a, b in pairwise(attempts)]
    assert gaps == list(RETRY_DELAYS)
    assert len(failing_receiver.requests) == 4
    assert len({r.body for r in failing_receiver.requests}) == 1

    # Given up: a further jump sends nothing.
    advance_clock(http, 3600)
    assert len(failing_receiver.requests) == 4


def test_advance_stops_retrying_once_the_receiver_recovers(
    app: Flask, http: FlaskClient, api: ShipperClient, receiver: Receiver
):
    point_webhooks(http, DEMO_ID, receiver.url)
    receiver.fail(2)
    freeze(http)
    api.create_ok("oms", b2c_body("SO-RECOVER"))

    advance_clock(http, 60)

    (delivery,) = webhooks(http, order_no="SO-RECOVER")
    assert delivery["state"] == "delivered"
    # The app fixture keeps the default delays of 1, 2 and 4 seconds.
    assert [a["time"] - FROZEN_AT for a in delivery["attempts"]] == [0, 1, 3]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert len(receiver.requests) == 3


# -- timed progression ------------------------------------------------------------


def test_timed_progression_moves_one_step_per_step_delay_of_virtual_time(
    http: FlaskClient,
):
    freeze(http)
    timed = add_timed_client(http, step_delay=10)
    timed_order(timed, "SO-TIMED")

    advance_clock(http, 9.9)
    assert status_of(http, "SO-TIMED") == "REGISTERED"

    seen = []
    for _ in B2C_LADDER:
        advance_clock(http, 10 if seen else 0.1)
        seen.append(status_of(http, "SO-TIMED"))
        assert len(status_codes_sent(http, "SO-TIMED")) == len(seen)

    assert seen == [
        "CREATED",
        "ALLOCATED",
        "PICKED",
        "PACKED",
        "PACKED",
        "SHIPPED",
        "CLOSED",
    ]
    assert status_codes_sent(http, "SO-TIMED") == B2C_LADDER

    advance_clock(http, 600)
    assert status_codes_sent(http, "SO-TIMED") == B2C_LADDER


def test_one_jump_of_seventy_seconds_runs_every_step_to_closed_in_order(
    http: FlaskClient,
):
    freeze(http)
    timed = add_timed_client(http, step_delay=10)
    timed_order(timed, "SO-JUMP")

    result = advance_clock(http, 70)

    assert result["now"] == FROZEN_AT + 70
    assert status_of(http, "SO-JUMP") == "CLOSED"
    events = timeline(http, "SO-JUMP")["events"]
    assert [e["code"] for e in events] == ["", *B2C_LADDER]
    # Each step ran at its own moment, not at the end of the jump.
    assert [e["time"] - FROZEN_AT for e in events] == [0, 10, 20, 30, 40, 50, 60, 70]

    sent = webhooks(http, order_no="SO-JUMP", event="status")
    assert [w["payload"]["status_code"] for w in sent] == B2C_LADDER
    assert [w["payload"]["status_time"] for w in sent] == [
        jakarta_text(FROZEN_AT + 10 * n) for n in range(1, 8)
    ]
    (pgi,) = webhooks(http, order_no="SO-JUMP", event="pgi")
    assert pgi["payload"]["pgi_date"] == "2022-07-15 11:01:00"


def test_a_jump_short_of_the_next_step_runs_only_the_steps_due(http: FlaskClient):
    freeze(http)
    timed = add_timed_client(http, step_delay=10)
    timed_order(timed, "SO-SHORT")

    advance_clock(http, 35)

    assert status_of(http, "SO-SHORT") == "PICKED"
    assert status_codes_sent(http, "SO-SHORT") == ["00", "40", "60"]


def set_timed_stock(http: FlaskClient, qty: int) -> None:
    response = http.put(
        "/_sim/stock",
        json={
            "client_id": TIMED_ID,
            "warehouse_id": WAREHOUSE,
            "sku": TIMED_SKU,
            "qty": qty,
        },
    )
    assert response.status_code == 200, response.get_json()


def test_timed_allocation_waits_for_stock_and_goes_on_once_it_arrives(
    http: FlaskClient,
):
    freeze(http)
    timed = add_timed_client(http, step_delay=10)
    set_timed_stock(http, 0)
    timed_order(timed, "SO-WAITS")

    advance_clock(http, 45)
    assert status_of(http, "SO-WAITS") == "CREATED"

    set_timed_stock(http, 5)
    advance_clock(http, 5)  # the next try, 50 s after creation

    assert status_of(http, "SO-WAITS") == "ALLOCATED"
    events = timeline(http, "SO-WAITS")["events"]
    assert events[-1]["time"] == FROZEN_AT + 50


def test_timed_step_without_delay_waiting_for_stock_does_not_stall_the_clock(
    http: FlaskClient,
):
    freeze(http)
    timed = add_timed_client(http, step_delay=0)
    set_timed_stock(http, 0)
    timed_order(timed, "SO-NO-DELAY")

    started = time.perf_counter()
    result = advance_clock(http, 10)

    assert time.perf_counter() - started < 1.0
    assert result["now"] == FROZEN_AT + 10
    assert status_of(http, "SO-NO-DELAY") == "CREATED"

    set_timed_stock(http, 5)
    advance_clock(http, 1)

    assert status_of(http, "SO-NO-DELAY") == "CLOSED"
    assert status_codes_sent(http, "SO-NO-DELAY") == B2C_LADDER


def test_frozen_clock_holds_timed_steps_while_real_time_passes():
    app = make_live_app(freeze_at=FROZEN_AT)
    try:
        http = app.test_client()
        timed = add_timed_client(http, step_delay=0.05)
        timed_order(timed, "SO-HELD")

        time.sleep(0.3)  # six step delays of real time
        assert status_of(http, "SO-HELD") == "REGISTERED"

        advance_clock(http, 0.05)
        assert status_of(http, "SO-HELD") == "CREATED"
    finally:
        close_app(app)


# -- advance is deterministic -------------------------------------------------


def run_schedule() -> dict:
    """One fresh simulator, one timed order and one failing webhook, advanced."""
    app = create_app(
        Config(start_workers=False, freeze_at=FROZEN_AT, retry_delays=RETRY_DELAYS)
    )
    receiver = Receiver().fail(2)
    try:
        http = app.test_client()
        point_webhooks(http, DEMO_ID, receiver.url)
        timed = add_timed_client(http, step_delay=7)
        ShipperClient(http, "demo-key-toko-contoh").create_ok(
            "wms", b2b_body("ERP-DET")
        )
        timed_order(timed, "SO-DET")

        jumps = [advance_clock(http, s) for s in (3, 12.5, 0, 40, 100)]
        deliveries = [
            {
                "order_no": w["order_no"],
                "event": w["event"],
                "state": w["state"],
                "payload": w["payload"],
                "attempts": [
                    (a["n"], a["time"], a["status_code"]) for a in w["attempts"]
                ],
            }
            for w in webhooks(http)
        ]
        return {
            "jumps": jumps,
            "events": {
                no: timeline(http, no)["events"] for no in ("ERP-DET", "SO-DET")
            },
            "deliveries": deliveries,
            "received": receiver.bodies(),
        }
    finally:
        receiver.close()
        close_app(app)


def test_advance_gives_the_same_results_every_time():
    first, second = run_schedule(), run_schedule()

    assert first == second
    # Something did happen: the timed order closed, the webhook got through.
    assert first["events"]["SO-DET"][-1]["code"] == "99"
    erp = [d for d in first["deliveries"] if d["order_no"] == "ERP-DET"]
    assert [len(d["attempts"]) for d in erp] == [3, 1]
    assert [d["state"] for d in erp] == ["delivered", "delivered"]


# -- back to real time -----------------------------------------------------------


def test_unfreeze_returns_to_real_time(http: FlaskClient, api: ShipperClient):
    freeze(http)
    advance_clock(http, 30)

    state = http.post("/_sim/clock/unfreeze").get_json()

    assert state["frozen"] is False
    assert abs(state["now"] - time.time()) < 5
    first = clock(http)["now"]
    time.sleep(0.02)
    assert clock(http)["now"] > first

    created = api.create_ok("oms", b2c_body("SO-REAL"))
    assert abs(created["metadata"]["timestamp"] - time.time()) < 5
    assert ".2022.07.15" not in created["data"]["group_key"]


def test_advance_on_a_running_clock_freezes_it_first(http: FlaskClient):
    before = time.time()

    state = advance_clock(http, 3600)

    assert state["frozen"] is True
    assert before + 3600 <= state["now"] <= time.time() + 3600
    time.sleep(0.02)
    assert clock(http)["now"] == state["now"]


def test_freeze_at_start_comes_from_the_config():
    app = create_app(Config(start_workers=False, freeze_at=FROZEN_AT))
    try:
        state = app.test_client().get("/_sim/clock").get_json()
        assert state == {
            "now": FROZEN_AT,
            "iso": "2022-07-15T04:00:00Z",
            "frozen": True,
        }
    finally:
        close_app(app)


# -- reading the layouts back -----------------------------------------------------

_LAYOUTS = [
    (parse_iso_utc, "%Y-%m-%dT%H:%M:%SZ", UTC),
    (parse_jakarta_text, "%Y-%m-%d %H:%M:%S", JAKARTA),
]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 1, 1)),
    layout=st.sampled_from(_LAYOUTS),
)
def test_a_time_reads_back_as_strptime_reads_it(moment, layout):
    parse, spelled, zone = layout
    text = moment.strftime(spelled)

    expected = datetime.strptime(text, spelled).replace(tzinfo=zone).timestamp()
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2022-7-5T4:0:0Z", "2022-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "", "x"],
)
def test_what_strptime_reads_or_refuses_is_read_or_refused_alike(text):
    try:
        expected = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        with pytest.raises(ValueError):
            parse_iso_utc(text)
    else:
        assert parse_iso_utc(text) == expected.replace(tzinfo=UTC).timestamp()
