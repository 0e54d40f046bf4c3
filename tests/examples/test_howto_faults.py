"""How-to: make Shipper's API or its webhooks misbehave, and check you cope.

A fault set through ``shipper_sim.fault(...)`` matches this test's client
only and is removed at teardown, used or not.
"""

import requests


def push_with_retry(base_url: str, api_key: str, order: dict, tries: int = 3):
    """Your integration: retry Shipper's 5xx answers, give up on the rest."""
    for _ in range(tries):
        reply = requests.post(
            f"{base_url}/v3/fulfillment/outbound/oms",
            json=order,
            headers={"x-api-key": api_key},
            timeout=10,
        )
        if reply.status_code < 500:
            break
    return reply


def test_the_integration_retries_a_503(shipper_sim):
    shipper_sim.fault(endpoint="create_sales_order", status=503, count=2)

    order = shipper_sim.b2c_body()
    reply = push_with_retry(shipper_sim.base_url, shipper_sim.api_key, order)

    assert reply.status_code == 200
    answered = [r["status"] for r in shipper_sim.requests("/outbound/oms")]
    assert answered == [200, 503, 503]  # newest first


def test_the_integration_does_not_retry_a_shipper_error(shipper_sim):
    shipper_sim.fault(endpoint="create_sales_order", error_code=3011)

    order = shipper_sim.b2c_body()
    reply = push_with_retry(shipper_sim.base_url, shipper_sim.api_key, order)

    assert reply.json()["metadata"]["errors"][0]["code"] == 3011
    shipper_sim.verify("/outbound/oms", method="POST", count=1)


def test_a_failing_receiver_gets_the_webhook_again(shipper_sim, webhook_receiver):
    webhook_receiver.fail_next(2, status=503)

    order = shipper_sim.create_b2c()

    delivery = shipper_sim.wait_for_delivery(order, event="so_created")
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 200]
    webhook_receiver.assert_received(event="so_created", count=3)


def test_a_duplicated_pgi_arrives_twice(shipper_sim, webhook_receiver):
    shipper_sim.fault(target="webhook", event="pgi", duplicate=True)
    order = shipper_sim.create_b2c()

    shipper_sim.advance(order, to="SHIPPED")

    webhook_receiver.wait_for(event="pgi", order_no=order.order_no, count=2)
    first, second = webhook_receiver.matching(event="pgi")
    assert first.json == second.json
