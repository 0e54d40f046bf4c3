"""Realistic fake sales-order bodies for scenarios and the demo stream.

Every function draws from the Faker it is given (``id_ID`` locale), including
its ``random`` source, so one seed gives the same bodies on every run. No
value depends on today's date unless the caller passes ``order_time``.

The bodies carry every field of the samples beside the contract (SPEC 3.1 for
B2C, 3.2 for B2B), optional ones as ``""`` or ``0``, and keep within the
length limits of the field tables.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from faker import Faker

LOCALE = "id_ID"

# Marketplaces a B2C order comes from (SPEC 3.1 ``platform``; ERP is for B2B).
B2C_PLATFORMS = ["SHOPEE", "TOKOPEDIA", "LAZADA", "TIKTOK", "BLIBLI", "BUKALAPAK"]

INTERNAL_ORDER_STATUSES = ["Pending", "Paid", "Siap Dikirim", "Perlu Dikirim"]

BUYER_REMARKS = [
    "",
    "",
    "tolong dibungkus rapi",
    "mohon kirim hari ini",
    "titip di pos satpam",
    "jangan dibanting, ada barang pecah belah",
    "warna sesuai foto ya kak",
]

B2B_NOTES = ["", "", "kirim sebelum jam 3 sore", "bongkar di dock 2", "hubungi PIC"]

POSTAGES = [0, 9000, 10000, 12000, 15000, 18000, 22000]

# Mobile prefixes of Telkomsel, Indosat, XL, Tri and Smartfren, after "08".
MOBILE_PREFIXES = ["11", "12", "13", "21", "22", "52", "53", "14", "15", "16"]
MOBILE_PREFIXES += ["17", "18", "19", "59", "77", "78", "95", "96", "97", "98"]
MOBILE_PREFIXES += ["81", "82", "83", "85", "87", "88"]

# Reserved domains: fake addresses must never reach a real mailbox.
MAIL_DOMAINS = ["example.com", "example.net", "example.org"]
LEGAL_FORMS = {"pt", "cv", "ud", "toko"}

# (city, province, first postcode, last postcode, districts). Faker's id_ID
# cities and provinces are drawn independently; a table keeps them matched.
# fmt: off
CITIES: list[tuple[str, str, int, int, list[str]]] = [
    ("Jakarta Pusat", "DKI Jakarta", 10110, 10750,
     ["Tanah Abang", "Menteng", "Gambir"]),
    ("Jakarta Selatan", "DKI Jakarta", 12110, 12980,
     ["Kebayoran Baru", "Tebet", "Cilandak"]),
    ("Jakarta Barat", "DKI Jakarta", 11110, 11850,
     ["Grogol Petamburan", "Kembangan", "Palmerah"]),
    ("Jakarta Timur", "DKI Jakarta", 13110, 13960,
     ["Cakung", "Duren Sawit", "Matraman"]),
    ("Tangerang", "Banten", 15111, 15158,
     ["Cipondoh", "Karawaci", "Ciledug"]),
    ("Tangerang Selatan", "Banten", 15310, 15437,
     ["Serpong", "Pamulang", "Ciputat"]),
    ("Bekasi", "Jawa Barat", 17111, 17158,
     ["Bekasi Barat", "Medan Satria", "Rawalumbu"]),
    ("Depok", "Jawa Barat", 16411, 16518,
     ["Beji", "Sukmajaya", "Cimanggis"]),
    ("Bogor", "Jawa Barat", 16111, 16168,
     ["Bogor Tengah", "Tanah Sareal", "Bogor Utara"]),
    ("Bandung", "Jawa Barat", 40111, 40295,
     ["Coblong", "Sukajadi", "Lengkong"]),
    ("Semarang", "Jawa Tengah", 50111, 50278,
     ["Semarang Tengah", "Banyumanik", "Tembalang"]),
    ("Surakarta", "Jawa Tengah", 57111, 57177,
     ["Laweyan", "Banjarsari", "Jebres"]),
    ("Yogyakarta", "DI Yogyakarta", 55111, 55283,
     ["Gondokusuman", "Umbulharjo", "Kotagede"]),
    ("Surabaya", "Jawa Timur", 60111, 60299,
     ["Gubeng", "Wonokromo", "Rungkut"]),
    ("Malang", "Jawa Timur", 65111, 65148,
     ["Klojen", "Lowokwaru", "Blimbing"]),
    ("Denpasar", "Bali", 80111, 80239,
     ["Denpasar Selatan", "Denpasar Barat", "Denpasar Timur"]),
    ("Medan", "Sumatera Utara", 20111, 20371,
     ["Medan Baru", "Medan Petisah", "Medan Johor"]),
    ("Palembang", "Sumatera Selatan", 30111, 30163,
     ["Ilir Timur I", "Seberang Ulu I", "Sako"]),
    ("Pekanbaru", "Riau", 28111, 28294,
     ["Sukajadi", "Tampan", "Marpoyan Damai"]),
    ("Padang", "Sumatera Barat", 25111, 25176,
     ["Padang Barat", "Padang Utara", "Kuranji"]),
    ("Pontianak", "Kalimantan Barat", 78111, 78244,
     ["Pontianak Kota", "Pontianak Selatan"]),
    ("Balikpapan", "Kalimantan Timur", 76111, 76136,
     ["Balikpapan Kota", "Balikpapan Utara"]),
    ("Banjarmasin", "Kalimantan Selatan", 70111, 70249,
     ["Banjarmasin Tengah", "Banjarmasin Utara"]),
    ("Makassar", "Sulawesi Selatan", 90111, 90245,
     ["Panakkukang", "Tamalate", "Rappocini"]),
    ("Manado", "Sulawesi Utara", 95111, 95256,
     ["Wenang", "Malalayang", "Sario"]),
]
# fmt: on

# The order-time window used when the caller gives none: fixed, so that the
# same seed gives the same times whatever day it is.
DEFAULT_WINDOW_START = dt.datetime(2022, 7, 1, 7, 0, 0)
DEFAULT_WINDOW_DAYS = 180

JAKARTA = dt.timezone(dt.timedelta(hours=7))

# Length limits of the generated fields, from the field tables (SPEC 3.1,
# 3.2), with the B2C limits kept for the B2B address parts, which have none.
# Values the caller passes in (numbers, codes, names) are left as given, so a
# scenario can still send a deliberately bad one.
B2C_LIMITS = {
    "consignee": 200,
    "consignee_phone": 300,
    "consignee_email": 200,
    "consignee_full_address": 200,
    "consignee_state": 30,
    "consignee_province": 50,
    "consignee_city": 50,
}
B2B_LIMITS = {
    "consignee_id": 50,
    "consignee_name": 50,
    "consignee_tel": 30,
    "consignee_mail": 100,
    "consignee_address": 200,
    "consignee_state": 30,
    "consignee_province": 50,
    "consignee_city": 50,
    "notes": 200,
}


def make_faker(seed: int) -> Faker:
    """A Faker for Indonesian data whose every draw follows ``seed``."""
    fake = Faker(LOCALE)
    fake.seed_instance(seed)
    return fake


def fake_b2c_body(
    fake: Faker,
    *,
    warehouse_id: str,
    customer_id: str,
    tenant_name: str,
    express_code: str,
    lines: list[dict],
    so_number: str | None = None,
    order_time: dt.datetime | None = None,
) -> dict:
    """A Create Sales Order B2C body (SPEC 3.1), in the sample's field order.

    ``lines`` are ``{"sku", "qty_ordered"}`` with an optional ``price``; a
    missing price is made up. ``order_time`` is Jakarta wall-clock time.
    """
    rng = fake.random
    platform = rng.choice(B2C_PLATFORMS)
    ordered = order_time or _order_time(fake)
    paid = ordered + dt.timedelta(seconds=rng.randrange(30, 2 * 3600))

    if so_number is None:
        so_number = f"{platform}-{ordered:%y%m}-{rng.randrange(1, 1_000_000):06d}"

    name = _person_name(fake)
    place = _place(fake)
    details = _priced_lines(fake, lines)
    order_price = sum(line["price"] * line["qty_ordered"] for line in details)
    postage = rng.choice(POSTAGES)
    is_cod = rng.random() < 0.2

    body = {
        "warehouse_id": warehouse_id,
        "customer_id": customer_id,
        "so_number": so_number,
        "order_type": "SO",
        "order_source": "",
        "platform": platform,
        "order_identification_code": 1,
        "internal_order_status": rng.choice(INTERNAL_ORDER_STATUSES),
        "express_code": express_code,
        "tenant_name": tenant_name,
        "seller_nick": "",
        "consignee": name,
        "consignee_phone": _mobile(fake),
        "consignee_mobile": "",
        "consignee_email": _email(fake, name),
        "consignee_full_address": place["address"],
        "consignee_state": "Indonesia",
        "consignee_province": place["province"],
        "consignee_city": place["city"],
        "area": "",
        "town": "",
        "zip_code": str(place["zip"]),
        "consignee_doc_type": 1,
        "consignee_doc_no": "",
        "seller_flag": "",
        "buyer_remark": rng.choice(BUYER_REMARKS),
        "seller_remark": "",
        "order_price": order_price,
        "pre_tax_price": 0,
        "tax_price": 0,
        "discount_price": 0,
        "postage": postage,
        "cod_price": order_price + postage if is_cod else 0,
        "order_time": f"{ordered:%Y-%m-%d %H:%M:%S}",
        "payment_time": f"{paid:%Y-%m-%d %H:%M:%S}",
        "payment_type": 1 if is_cod else 0,
        "payment_way": "COD" if is_cod else "",
        "details": [
            {
                "sku": line["sku"],
                "qty_ordered": line["qty_ordered"],
                "price": line["price"],
            }
            for line in details
        ],
    }

    return _clip_fields(body, B2C_LIMITS)


def fake_b2b_body(
    fake: Faker,
    *,
    warehouse_id: str,
    customer_id: str,
    carrier_id: str,
    carrier_name: str,
    lines: list[dict],
    doc_no: str | None = None,
    order_time: dt.datetime | None = None,
) -> dict:
    """A Create Sales Order B2B body (SPEC 3.2), in the sample's field order.

    ``order_time`` is Jakarta wall-clock time; the body carries it in UTC
    with a ``Z``, as Shipper's B2B create expects.
    """
    rng = fake.random
    ordered = (order_time or _order_time(fake)).replace(tzinfo=JAKARTA)
    ordered_utc = ordered.astimezone(dt.UTC)

    if doc_no is None:
        doc_no = f"ERP-SO-{rng.randrange(1, 100_000):05d}"

    company = _company_name(fake)
    place = _place(fake)
    details = _priced_lines(fake, lines)

    body = {
        "warehouse_id": warehouse_id,
        "customer_id": customer_id,
        "order_type": "CSO",
        "doc_no": doc_no,
        "order_time": f"{ordered_utc:%Y-%m-%dT%H:%M:%SZ}",
        "consignee_id": f"CUST-{rng.randrange(1, 10_000):04d}",
        "consignee_name": company,
        "consignee_tel": _mobile(fake),
        "consignee_mail": _email(fake, company),
        "consignee_zip": place["zip"],
        "consignee_address": place["address"],
        "consignee_state": "ID",
        "consignee_province": place["province"],
        "consignee_city": place["city"],
        "delivery_no": "",
        "carrier_id": carrier_id,
        "carrier_name": carrier_name,
        "priority": "",
        "notes": rng.choice(B2B_NOTES),
        "details": [
            {
                "line_no": number,
                "sku": line["sku"],
                "qty_ordered": line["qty_ordered"],
                "price": line["price"],
                "mfg_date": "",
                "exp_date": "",
                "batch_no": "",
                "serial_no": "",
            }
            for number, line in enumerate(details, start=1)
        ],
    }

    return _clip_fields(body, B2B_LIMITS)


def fake_lines(
    fake: Faker, skus: list[str], *, max_lines: int = 3, max_qty: int = 5
) -> list[dict]:
    """One to ``max_lines`` order lines over distinct SKUs from ``skus``."""
    rng = fake.random
    count = rng.randint(1, min(max_lines, len(skus)))
    chosen = rng.sample(skus, count)

    return [{"sku": sku, "qty_ordered": rng.randint(1, max_qty)} for sku in chosen]


def _order_time(fake: Faker) -> dt.datetime:
    seconds = fake.random.randrange(DEFAULT_WINDOW_DAYS * 24 * 3600)
    return DEFAULT_WINDOW_START + dt.timedelta(seconds=seconds)


def _priced_lines(fake: Faker, lines: list[dict]) -> list[dict]:
    """Copies of ``lines`` with a price each, in whole thousands of rupiah."""
    priced = []

    for line in lines:
        price = line.get("price")
        if price is None:
            price = fake.random.randrange(15, 300) * 1000

        priced.append({**line, "price": price})

    return priced


def _person_name(fake: Faker) -> str:
    # first_name + last_name rather than name(): no titles such as "dr." or
    # "S.Gz", which would only get in the way of the e-mail address.
    return f"{fake.first_name()} {fake.last_name()}"


def _company_name(fake: Faker) -> str:
    kind = fake.random.choice(["PT", "CV", "Toko"])
    trade = fake.random.choice(["Retail", "Makmur", "Sentosa", "Jaya", "Mart"])
    return f"{kind} {fake.last_name()} {trade}"


def _mobile(fake: Faker) -> str:
    """An Indonesian mobile number such as ``081234567890``."""
    prefix = fake.random.choice(MOBILE_PREFIXES)
    rest = "".join(
        str(fake.random.randrange(10)) for _ in range(fake.random.randint(7, 9))
    )
    return f"08{prefix}{rest}"


def _email(fake: Faker, name: str) -> str:
    """An address on a reserved example domain, made from ``name``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore")
    words = re.findall(r"[a-z0-9]+", ascii_name.decode().lower())
    words = [word for word in words if word not in LEGAL_FORMS] or ["pelanggan"]
    local = ".".join(words[:2])

    return f"{local}{fake.random.randrange(100)}@{fake.random.choice(MAIL_DOMAINS)}"


def _place(fake: Faker) -> dict:
    """A street address with a matching district, city, province and zip."""
    city, province, first_zip, last_zip, districts = fake.random.choice(CITIES)
    district = fake.random.choice(districts)
    street = fake.street_address()

    return {
        "address": f"{street}, {district}, {city}, {province}",
        "city": city,
        "province": province,
        "zip": fake.random.randint(first_zip, last_zip),
    }


def _clip_fields(body: dict, limits: dict[str, int]) -> dict:
    """Cut string fields to Shipper's length limits."""
    for field, limit in limits.items():
        value = body.get(field)
        if isinstance(value, str) and len(value) > limit:
            body[field] = value[:limit].rstrip()

    return body
