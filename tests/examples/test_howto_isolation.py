"""How-to: rely on every test starting from nothing.

Each test's ``shipper_sim`` is a client of its own, so the same order
number can be used in every test, in any order, on any xdist worker.
"""

import pytest


@pytest.mark.parametrize("round_", range(3))
def test_every_test_starts_with_nothing(shipper_sim, round_):
    assert shipper_sim.requests() == []
    assert shipper_sim.deliveries() == []
    assert shipper_sim.faults() == []
    assert shipper_sim.stock_of("SKU-CAP-01")["qty_allocated"] == 0

    order = shipper_sim.create_b2c(so_number="SO-SAME-IN-EVERY-TEST")
    shipper_sim.advance(order, to="ALLOCATED")
    shipper_sim.fault(endpoint="get_stock", status=500, count=5)


def test_resetting_one_client_leaves_another_untouched(shipper_sim):
    other = shipper_sim.another_client()
    shipper_sim.create_b2c()
    theirs = other.create_b2c()

    shipper_sim.reset()

    assert shipper_sim.deliveries() == []
    assert [d["order_no"] for d in other.deliveries()] == [theirs.order_no]
