"""One seed and a frozen clock: the same requests give the same numbers.

Two fresh simulators fed the same calls and clock moves must agree on every
made-up value a client sees (group keys, WMS document numbers, FO numbers,
AWBs, pack ids) and on every webhook, byte for byte; another seed changes the
AWBs.
"""

from __future__ import annotations

import re

from conftest import (
    DEMO_ID,
    DEMO_KEY,
    WAREHOUSE,
    Receiver,
    ShipperClient,
    advance_ok,
    b2b_body,
    b2c_body,
    close_app,
    point_webhooks,
    webhooks,
)
from flask.testing import FlaskClient

from simulator.app import create_app
from simulator.config import Config
from simulator.fakedata import fake_b2b_body, fake_b2c_body, fake_lines, make_faker

# 2022-07-15T04:00:00Z, 11:00:00 in Jakarta.
FROZEN_AT = 1657857600.0
SEED = 4242
SKUS = ["SKU-TSHIRT-M", "SKU-CAP-01", "SKU-TSHIRT-S", "SKU-TSHIRT-L"]


def advance_clock(http: FlaskClient, seconds: float) -> dict:
    response = http.post("/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def feed(http: FlaskClient) -> dict:
    """The same calls and clock moves; what the client saw and was sent."""
    api = ShipperClient(http, DEMO_KEY)
    group_keys = []
    for number, body in [
        ("SO-D1", b2c_body("SO-D1")),
        ("SO-D2", b2c_body("SO-D2", express_code="JNT")),
        ("ERP-D3", b2b_body("ERP-D3")),
    ]:
        kind = "oms" if number.startswith("SO") else "wms"
        group_keys.append(api.create_ok(kind, body)["data"]["group_key"])
        advance_clock(http, 1.5)

    # B2C orders get their WMS document number at release, AWBs at pack.
    advance_ok(http, "SO-D2", to="CREATED")
    advance_clock(http, 30)
    advance_ok(http, "SO-D1", to="CLOSED")
    advance_ok(http, "ERP-D3", to="PACKED")
    advance_clock(http, 30)
    advance_ok(http, "SO-D2", to="SHIPPED")
    advance_ok(http, "ERP-D3", to="CLOSED")
    advance_clock(http, 5)

    oms = {no: api.outbound("oms", no) for no in ("SO-D1", "SO-D2")}
    wms = {no: api.outbound("wms", no) for no in ("SO-D1", "SO-D2", "ERP-D3")}
    return {
        "group_keys": group_keys,
        "wms_doc_nos": {no: o["sub_orders"][0]["doc_no"] for no, o in oms.items()},
        "fo_numbers": {no: o["so_reference_1"] for no, o in oms.items()},
        "awbs": {no: o["delivery_no"] for no, o in wms.items()},
        "pack_ids": {no: o["details"][0]["pack_id"] for no, o in wms.items()},
        "payloads": [(w["event"], w["payload"]) for w in webhooks(http)],
    }


def run(seed: int = SEED) -> tuple[dict, list[bytes]]:
    """A fresh simulator with ``seed`` and a frozen clock; its results."""
    app = create_app(Config(start_workers=False, seed=seed, freeze_at=FROZEN_AT))
    receiver = Receiver()
    try:
        http = app.test_client()
        point_webhooks(http, DEMO_ID, receiver.url)
        seen = feed(http)
        return seen, [r.body for r in receiver.requests]
    finally:
        receiver.close()
        close_app(app)


def test_same_seed_and_frozen_clock_give_identical_numbers_and_webhooks():
    first, first_sent = run()
    second, second_sent = run()

    assert first["group_keys"] == second["group_keys"]
    assert first["wms_doc_nos"] == second["wms_doc_nos"]
    assert first["fo_numbers"] == second["fo_numbers"]
    assert first["awbs"] == second["awbs"]
    assert first["pack_ids"] == second["pack_ids"]
    assert first["payloads"] == second["payloads"]
    # What went over the wire, in the order it went, byte for byte.
    assert first_sent == second_sent
    assert len(first_sent) == len(first["payloads"])


def test_the_repeated_numbers_are_real_ones():
    seen, _ = run()

    assert seen["group_keys"] == [
        f"hwoutboundoms.2022.07.15040000.{DEMO_ID}",
        f"hwoutboundoms.2022.07.15040001.{DEMO_ID}",
        f"hwoutboundwms.2022.07.15040003.{DEMO_ID}",
    ]
    for doc_no in seen["wms_doc_nos"].values():
        assert re.fullmatch(r"220715\d{8}", doc_no)
    assert len(set(seen["wms_doc_nos"].values())) == 2
    for fo in seen["fo_numbers"].values():
        assert re.fullmatch(r"FO\d{18}", fo)
    assert len(set(seen["fo_numbers"].values())) == 2
    assert re.fullmatch(r"CGK\d{13}", seen["awbs"]["SO-D1"])
    assert re.fullmatch(r"JP\d{10}", seen["awbs"]["SO-D2"])
    assert re.fullmatch(r"00\d{10}", seen["awbs"]["ERP-D3"])

    # The B2C PGI carries the WMS document number made at release.
    pgi = [p for event, p in seen["payloads"] if event == "pgi"]
    by_order = {p["so_reference_a"]: p for p in pgi}
    assert by_order["SO-D1"]["doc_no"] == seen["wms_doc_nos"]["SO-D1"]
    assert by_order["SO-D1"]["delivery_no"] == seen["awbs"]["SO-D1"]
    assert by_order["SO-D1"]["pgi_date"] == "2022-07-15 11:00:34"


def test_a_different_seed_gives_different_awbs():
    first, _ = run(seed=SEED)
    other, _ = run(seed=SEED + 1)

    for order_no, awb in first["awbs"].items():
        assert other["awbs"][order_no] != awb
        # Same carrier, same form: only the digits are drawn from the seed.
        assert other["awbs"][order_no][:2] == awb[:2]
        assert len(other["awbs"][order_no]) == len(awb)
    # Numbers that count rather than draw do not depend on the seed.
    assert other["group_keys"] == first["group_keys"]
    assert other["wms_doc_nos"] == first["wms_doc_nos"]


def test_reset_starts_the_numbers_over():
    app = create_app(Config(start_workers=False, seed=SEED, freeze_at=FROZEN_AT))
    try:
        http = app.test_client()
        first = feed(http)

        assert http.post("/_sim/reset").status_code == 200
        http.post("/_sim/clock/freeze", json={"at": FROZEN_AT})
        again = feed(http)
    finally:
        close_app(app)

    assert again == first


def packed_awbs(own_awb: str) -> tuple[str, str]:
    """AWBs of two B2B orders packed in turn, the first bringing ``own_awb``."""
    app = create_app(Config(start_workers=False, seed=SEED, freeze_at=FROZEN_AT))
    try:
        http = app.test_client()
        api = ShipperClient(http, DEMO_KEY)
        api.create_ok("wms", b2b_body("ERP-A", delivery_no=own_awb))
        api.create_ok("wms", b2b_body("ERP-B"))
        advance_ok(http, "ERP-A", to="PACKED")
        advance_ok(http, "ERP-B", to="PACKED")
        return (
            api.outbound("wms", "ERP-A")["delivery_no"],
            api.outbound("wms", "ERP-B")["delivery_no"],
        )
    finally:
        close_app(app)


def test_an_awb_the_client_gives_is_kept_and_draws_nothing_from_the_seed():
    first_drawn, second_drawn = packed_awbs("")
    own, drawn = packed_awbs("OWN-AWB-0001")

    assert own == "OWN-AWB-0001"
    assert drawn == first_drawn
    assert second_drawn != first_drawn


# -- fake data ----------------------------------------------------------------


def fake_orders(seed: int) -> list[tuple[str, dict]]:
    fake = make_faker(seed)
    orders = []
    for _ in range(3):
        orders.append(
            (
                "oms",
                fake_b2c_body(
                    fake,
                    warehouse_id=WAREHOUSE,
                    customer_id="CS674",
                    tenant_name="Toko Contoh",
                    express_code="JNE",
                    lines=fake_lines(fake, SKUS),
                ),
            )
        )
        orders.append(
            (
                "wms",
                fake_b2b_body(
                    fake,
                    warehouse_id=WAREHOUSE,
                    customer_id="HJ",
                    carrier_id="SICEPAT",
                    carrier_name="SiCepat",
                    lines=fake_lines(fake, SKUS),
                ),
            )
        )
    return orders


def test_fake_bodies_with_the_same_seed_are_identical():
    assert fake_orders(7) == fake_orders(7)
    assert fake_orders(7) != fake_orders(8)


def created_by_fake_orders(seed: int) -> list[tuple[str, dict]]:
    app = create_app(Config(start_workers=False, seed=SEED, freeze_at=FROZEN_AT))
    try:
        http = app.test_client()
        api = ShipperClient(http, DEMO_KEY)
        for kind, body in fake_orders(seed):
            api.create_ok(kind, body)
            advance_clock(http, 1)
        return [(w["event"], w["payload"]) for w in webhooks(http)]
    finally:
        close_app(app)


def test_fake_orders_with_the_same_seed_give_identical_webhooks():
    first = created_by_fake_orders(7)

    assert first == created_by_fake_orders(7)
    assert len([event for event, _ in first if event == "so_created"]) == 6
