"""How-to: use the helpers in any harness, without the pytest fixtures.

``SimulatorServer`` starts a simulator in this process; ``RemoteSimulator``
talks to one started elsewhere (``shipper-sim serve``). Both hand out
clients of their own with ``new_client()``.
"""

from simulator.testing import SimulatorServer, WebhookReceiver


def test_the_helpers_work_as_context_managers():
    with SimulatorServer() as sim, WebhookReceiver() as hooks:
        shop = sim.new_client(webhook_url=hooks)
        order = shop.create_b2c()
        shop.advance(order, to="SHIPPED")
        pgi = hooks.wait_for(event="pgi", order_no=order.order_no)
        shop.close()

    assert pgi.json["so_reference_a"] == order.order_no
