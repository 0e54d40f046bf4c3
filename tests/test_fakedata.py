"""Fake order bodies: deterministic per seed, and within Shipper's rules."""

from __future__ import annotations

import re

import pytest

from simulator.fakedata import fake_b2b_body, fake_b2c_body, fake_lines, make_faker

# The field order of the samples beside the contract.
B2C_FIELDS = [
    "warehouse_id", "customer_id", "so_number", "order_type", "order_source",
    "platform", "order_identification_code", "internal_order_status",
    "express_code", "tenant_name", "seller_nick", "consignee", "consignee_phone",
    "consignee_mobile", "consignee_email", "consignee_full_address",
    "consignee_state", "consignee_province", "consignee_city", "area", "town",
    "zip_code", "consignee_doc_type", "consignee_doc_no", "seller_flag",
    "buyer_remark", "seller_remark", "order_price", "pre_tax_price", "tax_price",
    "discount_price", "postage", "cod_price", "order_time", "payment_time",
    "payment_type", "payment_way", "details",
]  # fmt: skip
B2B_FIELDS = [
    "warehouse_id", "customer_id", "order_type", "doc_no", "order_time",
    "consignee_id", "consignee_name", "consignee_tel", "consignee_mail",
    "consignee_zip", "consignee_address", "consignee_state",
    "consignee_province", "consignee_city", "delivery_no", "carrier_id",
    "carrier_name", "priority", "notes", "details",
]  # fmt: skip
B2B_LINE_FIELDS = [
    "line_no", "sku", "qty_ordered", "price",
    "mfg_date", "exp_date", "batch_no", "serial_no",
]  # fmt: skip

PLATFORMS = {
    "LAZADA", "SHOPEE", "TOKOPEDIA", "TIKTOK", "BLIBLI",
    "AKULAKU", "BUKALAPAK", "SHOPIFY", "ERP",
}  # fmt: skip

B2C_LIMITS = {
    "warehouse_id": 20,
    "customer_id": 20,
    "so_number": 50,
    "internal_order_status": 30,
    "express_code": 40,
    "tenant_name": 200,
    "consignee": 200,
    "consignee_phone": 300,
    "consignee_email": 200,
    "consignee_full_address": 200,
    "consignee_state": 30,
    "consignee_province": 50,
    "consignee_city": 50,
    "zip_code": 20,
}
B2B_LIMITS = {
    "warehouse_id": 20,
    "customer_id": 50,
    "order_type": 20,
    "doc_no": 20,
    "consignee_id": 50,
    "consignee_name": 50,
    "consignee_tel": 30,
    "consignee_mail": 100,
    "consignee_address": 200,
    "consignee_state": 30,
    "consignee_province": 50,
    "consignee_city": 50,
    "delivery_no": 30,
    "carrier_id": 30,
    "carrier_name": 200,
    "priority": 1,
    "notes": 200,
}

B2C_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
B2B_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
ORDER_NUMBER = re.compile(r"[A-Za-z0-9_-]+")
SO_NUMBER = re.compile(r"[A-Z]+-\d{4}-\d{6}")
EMAIL = re.compile(r"[a-z0-9._]+@[a-z0-9-]+(\.[a-z0-9-]+)+")
MOBILE = re.compile(r"08\d{8,11}")
ZIP = re.compile(r"\d{5}")

SKUS = ["SKU-TSHIRT-M", "SKU-CAP-01", "SKU-HOODIE-M", "SKU-TOTE-01"]
SEEDS = range(150)


def b2c(seed: int, **overrides) -> dict:
    fake = make_faker(seed)
    args = {
        "warehouse_id": "WH-TGR04",
        "customer_id": "CS674",
        "tenant_name": "Toko Contoh",
        "express_code": "JNE",
        "lines": fake_lines(fake, SKUS),
    }
    return fake_b2c_body(fake, **{**args, **overrides})


def b2b(seed: int, **overrides) -> dict:
    fake = make_faker(seed)
    args = {
        "warehouse_id": "WH-TGR04",
        "customer_id": "HJ",
        "carrier_id": "SICEPAT",
        "carrier_name": "SiCepat",
        "lines": fake_lines(fake, SKUS),
    }
    return fake_b2b_body(fake, **{**args, **overrides})


