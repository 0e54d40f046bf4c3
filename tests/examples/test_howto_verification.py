"""How-to: assert what your integration sent, and read why a call failed."""

import pytest


def test_verify_counts_the_matching_calls(shipper_sim):
    order = shipper_sim.create_b2c(lines=[("SKU-CAP-01", 2)])

    shipper_sim.verify(
        "/outbound/oms",
        method="POST",
        body={"so_number": order.order_no, "details": [{"qty_ordered": 2}]},
        count=1,
    )


def test_a_failed_verification_lists_the_closest_requests(shipper_sim):
    shipper_sim.create_b2c(so_number="SO-8")

    with pytest.raises(AssertionError) as failure:
        shipper_sim.verify("/outbound/oms", method="POST", body={"so_number": "SO-9"})

    message = str(failure.value)
    assert "found 0" in message
    assert "so_number: expected 'SO-9', got 'SO-8'" in message


def test_the_journal_says_why_a_request_was_refused(shipper_sim):
    body = shipper_sim.b2c_body(order_identification_code=2)

    reply = shipper_sim.call("POST", "/outbound/oms", json=body)

    assert reply.status_code == 400
    assert reply.headers["x-sim-error"] == "order_identification_code: must be 1, got 2"
    (refused,) = shipper_sim.requests(status=400)
    assert refused["code"] == 810
    assert refused["reason"] == reply.headers["x-sim-error"]
