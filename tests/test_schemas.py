"""The request schemas: what each table of the contract accepts and refuses."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from simulator.errors import InvalidInput
from simulator.schemas import (
    AdvanceSchema,
    B2BCreateSchema,
    B2CCreateSchema,
    CancelSchema,
    ClientSchema,
    ExpressQuerySchema,
    ListQuerySchema,
    StockQuerySchema,
    StockSetSchema,
    StockWarehouseQuerySchema,
    _Body,
    _Lean,
    load_body,
    load_query,
)

# Shipper's documented sample requests, as the README's tour uses them.
SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "samples"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def b2c() -> dict:
    return sample("create_b2c_request.json")


@pytest.fixture
def b2b() -> dict:
    return sample("create_b2b_request.json")


@pytest.fixture
def client_body() -> dict:
    return {
        "api_key": "key-toko-contoh",
        "client_id": 112233,
        "tenant_name": "Toko Contoh",
        "oms_customer_id": "CS674",
        "wms_customer_id": "HJ",
        "warehouses": ["WH-TGR04"],
    }


def refusal(schema, data) -> str:
    """The reason ``load_body`` gives for refusing ``data``."""
    with pytest.raises(InvalidInput) as caught:
        load_body(schema, data)
    assert caught.value.code == 810
    return caught.value.reason


def query_refusal(schema, args) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_query(schema, args)
    return caught.value.reason


# -- The samples --------------------------------------------------------------


def test_b2c_sample_loads_with_every_field_and_numbered_lines(b2c):
    order = load_body(B2CCreateSchema, b2c)

    assert order["so_number"] == "SHOPEE-2207-000123"
    assert order["platform"] == "SHOPEE"
    assert order["zip_code"] == "10250"
    assert [line["line_no"] for line in order["details"]] == [1, 2]
    assert order["details"][0] == {
        "sku": "SKU-TSHIRT-M",
        "qty_ordered": 2,
        "price": 75000,
        "line_no": 1,
    }


def test_b2b_sample_loads(b2b):
    order = load_body(B2BCreateSchema, b2b)

    assert order["doc_no"] == "ERP-SO-0042"
    assert order["order_type"] == "CSO"
    assert order["consignee_zip"] == "12345"
    assert [line["line_no"] for line in order["details"]] == [1, 2]


def test_cancel_sample_loads_as_the_cancellation_fields():
    assert load_body(CancelSchema, sample("cancel_request.json")) == {
        "order_no": "SHOPEE-2207-000123",
        "warehouse_id": "WH-TGR04",
        "cancel_reason": "cancelled from marketplace",
    }


# -- Defaults and unknown fields ----------------------------------------------


def test_b2c_optional_fields_are_filled_with_their_empty_values(b2c):
    for name in ("order_type", "platform", "area", "order_price", "payment_type"):
        del b2c[name]
    del b2c["details"][0]["price"]

    order = load_body(B2CCreateSchema, b2c)

    assert order["order_type"] == "SO"
    assert order["platform"] == ""
    assert order["area"] == ""
    assert order["order_price"] == 0
    assert order["payment_type"] == 0
    assert order["details"][0]["price"] == 0


def test_b2b_optional_line_fields_default_to_empty(b2b):
    b2b["details"] = [{"line_no": 7, "sku": "SKU-A", "qty_ordered": 1}]

    line = load_body(B2BCreateSchema, b2b)["details"][0]

    assert line == {
        "line_no": 7,
        "sku": "SKU-A",
        "qty_ordered": 1,
        "price": 0,
        "mfg_date": "",
        "exp_date": "",
        "batch_no": "",
        "serial_no": "",
    }


def test_unknown_fields_are_ignored(b2c):
    b2c["something_new"] = {"nested": True}
    b2c["details"][0]["colour"] = "red"

    order = load_body(B2CCreateSchema, b2c)

    assert "something_new" not in order
    assert "colour" not in order["details"][0]


# -- The body itself ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"), [([], "list"), ("text", "str"), (None, "None"), (3, "int")]
)
def test_a_body_that_is_not_an_object_is_refused(data, kind):
    assert refusal(B2CCreateSchema, data) == f"body: expected a JSON object, got {kind}"


def test_b2c_accepts_the_outbound_wrapper(b2c):
    wrapped = load_body(B2CCreateSchema, {"data": {"outbound": b2c}})

    assert wrapped == load_body(B2CCreateSchema, b2c)


def test_b2c_wrapper_must_hold_an_object():
    reason = refusal(B2CCreateSchema, {"data": {"outbound": []}})

    assert reason == "data.outbound: expected a JSON object, got list"


def test_a_flat_cancel_body_is_refused_and_the_wrapper_is_named():
    flat = sample("cancel_request.json")["data"]["cancellation"]

    reason = refusal(CancelSchema, flat)

    assert reason.startswith('body: expected {"data": {"cancellation": {...}}}')
    assert "order_no" in reason


def test_cancel_wrapper_needs_the_cancellation_object():
    assert refusal(CancelSchema, {"data": {}}) == "data.cancellation: is required"
    assert refusal(CancelSchema, {"data": "x"}) == (
        "data: expected a JSON object, got str"
    )


def test_cancel_reason_is_at_most_50_characters():
    body = sample("cancel_request.json")
    body["data"]["cancellation"]["cancel_reason"] = "x" * 50
    assert load_body(CancelSchema, body)["cancel_reason"] == "x" * 50

    body["data"]["cancellation"]["cancel_reason"] = "x" * 51
    reason = refusal(CancelSchema, body)
    assert reason.startswith(
        "data.cancellation.cancel_reason: must be at most 50 characters, got 51"
    )


def test_cancel_needs_all_three_fields():
    reason = refusal(CancelSchema, {"data": {"cancellation": {"order_no": "SO1"}}})

    assert reason == (
        "data.cancellation.cancel_reason: is required; "
        "data.cancellation.warehouse_id: is required"
    )


# -- Strict types -------------------------------------------------------------


def test_a_number_where_a_string_belongs_is_refused(b2c):
    b2c["zip_code"] = 10250

    assert refusal(B2CCreateSchema, b2c) == "zip_code: must be a string, got 10250"


def test_a_string_where_an_int_belongs_is_refused(b2c):
    b2c["details"][0]["qty_ordered"] = "2"

    assert refusal(B2CCreateSchema, b2c) == (
        "details[0].qty_ordered: must be a whole number, got '2'"
    )


def test_a_boolean_is_not_an_int(b2c):
    b2c["order_identification_code"] = True

    assert refusal(B2CCreateSchema, b2c) == (
        "order_identification_code: must be 1, got True"
    )


def test_a_float_is_not_a_whole_number(b2b):
    b2b["details"][0]["line_no"] = 1.0

    assert refusal(B2BCreateSchema, b2b) == (
        "details[0].line_no: must be a whole number, got 1.0"
    )


@pytest.mark.parametrize("value", ["185000", True, float("nan"), float("inf")])
def test_money_must_be_a_finite_number(b2c, value):
    b2c["order_price"] = value

    assert refusal(B2CCreateSchema, b2c).startswith("order_price: must be a")


def test_money_may_be_a_float_but_not_negative(b2c):
    b2c["postage"] = 10000.5
    assert load_body(B2CCreateSchema, b2c)["postage"] == 10000.5

    b2c["postage"] = -1
    assert refusal(B2CCreateSchema, b2c) == (
        "postage: must be a number of 0 or more, got -1"
    )


def test_money_has_an_upper_bound(b2c):
    b2c["cod_price"] = 10**15
    assert load_body(B2CCreateSchema, b2c)["cod_price"] == 10**15

    b2c["cod_price"] = 10**15 + 1
    assert refusal(B2CCreateSchema, b2c).startswith("cod_price: must be a number from")


@pytest.mark.parametrize(
    "field", ["so_number", "consignee_mobile", "order_time", "details", "platform"]
)
def test_null_is_refused(b2c, field):
    b2c[field] = None

    reason = refusal(B2CCreateSchema, b2c)

    assert reason.startswith(f"{field}: must be")
    assert reason.endswith("got None")


def test_null_is_refused_for_b2b_numbers(b2b):
    b2b["details"][0]["price"] = None

    assert refusal(B2BCreateSchema, b2b) == (
        "details[0].price: must be a number, got None"
    )


# -- Required and empty -------------------------------------------------------


def test_a_missing_required_field_is_named(b2c):
    del b2c["express_code"]

    assert refusal(B2CCreateSchema, b2c) == "express_code: is required"


@pytest.mark.parametrize("value", ["", "   "])
def test_a_required_string_must_not_be_empty(b2c, value):
    b2c["consignee"] = value

    assert refusal(B2CCreateSchema, b2c) == (
        f"consignee: must not be empty, got {value!r}"
    )


def test_an_optional_string_may_be_empty(b2c):
    b2c["seller_remark"] = ""

    assert load_body(B2CCreateSchema, b2c)["seller_remark"] == ""


def test_details_must_not_be_empty(b2c):
    b2c["details"] = []

    assert refusal(B2CCreateSchema, b2c) == ("details: must not be empty, got []")


def test_details_hold_at_most_500_lines(b2c):
    line = {"sku": "SKU-A", "qty_ordered": 1}
    b2c["details"] = [dict(line) for _ in range(500)]
    assert len(load_body(B2CCreateSchema, b2c)["details"]) == 500

    b2c["details"].append(dict(line))
    assert refusal(B2CCreateSchema, b2c) == (
        "details: must hold at most 500 lines, got 501"
    )


def test_a_line_that_is_not_an_object_is_named_by_index(b2c):
    b2c["details"].append("SKU-A x 1")

    assert refusal(B2CCreateSchema, b2c) == (
        "details[2]: expected a JSON object, got str"
    )


# -- Lengths at the boundary --------------------------------------------------


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
        ("consignee_phone", 300),
        ("consignee_state", 30),
        ("consignee_city", 50),
        ("zip_code", 20),
    ],
)
def test_b2c_lengths_take_n_characters_and_refuse_n_plus_1(b2c, field, limit):
    b2c[field] = "A" * limit
    assert load_body(B2CCreateSchema, b2c)[field] == "A" * limit

    b2c[field] = "A" * (limit + 1)
    assert refusal(B2CCreateSchema, b2c).startswith(
        f"{field}: must be at most {limit} characters, got {limit + 1}"
    )


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
def test_b2b_lengths_take_n_characters_and_refuse_n_plus_1(b2b, field, limit):
    b2b[field] = "A" * limit
    assert load_body(B2BCreateSchema, b2b)[field] == "A" * limit

    b2b[field] = "A" * (limit + 1)
    assert refusal(B2BCreateSchema, b2b).startswith(
        f"{field}: must be at most {limit} characters, got {limit + 1}"
    )


def test_line_sku_is_at_most_50_characters(b2b):
    b2b["details"][1]["sku"] = "S" * 50
    assert load_body(B2BCreateSchema, b2b)["details"][1]["sku"] == "S" * 50

    b2b["details"][1]["sku"] = "S" * 51
    assert refusal(B2BCreateSchema, b2b).startswith(
        "details[1].sku: must be at most 50 characters, got 51"
    )


def test_consignee_mail_of_100_characters_is_accepted_and_101_refused(b2b):
    domain = "@example.com"
    b2b["consignee_mail"] = "a" * (100 - len(domain)) + domain
    assert load_body(B2BCreateSchema, b2b)["consignee_mail"] == b2b["consignee_mail"]

    b2b["consignee_mail"] = "a" * (101 - len(domain)) + domain
    assert refusal(B2BCreateSchema, b2b).startswith(
        "consignee_mail: must be at most 100 characters, got 101"
    )


def test_a_long_bad_value_is_cut_short_in_the_reason(b2c):
    b2c["so_number"] = "#" * 200

    reason = refusal(B2CCreateSchema, b2c)

    assert reason.endswith("...")
    assert len(reason) < 140


# -- Order numbers ------------------------------------------------------------


@pytest.mark.parametrize("number", ["SO#1", "SO 1", "SO/1", "SÖ1", "SO.1"])
def test_so_number_allows_only_letters_digits_dash_and_underscore(b2c, number):
    b2c["so_number"] = number

    assert refusal(B2CCreateSchema, b2c) == (
        f"so_number: only letters, digits, '-' and '_' are allowed, got {number!r}"
    )


def test_order_numbers_with_dash_and_underscore_are_accepted(b2c, b2b):
    b2c["so_number"] = "SO_2207-0001"
    b2b["doc_no"] = "ERP_SO-42"

    assert load_body(B2CCreateSchema, b2c)["so_number"] == "SO_2207-0001"
    assert load_body(B2BCreateSchema, b2b)["doc_no"] == "ERP_SO-42"


def test_doc_no_refuses_special_characters(b2b):
    b2b["doc_no"] = "ERP*42"

    assert refusal(B2BCreateSchema, b2b).startswith("doc_no: only letters, digits")


# -- B2C specifics ------------------------------------------------------------


def test_b2c_accepts_the_older_field_names(b2c):
    del b2c["consignee_mobile"]
    del b2c["zip_code"]
    b2c["mobile"] = "081299999999"
    b2c["zipcode"] = "10110"

    order = load_body(B2CCreateSchema, b2c)

    assert order["consignee_mobile"] == "081299999999"
    assert order["zip_code"] == "10110"
    assert "mobile" not in order
    assert "zipcode" not in order


def test_b2c_older_and_newer_names_must_agree(b2c):
    b2c["zipcode"] = "99999"

    assert refusal(B2CCreateSchema, b2c).startswith(
        "zipcode: is the older name of zip_code"
    )


def test_b2c_needs_a_zip_code_under_one_name_or_the_other(b2c):
    del b2c["zip_code"]

    assert refusal(B2CCreateSchema, b2c) == (
        "zip_code: is required (or its older name zipcode)"
    )


def test_a_missing_zip_code_is_reported_with_the_other_failures(b2c):
    del b2c["zip_code"]
    del b2c["consignee"]

    assert refusal(B2CCreateSchema, b2c) == (
        "consignee: is required; zip_code: is required (or its older name zipcode)"
    )


def test_b2c_platform_is_matched_in_any_case_and_stored_upper_case(b2c):
    b2c["platform"] = "tokopedia"
    assert load_body(B2CCreateSchema, b2c)["platform"] == "TOKOPEDIA"

    b2c["platform"] = "AMAZON"
    assert refusal(B2CCreateSchema, b2c).startswith(
        "platform: must be one of 'LAZADA', 'SHOPEE'"
    )


def test_b2c_order_type_is_so_or_tt(b2c):
    b2c["order_type"] = "TT"
    assert load_body(B2CCreateSchema, b2c)["order_type"] == "TT"

    b2c["order_type"] = "CSO"
    assert refusal(B2CCreateSchema, b2c) == (
        "order_type: must be one of 'SO', 'TT', got 'CSO'"
    )


def test_b2c_order_identification_code_must_be_1(b2c):
    b2c["order_identification_code"] = 2

    assert refusal(B2CCreateSchema, b2c) == (
        "order_identification_code: must be 1, got 2"
    )


@pytest.mark.parametrize(
    ("field", "bad"), [("consignee_doc_type", 4), ("payment_type", 2)]
)
def test_b2c_coded_ints_take_only_their_codes(b2c, field, bad):
    b2c[field] = bad

    assert refusal(B2CCreateSchema, b2c).startswith(f"{field}: must be one of 0, 1")


@pytest.mark.parametrize(
    "value", ["2022-07-15T11:58:40Z", "2022-7-15 11:58:40", "2022-02-30 10:00:00"]
)
def test_b2c_times_must_be_real_and_in_shippers_layout(b2c, value):
    b2c["payment_time"] = value

    reason = refusal(B2CCreateSchema, b2c)

    assert reason.startswith(
        'payment_time: must be "" or a time as yyyy-MM-dd HH:mm:ss'
    )
    assert reason.endswith(repr(value))


def test_b2c_time_may_be_empty(b2c):
    b2c["order_time"] = ""

    assert load_body(B2CCreateSchema, b2c)["order_time"] == ""


def test_qty_ordered_must_be_above_zero(b2c):
    b2c["details"][0]["qty_ordered"] = -1

    assert refusal(B2CCreateSchema, b2c) == (
        "details[0].qty_ordered: must be a whole number above 0, got -1"
    )


def test_qty_ordered_has_an_upper_bound(b2c):
    b2c["details"][0]["qty_ordered"] = 1_000_000_000
    assert load_body(B2CCreateSchema, b2c)["details"][0]["qty_ordered"] == 10**9

    b2c["details"][0]["qty_ordered"] = 1_000_000_001
    assert refusal(B2CCreateSchema, b2c) == (
        "details[0].qty_ordered: must be a whole number from 1 to 1000000000, "
        "got 1000000001"
    )


def test_a_huge_number_is_refused_without_printing_it(b2c):
    b2c["details"][0]["qty_ordered"] = 10**5000

    reason = refusal(B2CCreateSchema, b2c)

    assert reason == (
        "details[0].qty_ordered: must be a whole number from 1 to 1000000000, "
        "got <a number too long to show>"
    )


# -- B2B specifics ------------------------------------------------------------


def test_b2b_so_is_accepted_and_stored_as_cso(b2b):
    b2b["order_type"] = "SO"

    assert load_body(B2BCreateSchema, b2b)["order_type"] == "CSO"


@pytest.mark.parametrize("order_type", ["RT", "TT", "CD"])
def test_b2b_takes_its_other_order_types(b2b, order_type):
    b2b["order_type"] = order_type

    assert load_body(B2BCreateSchema, b2b)["order_type"] == order_type


def test_b2b_order_type_is_case_sensitive(b2b):
    b2b["order_type"] = "cso"

    assert refusal(B2BCreateSchema, b2b).startswith(
        "order_type: must be one of 'CSO', 'RT', 'TT', 'CD'"
    )


@pytest.mark.parametrize(
    ("given", "stored"), [(12345, "12345"), ("12345", "12345"), ("01234", "01234")]
)
def test_b2b_zip_is_five_digits_as_a_number_or_a_string(b2b, given, stored):
    b2b["consignee_zip"] = given

    assert load_body(B2BCreateSchema, b2b)["consignee_zip"] == stored


@pytest.mark.parametrize(
    "given", [1234, 123456, "1234", "123456", "1234a", True, 12345.0]
)
def test_b2b_zip_of_another_form_is_refused(b2b, given):
    b2b["consignee_zip"] = given

    assert refusal(B2BCreateSchema, b2b) == (
        "consignee_zip: must be 5 digits, as a number (12345) or a string ('01234'), "
        f"got {given!r}"
    )


@pytest.mark.parametrize(
    "value",
    [
        "2021-05-07 00:00:00",
        "2021-05-07T00:00:00",
        "2021-05-07T00:00:00+07:00",
        "2021-02-29T00:00:00Z",
        "",
    ],
)
def test_b2b_order_time_must_be_a_real_utc_time_with_z(b2b, value):
    b2b["order_time"] = value

    assert refusal(B2BCreateSchema, b2b).startswith(
        "order_time: must be a time as yyyy-MM-ddTHH:mm:ssZ"
    )


def test_b2b_consignee_mail_must_look_like_an_address(b2b):
    b2b["consignee_mail"] = "gudang.example.com"

    assert refusal(B2BCreateSchema, b2b) == (
        "consignee_mail: must be an e-mail address like name@example.com, "
        "got 'gudang.example.com'"
    )


def test_b2b_duplicate_line_no_is_refused(b2b):
    b2b["details"][1]["line_no"] = 1

    assert refusal(B2BCreateSchema, b2b) == (
        "details[1].line_no: must be unique within the order, got 1 again "
        "(first at details[0])"
    )


def test_b2b_line_dates_must_be_real_dates(b2b):
    b2b["details"][0]["mfg_date"] = "2022-01-01"
    b2b["details"][0]["exp_date"] = "2023-02-29"

    assert refusal(B2BCreateSchema, b2b).startswith(
        'details[0].exp_date: must be "" or a date as yyyy-MM-dd (a real one)'
    )


def test_b2b_line_no_has_bounds(b2b):
    b2b["details"][0]["line_no"] = 0

    assert refusal(B2BCreateSchema, b2b) == (
        "details[0].line_no: must be a whole number above 0, got 0"
    )


# -- The reason ---------------------------------------------------------------


def test_several_failures_are_joined_in_path_order(b2c):
    b2c["so_number"] = "SO#1"
    b2c["details"][1]["qty_ordered"] = 0
    b2c["details"][0]["sku"] = 5
    b2c["area"] = 1

    assert refusal(B2CCreateSchema, b2c) == "; ".join(
        [
            "area: must be a string, got 1",
            "details[0].sku: must be a string, got 5",
            "details[1].qty_ordered: must be a whole number above 0, got 0",
            "so_number: only letters, digits, '-' and '_' are allowed, got 'SO#1'",
        ]
    )


def test_line_indexes_sort_as_numbers(b2c):
    b2c["details"] = [{"sku": "A", "qty_ordered": 1} for _ in range(12)]
    b2c["details"][2]["qty_ordered"] = 0
    b2c["details"][10]["qty_ordered"] = 0

    reason = refusal(B2CCreateSchema, b2c)

    assert reason.index("details[2]") < reason.index("details[10]")


def test_a_long_list_of_failures_is_cut_short(b2c):
    b2c["details"] = [{"sku": "A", "qty_ordered": 0} for _ in range(100)]

    reason = refusal(B2CCreateSchema, b2c)

    assert reason.count("; ") == 20
    assert reason.endswith("and 80 more")


def test_the_sample_is_left_untouched_by_loading(b2c):
    before = copy.deepcopy(b2c)

    load_body(B2CCreateSchema, {"data": {"outbound": b2c}})

    assert b2c == before


# -- List query ---------------------------------------------------------------


def test_list_query_defaults():
    assert load_query(ListQuerySchema, MultiDict()) == {
        "page": 1,
        "limit": 10,
        "created_start": None,
        "created_end": None,
        "updated_start": None,
        "updated_end": None,
        "warehouse_id": "",
        "order_type": "",
        "so_status": "",
    }


def test_list_query_parses_strings_into_numbers_and_dates():
    query = load_query(
        ListQuerySchema,
        MultiDict(
            {
                "page": "2",
                "limit": "100",
                "created_start": "2022-05-01",
                "created_end": "2022-05-31",
                "so_status": "SHIPPED",
                "order_type": "RT",
                "warehouse_id": "WH-TGR04",
            }
        ),
    )

    assert query["page"] == 2
    assert query["limit"] == 100
    assert query["created_start"] == date(2022, 5, 1)
    assert query["created_end"] == date(2022, 5, 31)
    assert query["so_status"] == "SHIPPED"
    assert query["order_type"] == "RT"


def test_list_query_accepts_a_plain_dict():
    assert load_query(ListQuerySchema, {"page": "3"})["page"] == 3


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "page: must be a whole number, got 'abc'"),
        ("1.5", "page: must be a whole number, got '1.5'"),
        ("0", "page: must be a whole number above 0, got '0'"),
        ("-2", "page: must be a whole number above 0, got '-2'"),
    ],
)
def test_list_query_page_must_be_a_whole_number_from_1(value, reason):
    assert query_refusal(ListQuerySchema, MultiDict({"page": value})) == reason


@pytest.mark.parametrize(
    ("limit", "accepted"), [("1", True), ("100", True), ("0", False), ("101", False)]
)
def test_list_query_limit_is_from_1_to_100(limit, accepted):
    args = MultiDict({"limit": limit})

    if accepted:
        assert load_query(ListQuerySchema, args)["limit"] == int(limit)
    else:
        assert query_refusal(ListQuerySchema, args).startswith("limit: must be")


def test_an_empty_query_value_counts_as_not_given():
    query = load_query(ListQuerySchema, MultiDict({"page": "", "created_start": ""}))

    assert query["page"] == 1
    assert query["created_start"] is None


@pytest.mark.parametrize("value", ["01-05-2022", "2022-5-1", "2022/05/01"])
def test_list_query_dates_must_be_in_shippers_layout(value):
    assert query_refusal(ListQuerySchema, MultiDict({"updated_end": value})) == (
        f"updated_end: must be a date as yyyy-MM-dd, got {value!r}"
    )


@pytest.mark.parametrize("value", ["2022-13-01", "2022-02-30", "2022-00-10"])
def test_list_query_dates_must_be_real_dates(value):
    assert query_refusal(ListQuerySchema, MultiDict({"updated_end": value})) == (
        f"updated_end: must be a date as yyyy-MM-dd (a real one), got {value!r}"
    )


def test_list_query_start_after_end_is_refused():
    args = MultiDict({"created_start": "2022-05-03", "created_end": "2022-05-01"})

    assert query_refusal(ListQuerySchema, args) == (
        "created_start: must not be after created_end (2022-05-01), got '2022-05-03'"
    )


def test_list_query_start_equal_to_end_is_one_day():
    args = MultiDict({"updated_start": "2022-05-01", "updated_end": "2022-05-01"})

    assert load_query(ListQuerySchema, args)["updated_start"] == date(2022, 5, 1)


@pytest.mark.parametrize(
    ("name", "value"),
    [("so_status", "shipped"), ("so_status", "PendingAudit"), ("order_type", "CSO")],
)
def test_list_query_enums_refuse_other_values(name, value):
    assert query_refusal(ListQuerySchema, MultiDict({name: value})).startswith(
        f"{name}: must be one of"
    )


def test_list_query_takes_the_first_of_repeated_values():
    args = MultiDict([("page", "2"), ("page", "5")])

    assert load_query(ListQuerySchema, args)["page"] == 2


# -- Express and stock queries ------------------------------------------------


def test_express_query_type_is_matched_in_any_case():
    query = load_query(ExpressQuerySchema, MultiDict({"express_type": "wms"}))

    assert query == {
        "page": 1,
        "limit": 10,
        "express_code": "",
        "express_name": "",
        "express_type": "WMS",
    }


def test_express_query_refuses_another_type_and_a_large_limit():
    args = MultiDict({"express_type": "B2B", "limit": "500"})

    assert query_refusal(ExpressQuerySchema, args) == (
        "express_type: must be one of 'OMS', 'WMS', in any case, got 'B2B'; "
        "limit: must be a whole number from 1 to 100, got '500'"
    )


def test_stock_query_merges_sku_and_repeated_skus():
    args = MultiDict(
        [
            ("warehouse_code", "WH-TGR04"),
            ("stock_type", "OMSWMS"),
            ("sku", "SKU-A"),
            ("skus", "SKU-B"),
            ("skus", "SKU-A"),
        ]
    )

    assert load_query(StockQuerySchema, args) == {
        "page": 1,
        "limit": 10,
        "warehouse_code": "WH-TGR04",
        "stock_type": "OMSWMS",
        "skus": ["SKU-A", "SKU-B"],
    }


def test_stock_query_needs_warehouse_code_and_stock_type():
    assert query_refusal(StockQuerySchema, MultiDict({"stock_type": "XX"})) == (
        "stock_type: must be one of 'OMS', 'WMS', 'OMSWMS', got 'XX'; "
        "warehouse_code: is required"
    )


def test_stock_query_takes_20_skus_and_refuses_21():
    base = [("warehouse_code", "WH-TGR04"), ("stock_type", "WMS")]
    twenty = [("skus", f"SKU-{i}") for i in range(20)]
    assert len(load_query(StockQuerySchema, MultiDict(base + twenty))["skus"]) == 20

    reason = query_refusal(StockQuerySchema, MultiDict(base + twenty + [("sku", "X")]))
    assert reason == "skus: must hold at most 20 SKUs (sku and skus together), got 21"


def test_stock_warehouse_query_with_no_skus_means_all():
    assert load_query(StockWarehouseQuerySchema, MultiDict()) == {
        "page": 1,
        "limit": 10,
        "skus": [],
    }


def test_stock_warehouse_query_takes_at_most_20_skus():
    args = MultiDict([("skus", f"SKU-{i}") for i in range(21)])

    assert query_refusal(StockWarehouseQuerySchema, args) == (
        "skus: must hold at most 20 SKUs, got 21"
    )


def test_stock_warehouse_query_accepts_a_plain_dict_with_a_list():
    query = load_query(StockWarehouseQuerySchema, {"skus": ["SKU-A", "SKU-B"]})

    assert query["skus"] == ["SKU-A", "SKU-B"]


# -- Control API --------------------------------------------------------------


def test_client_loads_with_defaults(client_body):
    # No step_delay: the backend applies the simulator's configured one.
    assert load_body(ClientSchema, client_body) == {
        **client_body,
        "webhook_url": "",
        "progression": "manual",
    }


def test_client_step_delay_of_zero_is_kept_when_sent(client_body):
    client_body["step_delay"] = 0

    assert load_body(ClientSchema, client_body)["step_delay"] == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "https://example.com/h"])
def test_client_webhook_url_may_be_http_or_https(client_body, url):
    client_body["webhook_url"] = url

    assert load_body(ClientSchema, client_body)["webhook_url"] == url


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "example.com/hook", "http://", "http://a b"]
)
def test_client_webhook_url_of_another_form_is_refused(client_body, url):
    client_body["webhook_url"] = url

    assert refusal(ClientSchema, client_body).startswith(
        'webhook_url: must be "" or an'
    )


def test_client_id_must_fit_an_int32_and_not_be_a_bool(client_body):
    client_body["client_id"] = 2**31
    assert refusal(ClientSchema, client_body).startswith("client_id: must be a whole")

    client_body["client_id"] = True
    assert refusal(ClientSchema, client_body) == (
        "client_id: must be a whole number, got True"
    )


def test_client_needs_at_least_one_well_formed_warehouse(client_body):
    client_body["warehouses"] = []
    assert refusal(ClientSchema, client_body) == (
        "warehouses: must not be empty, got []"
    )

    client_body["warehouses"] = ["WH-TGR04", "WH BAL", "W" * 21]
    reason = refusal(ClientSchema, client_body)
    assert reason.startswith("warehouses[1]: only letters, digits")
    assert "warehouses[2]: must be at most 20 characters" in reason


def test_client_refuses_a_warehouse_listed_twice(client_body):
    client_body["warehouses"] = ["WH-TGR04", "WH-TGR04"]

    assert refusal(ClientSchema, client_body) == (
        "warehouses[1]: is listed twice, got 'WH-TGR04'"
    )


def test_client_progression_and_step_delay(client_body):
    client_body.update(progression="auto", step_delay=2.5)
    client = load_body(ClientSchema, client_body)
    assert (client["progression"], client["step_delay"]) == ("auto", 2.5)

    client_body.update(progression="timed", step_delay=3601)
    assert refusal(ClientSchema, client_body) == (
        "progression: must be one of 'manual', 'auto', got 'timed'; "
        "step_delay: must be a number from 0 to 3600, got 3601"
    )


def test_client_api_key_must_not_hold_spaces(client_body):
    client_body["api_key"] = "key with spaces"

    assert refusal(ClientSchema, client_body).startswith(
        "api_key: must be printable ASCII without spaces"
    )


def test_client_oms_customer_id_is_at_most_20_characters(client_body):
    client_body["oms_customer_id"] = "C" * 21

    assert refusal(ClientSchema, client_body).startswith(
        "oms_customer_id: must be at most 20 characters, got 21"
    )


def test_stock_set_loads_and_defaults_the_description():
    stock = load_body(
        StockSetSchema,
        {"client_id": 112233, "warehouse_id": "WH-TGR04", "sku": "SKU-A", "qty": 0},
    )

    assert stock == {
        "client_id": 112233,
        "warehouse_id": "WH-TGR04",
        "sku": "SKU-A",
        "qty": 0,
        "sku_descr": "",
    }


def test_stock_set_refuses_negative_and_text_quantities():
    body = {"client_id": 1, "warehouse_id": "WH-TGR04", "sku": "SKU-A", "qty": -1}
    assert refusal(StockSetSchema, body) == (
        "qty: must be a whole number of 0 or more, got -1"
    )

    body["qty"] = "5"
    assert refusal(StockSetSchema, body) == "qty: must be a whole number, got '5'"


def test_advance_to_a_status_or_a_code():
    assert load_body(AdvanceSchema, {"to": "shipped"}) == {"to": "SHIPPED"}
    assert load_body(AdvanceSchema, {"to": "66"})["to"] == "66"


def test_advance_one_step_with_short_lines():
    advance = load_body(AdvanceSchema, {"step": "Pick", "lines": {"SKU-A": 3, "2": 0}})

    assert advance == {"step": "pick", "lines": {"SKU-A": 3, "2": 0}}


def test_advance_one_step_without_lines_runs_it_in_full():
    assert load_body(AdvanceSchema, {"step": "allocate"}) == {
        "step": "allocate",
        "lines": {},
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, 'body: expected {"to": "<status>"} or {"step": "<step>", "lines": {...}}'),
        (
            {"to": "SHIPPED", "step": "ship"},
            "step: give either 'to' or 'step', not both",
        ),
        ({"to": "SHIPPED", "lines": {}}, "lines: only allowed with 'step'"),
        (
            {"step": "teleport"},
            "step: must be one of 'release', 'allocate', 'pick', "
            "'pack', 'load', 'ship', 'close', in any case, got 'teleport'",
        ),
        (
            {"to": "6-6"},
            "to: must be an API status (e.g. 'SHIPPED') or a 2-digit WMS "
            "code (e.g. '66'), got '6-6'",
        ),
        ({"to": 80}, "to: must be a string, got 80"),
        (
            {"step": "pick", "lines": ["SKU-A"]},
            "lines: must be an object like {\"SKU-A\": 3}, got ['SKU-A']",
        ),
        (
            {"step": "pick", "lines": {"SKU-A": -1, "SKU-B": "2"}},
            "lines['SKU-A']: must be a whole number of 0 or more, got -1; "
            "lines['SKU-B']: must be a whole number, got '2'",
        ),
    ],
)
def test_advance_refuses_a_bad_shape(body, reason):
    assert refusal(AdvanceSchema, body) == reason


# -- fields and their loop, done without marshmallow's general case ---------------

_BODY_SCHEMAS = [
    B2BCreateSchema,
    B2CCreateSchema,
    CancelSchema,
    ClientSchema,
    AdvanceSchema,
]
_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=60),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


# Mostly the schemas' own fields, given values of every JSON type.
_FIELD_NAMES = st.one_of(
    st.sampled_from(
        sorted(
            {name for schema in _BODY_SCHEMAS for name in schema().fields}
            | {"sku", "qty_ordered", "line_no", "price", "cancellation"}
        )
    ),
    st.text(max_size=12),
)


def _outcome(schema: type, body: object) -> tuple:
    try:
        return ("loaded", schema().load(body))
    except ValidationError as error:
        return ("refused", error.messages, error.valid_data)


@settings(max_examples=400, deadline=None)
@given(
    schema=st.sampled_from(_BODY_SCHEMAS),
    changes=st.dictionaries(_FIELD_NAMES, _ODD_VALUES, max_size=4),
    dropped=st.sets(st.integers(min_value=0, max_value=40), max_size=4),
    line_changes=st.dictionaries(_FIELD_NAMES, _ODD_VALUES, max_size=2),
)
def test_the_lean_loops_load_and_refuse_as_marshmallow_does(
    schema, changes, dropped, line_changes
):
    body = {
        B2BCreateSchema: sample("create_b2b_request.json"),
        B2CCreateSchema: sample("create_b2c_request.json"),
        CancelSchema: sample("cancel_request.json"),
    }.get(schema, {"order_no": "A1", "warehouse_id": "WH-TGR04", "to": "SHIPPED"})
    # The object whose fields change: the body, or the cancellation in it.
    target = body.get("data", {}).get("cancellation", body)
    keys = sorted(target)
    for n in dropped:
        if n < len(keys):
            target.pop(keys[n], None)
    target.update(changes)
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        details[0] = {**details[0], **line_changes}

    lean = _outcome(schema, copy.deepcopy(body))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Body, "_deserialize", Schema._deserialize)
        patch.delattr(_Lean, "deserialize")
        patch.delattr(_Lean, "_validate")
        general = _outcome(schema, copy.deepcopy(body))

    assert lean == general
