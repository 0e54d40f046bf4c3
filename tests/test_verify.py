"""``POST /_sim/requests/verify``: was an endpoint called as a test expects?"""

from __future__ import annotations

import pytest
from conftest import SECOND_ID, ShipperClient, b2b_body, b2c_body
from flask.testing import FlaskClient

OMS = "/v3/fulfillment/outbound/oms"
WMS = "/v3/fulfillment/outbound/wms"


def verify(http: FlaskClient, **question: object) -> dict:
    response = http.post("/_sim/requests/verify", json=question)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def journal_ids(http: FlaskClient) -> list[int]:
    """Journal entry ids, oldest first."""
    entries = http.get("/_sim/requests").get_json()["requests"]
    return [e["id"] for e in reversed(entries)]


@pytest.fixture
def calls(http: FlaskClient, api: ShipperClient) -> list[int]:
    """Two B2C creates, one refused duplicate and one B2B create; their ids."""
    api.create_ok("oms", b2c_body("SO-8"))
    api.create_ok("oms", b2c_body("SO-7", lines=[("SKU-CAP-01", 4)]))
    assert api.create("oms", b2c_body("SO-8")).status_code == 400
    api.create_ok("wms", b2b_body("ERP-1"))
    return journal_ids(http)


# -- how many -----------------------------------------------------------------


def test_exact_count_matches_only_that_number(http: FlaskClient, calls):
    assert verify(http, method="POST", path=OMS, count=3)["ok"] is True
    assert verify(http, method="POST", path=OMS, count=3)["matched"] == 3

    assert verify(http, method="POST", path=OMS, count=2)["ok"] is False
    assert verify(http, method="POST", path=OMS, count=4)["ok"] is False


def test_count_zero_asserts_a_call_was_never_made(http: FlaskClient, calls):
    never = verify(http, method="PATCH", path=OMS + "/cancel", count=0)
    made = verify(http, method="POST", path=WMS, count=0)

    assert never["ok"] is True
    assert made["ok"] is False
    assert made["matched"] == 1


def test_at_least_is_a_minimum(http: FlaskClient, calls):
    assert verify(http, path=OMS, at_least=1)["ok"] is True
    assert verify(http, path=OMS, at_least=3)["ok"] is True

    too_many = verify(http, path=OMS, at_least=4)
    assert too_many["ok"] is False
    assert too_many["message"].startswith(
        f"expected at least 4 call(s) to any method {OMS}; found 3"
    )


def test_without_count_one_call_is_enough(http: FlaskClient, calls):
    assert verify(http, path=WMS)["ok"] is True
    assert verify(http, path="/v3/fulfillment/outbound/wms/cancel")["ok"] is False


def test_method_narrows_the_match_in_any_case(
    http: FlaskClient, api: ShipperClient, calls
):
    api.update("oms", b2c_body("SO-7"))

    assert verify(http, method="put", path=OMS, count=1)["ok"] is True
    assert verify(http, method="post", path=OMS, count=3)["ok"] is True
    assert verify(http, path=OMS, count=4)["ok"] is True


def test_path_ignores_the_query_unless_it_names_one(
    http: FlaskClient, api: ShipperClient
):
    api.list("WMS", page=2)
    api.list("WMS", page=3)

    path = "/v3/fulfillment/outbounds/WMS"
    assert verify(http, method="GET", path=path, count=2)["ok"] is True
    assert verify(http, path=path + "?page=2", count=1)["ok"] is True
    assert verify(http, path=path + "?page=4", count=0)["ok"] is True
    # The path is the whole path, not a part of it.
    assert verify(http, path="/v3/fulfillment/outbounds", count=0)["ok"] is True


def test_client_id_counts_only_that_clients_calls(
    http: FlaskClient, second_api: ShipperClient, calls
):
    second_api.create_ok(
        "oms", b2c_body("SO-8", customer_id="CS792", tenant_name="CV Suwarno")
    )

    assert verify(http, path=OMS, count=4)["ok"] is True
    assert verify(http, path=OMS, client_id=SECOND_ID, count=1)["ok"] is True


# -- what the body and the answer held ----------------------------------------


def test_body_matches_as_a_subset(http: FlaskClient, calls):
    result = verify(
        http, method="POST", path=OMS, body={"so_number": "SO-8", "platform": "SHOPEE"}
    )

    assert result["ok"] is True
    assert result["matched"] == 2  # the create and the refused duplicate


def test_body_matches_nested_lists_by_position(http: FlaskClient, calls):
    first_line = {"details": [{"sku": "SKU-TSHIRT-M", "qty_ordered": 2}]}
    second_line = {"details": [{}, {"sku": "SKU-CAP-01", "qty_ordered": 1}]}
    wrong_line = {"details": [{"sku": "SKU-CAP-01"}]}

    assert verify(http, path=OMS, body=first_line, count=2)["ok"] is True
    assert verify(http, path=OMS, body=second_line, count=2)["ok"] is True
    assert verify(http, path=OMS, body=wrong_line, count=1)["ok"] is True
    # An empty object stands for any object, and only an object.
    assert verify(http, path=OMS, body={"details": [{}]}, count=3)["ok"] is True
    assert verify(http, path=OMS, body={"so_number": {}}, count=0)["ok"] is True


def test_body_matches_dotted_paths(http: FlaskClient, calls):
    assert verify(http, path=OMS, body={"details.0.qty_ordered": 4}, count=1)["ok"]
    assert verify(http, path=OMS, body={"details.1.sku": "SKU-CAP-01"}, count=2)["ok"]
    assert verify(http, path=WMS, body={"details.0.line_no": 1}, count=1)["ok"]

    missing = verify(http, path=OMS, body={"details.1.sku": "SKU-CAP-01"}, count=3)
    assert missing["ok"] is False
    assert "details.1.sku: expected 'SKU-CAP-01', missing" in missing["message"]


