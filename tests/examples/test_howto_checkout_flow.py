"""How-to: drive an order from your integration to its PGI webhook.

``push_order`` stands for the code under test: it knows only a base URL and
an API key, exactly as it would in production.
"""

import pytest
import requests


def push_order(base_url: str, api_key: str, order: dict) -> str:
    """Your integration: send a marketplace order to Shipper's OMS."""
    reply = requests.post(
        f"{base_url}/v3/fulfillment/outbound/oms",
        json=order,
        headers={"x-api-key": api_key},
        timeout=10,
    )
    reply.raise_for_status()
    return reply.json()["data"]["group_key"]


def test_a_shipped_order_sends_its_pgi(shipper_sim, webhook_receiver):
    order = shipper_sim.b2c_body(lines=[("SKU-TSHIRT-M", 2)])
    push_order(shipper_sim.base_url, shipper_sim.api_key, order)

    shipper_sim.advance(order["so_number"], to="SHIPPED")

    pgi = webhook_receiver.wait_for(event="pgi", order_no=order["so_number"])
    assert pgi.json["details"][0]["qty_shipped"] == 2
    assert pgi.headers["x-api-key"] == shipper_sim.api_key


def test_a_short_pick_ships_only_what_was_picked(shipper_sim, webhook_receiver):
    order = shipper_sim.create_b2c(lines=[("SKU-TSHIRT-M", 3)])

    shipper_sim.advance(order, to="ALLOCATED")
    shipper_sim.advance(order, step="pick", lines={"SKU-TSHIRT-M": 1})
    outbound = shipper_sim.advance(order, to="SHIPPED")

    assert outbound["so_status"] == "SHIPPED"
    assert outbound["details"][0]["qty_shipped"] == 1
    pgi = webhook_receiver.wait_for(event="pgi", order_no=order.order_no)
    assert pgi.json["details"][0]["qty_shipped"] == 1


def test_every_status_change_is_sent_in_order(shipper_sim, webhook_receiver):
    order = shipper_sim.create_b2b()

    shipper_sim.advance(order, to="CLOSED")

    webhook_receiver.wait_for(event="status", order_no=order.order_no, count=7)
    codes = [w.json["status_code"] for w in webhook_receiver.matching(event="status")]
    assert codes == ["00", "40", "60", "63", "66", "80", "99"]


@pytest.mark.shipper_sim(stock={"SKU-LIMITED-01": 1})
def test_allocation_takes_what_stock_there_is(shipper_sim):
    order = shipper_sim.create_b2c(lines=[("SKU-LIMITED-01", 3)])

    outbound = shipper_sim.advance(order, to="ALLOCATED")

    assert outbound["details"][0]["qty_allocated"] == 1
    assert shipper_sim.stock_of("SKU-LIMITED-01")["qty_available"] == 0