def walk_values(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from walk_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_values(item)
    else:
        yield value


# ------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bodies() -> None:
    assert b2c(7) == b2c(7)
    assert b2b(7) == b2b(7)


def test_different_seeds_give_different_bodies() -> None:
    assert b2c(7) != b2c(8)
    assert b2b(7) != b2b(8)


def test_a_faker_stream_gives_a_repeatable_sequence() -> None:
    def stream(seed: int) -> list[str]:
        fake = make_faker(seed)
        lines = [{"sku": "SKU-CAP-01", "qty_ordered": 1}]
        bodies = [
            fake_b2c_body(
                fake,
                warehouse_id="WH-TGR04",
                customer_id="CS674",
                tenant_name="Toko Contoh",
                express_code="JNE",
                lines=lines,
            )
            for _ in range(5)
        ]
        return [body["so_number"] for body in bodies]

    numbers = stream(3)
    assert numbers == stream(3)
    assert len(set(numbers)) == 5


# -------------------------------------------------------------------- B2C


def test_b2c_body_has_every_sample_field_in_order() -> None:
    body = b2c(1)

    assert list(body) == B2C_FIELDS
    assert set(body["details"][0]) == {"sku", "qty_ordered", "price"}


@pytest.mark.parametrize("seed", SEEDS)
def test_b2c_body_follows_the_field_rules(seed: int) -> None:
    body = b2c(seed)

    for field, limit in B2C_LIMITS.items():
        assert isinstance(body[field], str), field
        assert len(body[field]) <= limit, field

    assert ORDER_NUMBER.fullmatch(body["so_number"])
    assert SO_NUMBER.fullmatch(body["so_number"])
    assert body["so_number"].split("-")[0] == body["platform"]
    assert body["platform"] in PLATFORMS
    assert body["order_type"] == "SO"
    assert body["order_identification_code"] == 1
    assert B2C_TIME.fullmatch(body["order_time"])
    assert B2C_TIME.fullmatch(body["payment_time"])
    assert body["payment_time"] >= body["order_time"]
    assert ZIP.fullmatch(body["zip_code"])
    assert EMAIL.fullmatch(body["consignee_email"])
    assert MOBILE.fullmatch(body["consignee_phone"])
    assert None not in list(walk_values(body))


@pytest.mark.parametrize("seed", SEEDS)
def test_b2c_money_fields_add_up(seed: int) -> None:
    body = b2c(seed)
    goods = sum(line["price"] * line["qty_ordered"] for line in body["details"])

    assert body["order_price"] == goods
    if body["payment_type"] == 1:
        assert body["payment_way"] == "COD"
        assert body["cod_price"] == goods + body["postage"]
    else:
        assert body["payment_type"] == 0 and body["cod_price"] == 0


def test_b2c_body_keeps_given_lines_prices_and_so_number() -> None:
    lines = [
        {"sku": "SKU-TSHIRT-M", "qty_ordered": 2, "price": 75000},
        {"sku": "SKU-CAP-01", "qty_ordered": 1},
    ]
    body = b2c(5, lines=lines, so_number="SHOPEE-2207-000123")

    assert body["so_number"] == "SHOPEE-2207-000123"
    assert [line["sku"] for line in body["details"]] == ["SKU-TSHIRT-M", "SKU-CAP-01"]
    assert body["details"][0]["price"] == 75000
    assert body["details"][1]["price"] > 0
    assert lines[1] == {"sku": "SKU-CAP-01", "qty_ordered": 1}


def test_b2c_body_carries_the_callers_codes() -> None:
    body = b2c(2, warehouse_id="WH-BAL", express_code="SICEPAT")

    assert body["warehouse_id"] == "WH-BAL"
    assert body["customer_id"] == "CS674"
    assert body["tenant_name"] == "Toko Contoh"
    assert body["express_code"] == "SICEPAT"


# -------------------------------------------------------------------- B2B


def test_b2b_body_has_every_sample_field_in_order() -> None:
    body = b2b(1)

    assert list(body) == B2B_FIELDS
    for line in body["details"]:
        assert list(line) == B2B_LINE_FIELDS


@pytest.mark.parametrize("seed", SEEDS)
def test_b2b_body_follows_the_field_rules(seed: int) -> None:
    body = b2b(seed)

    for field, limit in B2B_LIMITS.items():
        assert isinstance(body[field], str), field
        assert len(body[field]) <= limit, field

    assert ORDER_NUMBER.fullmatch(body["doc_no"])
    assert body["order_type"] == "CSO"
    assert B2B_TIME.fullmatch(body["order_time"])
    assert type(body["consignee_zip"]) is int
    assert ZIP.fullmatch(str(body["consignee_zip"]))
    assert EMAIL.fullmatch(body["consignee_mail"])
    assert MOBILE.fullmatch(body["consignee_tel"])
    assert [line["line_no"] for line in body["details"]] == list(
        range(1, len(body["details"]) + 1)
    )
    assert None not in list(walk_values(body))


def test_b2b_body_keeps_the_given_doc_no_and_lines() -> None:
    lines = [{"sku": "SKU-TSHIRT-M", "qty_ordered": 40, "price": 60000}]
    body = b2b(4, lines=lines, doc_no="ERP-SO-0042")

    assert body["doc_no"] == "ERP-SO-0042"
    assert body["details"][0]["sku"] == "SKU-TSHIRT-M"
    assert body["details"][0]["qty_ordered"] == 40
    assert body["details"][0]["price"] == 60000
    assert body["carrier_id"] == "SICEPAT"
    assert body["carrier_name"] == "SiCepat"


# ------------------------------------------------------------------ lines


@pytest.mark.parametrize("seed", range(30))
def test_fake_lines_pick_distinct_skus_with_positive_quantities(seed: int) -> None:
    lines = fake_lines(make_faker(seed), SKUS, max_lines=3, max_qty=4)

    skus = [line["sku"] for line in lines]
    assert 1 <= len(lines) <= 3
    assert len(skus) == len(set(skus)) and set(skus) <= set(SKUS)
    assert all(1 <= line["qty_ordered"] <= 4 for line in lines)
