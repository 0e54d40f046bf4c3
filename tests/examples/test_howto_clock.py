"""How-to: run a whole retry schedule, or a day of warehouse work, at once.

The clock belongs to the whole simulator, so a test that moves it needs a
simulator of its own: the ``shipper_sim_isolated`` fixture, or any
simulator setting in ``@pytest.mark.shipper_sim(...)``.
"""

import pytest

from simulator.testing import SharedClockError


@pytest.mark.shipper_sim(retry_delays=(60, 300, 900))
def test_a_webhook_gives_up_after_three_retries(shipper_sim_isolated, webhook_receiver):
    sim = shipper_sim_isolated
    sim.clock.freeze("2022-07-15T04:00:00Z")
    webhook_receiver.respond_with(500)
    order = sim.create_b2c()

    sim.clock.advance(minutes=30)

    (delivery,) = sim.deliveries(order, event="so_created")
    assert delivery["state"] == "failed"
    first = delivery["attempts"][0]["time"]
    waited = [a["time"] - first for a in delivery["attempts"]]
    assert waited == [0, 60, 360, 1260]
    webhook_receiver.assert_received(event="so_created", count=4)


@pytest.mark.shipper_sim(progression="auto", step_delay=120)
def test_an_automatic_order_closes_within_the_hour(shipper_sim_isolated):
    sim = shipper_sim_isolated
    sim.clock.freeze()
    order = sim.create_b2c()

    sim.clock.advance(hours=1)

    timeline = sim.order(order)
    assert timeline["order"]["so_status"] == "CLOSED"
    assert [e["code"] for e in timeline["events"]][-2:] == ["80", "99"]


def test_the_shared_simulator_will_not_move_its_clock(shipper_sim):
    with pytest.raises(SharedClockError, match="shipper_sim_isolated"):
        shipper_sim.clock.advance(60)