def test_body_values_compare_by_type(http: FlaskClient, calls):
    assert verify(http, path=OMS, body={"order_identification_code": 1}, count=3)["ok"]
    assert verify(http, path=OMS, body={"order_identification_code": "1"}, count=0)[
        "ok"
    ]


def test_status_matches_the_answer(http: FlaskClient, calls):
    assert verify(http, path=OMS, status=200, count=2)["ok"] is True
    assert verify(http, path=OMS, status=400, count=1)["ok"] is True
    assert verify(http, path=OMS, body={"so_number": "SO-8"}, status=400, count=1)["ok"]
    assert verify(http, path=WMS, status=400)["ok"] is False


# -- a failed verification says why ------------------------------------------


def test_failed_verification_lists_the_closest_requests_and_their_differences(
    http: FlaskClient, calls
):
    create_8, create_7, refused_8, create_b2b = calls

    result = verify(http, method="POST", path=OMS, body={"so_number": "SO-9"}, count=1)

    assert result["ok"] is False
    assert result["matched"] == 0
    assert result["message"] == (
        f"expected exactly 1 call(s) to POST {OMS} with {{'so_number': 'SO-9'}}; "
        "found 0\n"
        "closest requests:\n"
        f"  #{refused_8} POST {OMS} -> 400: so_number: expected 'SO-9', got 'SO-8'\n"
        f"  #{create_7} POST {OMS} -> 200: so_number: expected 'SO-9', got 'SO-7'\n"
        f"  #{create_8} POST {OMS} -> 200: so_number: expected 'SO-9', got 'SO-8'"
    )
    assert [c["id"] for c in result["closest"]] == [refused_8, create_7, create_8]
    assert result["closest"][0] == {
        "id": refused_8,
        "method": "POST",
        "path": OMS,
        "status": 400,
        "differences": ["so_number: expected 'SO-9', got 'SO-8'"],
    }


def test_closest_requests_rank_fewest_differences_first(http: FlaskClient, calls):
    create_8, create_7, refused_8, _ = calls

    result = verify(
        http,
        path=OMS,
        body={"so_number": "SO-7", "details": [{"qty_ordered": 2}]},
        status=200,
        count=1,
    )

    closest = {c["id"]: c["differences"] for c in result["closest"]}
    ranked = [c["id"] for c in result["closest"]]
    assert ranked == [create_7, create_8, refused_8]
    assert closest[create_7] == ["details.0.qty_ordered: expected 2, got 4"]
    assert closest[create_8] == ["so_number: expected 'SO-7', got 'SO-8'"]
    assert closest[refused_8] == [
        "so_number: expected 'SO-7', got 'SO-8'",
        "status: expected 200, got 400",
    ]
    assert (
        f"#{refused_8} POST {OMS} -> 400: so_number: expected 'SO-7', got 'SO-8'; "
        "status: expected 200, got 400"
    ) in result["message"]


def test_closest_requests_on_another_route_say_so(http: FlaskClient, calls):
    *_, create_b2b = calls

    result = verify(http, method="PUT", path=WMS, count=1)

    assert result["ok"] is False
    assert f"expected exactly 1 call(s) to PUT {WMS}; found 0" in result["message"]
    lines = result["message"].splitlines()
    assert lines[1] == "closest requests:"
    assert lines[2] == f"  #{create_b2b} POST {WMS} -> 200: route: POST {WMS}"


def test_too_many_calls_fail_with_the_matching_ones_listed(http: FlaskClient, calls):
    create_8, _, refused_8, _ = calls

    result = verify(http, path=OMS, body={"so_number": "SO-8"}, count=1)

    assert result["ok"] is False
    assert result["matched"] == 2
    assert result["message"].startswith(
        f"expected exactly 1 call(s) to any method {OMS} with "
        "{'so_number': 'SO-8'}; found 2"
    )
    assert f"#{refused_8} POST {OMS} -> 400: matches" in result["message"]
    assert f"#{create_8} POST {OMS} -> 200: matches" in result["message"]


def test_verification_with_no_requests_at_all_fails_plainly(http: FlaskClient):
    result = verify(http, path=OMS)

    assert result == {
        "ok": False,
        "matched": 0,
        "message": f"expected at least 1 call(s) to any method {OMS}; found 0",
        "closest": [],
    }


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ({}, "path"),
        ({"path": OMS, "method": "DELETE"}, "method"),
        ({"path": OMS, "count": -1}, "count"),
        ({"path": OMS, "count": "1"}, "count"),
        ({"path": OMS, "status": 99}, "status"),
        ({"path": OMS, "body": ["so_number"]}, "body"),
    ],
)
def test_bad_verification_is_refused_naming_the_field(
    http: FlaskClient, question: dict, field: str
):
    response = http.post("/_sim/requests/verify", json=question)

    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_a_large_order_is_matched_by_any_of_its_fields(
    http: FlaskClient, api: ShipperClient
):
    lines = [("SKU-TSHIRT-M", 1)] * 60
    body = b2c_body("SO-MANY-LINES", lines=lines)
    assert len(str(body)) > 4000
    api.create_ok("oms", body)

    found = verify(
        http,
        path=OMS,
        body={"so_number": "SO-MANY-LINES", "details.59.sku": "SKU-TSHIRT-M"},
    )

    assert found["ok"] is True, found["message"]
