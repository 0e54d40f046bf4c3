"""The pytest plugin and its helpers: isolation, parallel runs, messages.

Whole suites are run in a subprocess (``python -m pytest``) from files
written to ``tmp_path``, so each sees the plugin exactly as a user's suite
does: loaded from its entry point, lazily started, torn down at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import requests

from simulator import testing
from simulator.testing import (
    RemoteSimulator,
    SimulatorError,
    SimulatorServer,
    WebhookReceiver,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "examples"

# Suites run without the other installed plugins (hypothesis, schemathesis
# and faker cost seconds per process, and xdist starts three), naming the
# two they need; test_the_entry_point_names_the_plugin covers autoloading.
PLUGIN_ARGS = ["-p", "xdist", "-p", "simulator.pytest_plugin"]

STRICT_INI = "[pytest]\nfilterwarnings = error\n"


def run_pytest(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "SHIPPER_SIM_URL"}
    environment.pop("PYTEST_XDIST_WORKER", None)
    environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *PLUGIN_ARGS, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_suite(tmp_path: Path, files: dict[str, str], ini: str = STRICT_INI) -> Path:
    (tmp_path / "pytest.ini").write_text(ini)
    for name, source in files.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    return tmp_path


def outcome(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_the_entry_point_names_the_plugin():
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "shipper_sim"]
    if not found:
        pytest.skip("the package is installed without its pytest11 entry point")

    from simulator import pytest_plugin

    assert found[0].load() is pytest_plugin


# -- the docs and the samples --------------------------------------------------


def test_every_python_block_in_the_testing_guide_is_in_an_example():
    guide = (ROOT / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, re.S)
    examples = "\n".join(p.read_text() for p in sorted(EXAMPLES.glob("*.py")))

    assert blocks, "docs/testing.md has no python blocks"
    missing = [b for b in blocks if b not in examples]
    assert not missing, (
        "these docs/testing.md blocks are not verbatim in tests/examples/:\n\n"
        + "\n---\n".join(missing)
    )


def test_the_sample_bodies_are_the_documented_samples():
    samples = ROOT / "docs" / "samples"
    b2c = json.loads((samples / "create_b2c_request.json").read_text())
    b2b = json.loads((samples / "create_b2b_request.json").read_text())

    assert testing.B2C_SAMPLE == b2c
    assert testing.B2B_SAMPLE == b2b


# -- one client per test -------------------------------------------------------


def test_two_clients_see_only_their_own_orders(shipper_sim):
    other = shipper_sim.another_client()
    mine = shipper_sim.create_b2c(so_number="SO-SHARED-NO")
    theirs = other.create_b2c(so_number="SO-SHARED-NO")

    listed = shipper_sim.call("GET", "/outbounds/WMS").json()
    assert listed["pagination"]["total_elements"] == 0  # B2C waits in the OMS
    detail = shipper_sim.call(
        "GET", f"/warehouse/{mine.warehouse_id}/outbound/oms/{mine.order_no}"
    )
    assert detail.status_code == 200
    assert other.client_id != shipper_sim.client_id
    assert other.api_key != shipper_sim.api_key
    assert [d["client_id"] for d in other.deliveries(theirs)] == [other.client_id]
    assert [d["client_id"] for d in shipper_sim.deliveries(mine)] == [
        shipper_sim.client_id
    ]


def test_a_new_client_has_a_copy_of_the_demo_stock(shipper_sim):
    demo = shipper_sim.simulator.control(
        "GET", "/_sim/stock", params={"client_id": 112233}
    )["stock"]
    expected = {
        r["sku"]: r["qty_on_hand"] for r in demo if r["warehouse_id"] == "WH-TGR04"
    }

    mine = {r["sku"]: r["qty_on_hand"] for r in shipper_sim.stock()}

    assert mine == expected
    assert len(mine) > 5


@pytest.mark.shipper_sim(stock={"SKU-X": 4}, warehouses=["WH-TGR04", "WH-BAL"])
def test_the_marker_sets_the_clients_stock_and_warehouses(shipper_sim):
    assert shipper_sim.warehouses == ["WH-TGR04", "WH-BAL"]
    assert [(r["sku"], r["qty_on_hand"]) for r in shipper_sim.stock()] == [("SKU-X", 4)]


def test_closing_a_client_clears_its_faults_and_removes_it(shipper_sim_server):
    client = shipper_sim_server.new_client()
    order = client.create_b2c()
    client.advance(order, to="ALLOCATED")
    client.fault(endpoint="get_stock", status=500, count=9)
    client.fault(target="webhook", event="status", late=30)
    before = client.stock_of("SKU-TSHIRT-M")

    client.close()

    control = shipper_sim_server.control
    mine = {"client_id": client.client_id}
    assert control("GET", "/_sim/orders", params=mine)["orders"] == []
    assert control("GET", "/_sim/webhooks", params=mine)["webhooks"] == []
    assert control("GET", "/_sim/requests", params=mine)["requests"] == []
    assert [
        f
        for f in control("GET", "/_sim/faults")["faults"]
        if f.get("client_id") == client.client_id
    ] == []
    assert before["qty_allocated"] == 2
    ids = [c["client_id"] for c in control("GET", "/_sim/clients")["clients"]]
    assert client.client_id not in ids


def test_resetting_a_client_leaves_the_others_as_they_were(shipper_sim):
    other = shipper_sim.another_client()
    theirs = other.create_b2c()
    other.advance(theirs, to="SHIPPED")
    other.fault(endpoint="get_stock", status=500)
    shipper_sim.create_b2c()
    before = (
        other.wait_for_deliveries(),
        other.requests(),
        other.stock(),
        other.faults(),
    )

    shipper_sim.reset()

    assert shipper_sim.requests() == [] and shipper_sim.deliveries() == []
    after = (other.deliveries(), other.requests(), other.stock(), other.faults())
    assert after == before
    assert other.stock_of("SKU-TSHIRT-M")["qty_on_hand"] == (
        shipper_sim.stock_of("SKU-TSHIRT-M")["qty_on_hand"] - 2
    )


def test_an_isolated_simulator_keeps_its_clock_to_itself(
    shipper_sim, shipper_sim_isolated
):
    shipper_sim_isolated.clock.freeze("2022-07-15T04:00:00Z")
    shipper_sim_isolated.clock.advance(hours=2)

    assert shipper_sim_isolated.base_url != shipper_sim.base_url
    assert shipper_sim_isolated.clock.now() == 1657857600 + 7200
    assert shipper_sim.clock.is_frozen is False


def test_faults_match_only_the_client_that_set_them(shipper_sim):
    other = shipper_sim.another_client()
    shipper_sim.fault(endpoint="get_stock", status=503, count=5)

    query = {"warehouse_code": "WH-TGR04", "stock_type": "WMS"}
    theirs = other.call("GET", "/inventory/stock", params=query)
    mine = shipper_sim.call("GET", "/inventory/stock", params=query)

    assert (theirs.status_code, mine.status_code) == (200, 503)


# -- messages a person can act on ----------------------------------------------


def test_a_refused_control_call_raises_the_simulators_reason(shipper_sim):
    order = shipper_sim.create_b2c()

    with pytest.raises(SimulatorError) as refused:
        shipper_sim.advance(order, step="pick")

    assert "answered 400" in str(refused.value)
    assert "pick" in str(refused.value)


def test_a_refused_create_names_the_field_and_code(shipper_sim):
    with pytest.raises(SimulatorError, match="code 3013.*SKU-NOT-HELD"):
        shipper_sim.create_b2c(lines=[("SKU-NOT-HELD", 1)])


def test_waiting_in_vain_lists_what_came_and_the_delivery_log(
    shipper_sim, webhook_receiver
):
    webhook_receiver.respond_with(500)
    order = shipper_sim.create_b2c()
    shipper_sim.wait_for_delivery(order, state="failed")

    with pytest.raises(AssertionError) as failure:
        webhook_receiver.wait_for(event="pgi", order_no=order, timeout=0.2)

    message = str(failure.value)
    assert f"event='pgi', order_no='{order.order_no}'" in message
    assert "received 4:" in message
    assert "so_created SO-0001 -> answered 500" in message
    assert "so_created SO-0001: failed (attempts: 500, 500, 500, 500)" in message


def test_a_receiver_records_what_it_answered():
    with WebhookReceiver() as receiver:
        receiver.fail_next(1, status=502)
        first = requests.post(receiver.url, json={"order_no": "A"}, timeout=5)
        second = requests.post(receiver.url, json={"order_no": "A"}, timeout=5)

    assert (first.status_code, second.status_code) == (502, 200)
    assert [r.answered for r in receiver.received] == [502, 200]
    assert receiver.matching(order_no="A")[0].json == {"order_no": "A"}


# -- without pytest, and against a simulator started elsewhere -----------------


def test_the_helpers_work_without_pytest_over_http():
    with SimulatorServer() as server, WebhookReceiver() as hooks:
        remote = RemoteSimulator(server.url).wait_until_ready()
        shop = remote.new_client(webhook_url=hooks)
        order = shop.create_b2c()
        shop.advance(order, to="SHIPPED")

        pgi = hooks.wait_for(event="pgi", order_no=order.order_no)
        assert pgi.json["so_reference_a"] == order.order_no
        assert len(shop.stock()) > 5  # the demo stock, copied one SKU at a time
        shop.close()
        left = remote.control(
            "GET", "/_sim/orders", params={"client_id": shop.client_id}
        )
        assert left["orders"] == []


def test_a_stopped_server_leaves_no_thread_behind():
    before = {t.name for t in threading.enumerate()}
    with SimulatorServer() as server:
        server.new_client().create_b2c()

    after = {t.name for t in threading.enumerate()}
    assert not {n for n in after - before if n.startswith(("shipper-sim", "webhook"))}


# -- whole suites --------------------------------------------------------------


LEAK_SUITE = {
    "test_a_leak.py": """
        import json
        import pathlib

        import requests

        SEEN = pathlib.Path(__file__).with_name("seen.json")


        def test_1_leaves_a_mess(shipper_sim, webhook_receiver):
            order = shipper_sim.create_b2c()
            shipper_sim.advance(order, to="SHIPPED")
            webhook_receiver.wait_for(event="pgi")
            shipper_sim.fault(endpoint="get_stock", status=500, count=3)
            shipper_sim.fault(target="webhook", event="status", late=30)
            SEEN.write_text(json.dumps({
                "client_id": shipper_sim.client_id,
                "url": shipper_sim.base_url,
                "on_hand": shipper_sim.stock_of("SKU-TSHIRT-M")["qty_on_hand"],
            }))


        def test_2_sees_none_of_it(shipper_sim):
            seen = json.loads(SEEN.read_text())
            sim = seen["url"] + "/_sim"
            theirs = {"client_id": seen["client_id"]}

            assert shipper_sim.base_url == seen["url"]
            assert shipper_sim.client_id != seen["client_id"]
            assert requests.get(sim + "/orders", params=theirs).json()["orders"] == []
            assert requests.get(sim + "/webhooks", params=theirs).json()[
                "webhooks"] == []
            assert requests.get(sim + "/requests", params=theirs).json()[
                "requests"] == []
            assert requests.get(sim + "/faults").json()["faults"] == []
            # The client itself is gone, its stock with it.
            gone = requests.get(sim + f"/clients/{seen['client_id']}")
            assert gone.status_code == 404
            assert requests.get(sim + "/stock", params=theirs).status_code == 404


        def test_3_isolated_freezes_its_own_clock(shipper_sim_isolated):
            shipper_sim_isolated.clock.freeze("2022-07-15T04:00:00Z")


        def test_4_the_shared_clock_still_runs(shipper_sim):
            assert shipper_sim.clock.is_frozen is False
    """,
    "test_b_lazy.py": """
        import threading


        def test_no_simulator_runs_for_a_test_without_its_fixtures():
            names = [t.name for t in threading.enumerate()]
            assert not [n for n in names if n.startswith("shipper-sim")], names
    """,
}


def test_state_never_leaks_from_one_test_to_the_next(tmp_path):
    suite = write_suite(tmp_path, LEAK_SUITE)

    # The lazy test first, before anything has started a simulator.
    result = run_pytest("-q", "test_b_lazy.py", "test_a_leak.py", cwd=suite)

    assert result.returncode == 0, outcome(result)
    assert "5 passed" in result.stdout


PARALLEL_SUITE = {
    "test_parallel.py": """
        import json
        import os
        import pathlib

        import pytest

        HERE = pathlib.Path(__file__).parent


        @pytest.mark.parametrize("n", range(8))
        def test_same_numbers_everywhere(shipper_sim, webhook_receiver, n):
            order = shipper_sim.create_b2c(so_number="SO-0001")
            shipper_sim.advance(order, to="SHIPPED")
            webhook_receiver.wait_for(event="pgi", order_no="SO-0001")

            assert len(shipper_sim.requests()) == 1
            assert [d["event"] for d in shipper_sim.deliveries()][-1] == "pgi"
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            (HERE / f"seen-{n}.json").write_text(json.dumps({
                "worker": worker, "pid": os.getpid(), "url": shipper_sim.base_url,
            }))


        def test_the_clock_moves_on_an_isolated_simulator(shipper_sim_isolated):
            shipper_sim_isolated.clock.freeze()
            shipper_sim_isolated.clock.advance(hours=5)
    """,
}


def test_parallel_workers_each_run_a_simulator_of_their_own(tmp_path):
    pytest.importorskip("xdist")
    suite = write_suite(tmp_path, PARALLEL_SUITE)

    result = run_pytest("-q", "-n", "2", cwd=suite)

    assert result.returncode == 0, outcome(result)
    assert "9 passed" in result.stdout
    seen = [json.loads(p.read_text()) for p in suite.glob("seen-*.json")]
    urls_by_worker: dict[str, set[str]] = {}
    for s in seen:
        urls_by_worker.setdefault(s["worker"], set()).add(s["url"])
    assert sorted(urls_by_worker) == ["gw0", "gw1"]
    # One simulator per worker process, never one shared between them.
    assert all(len(urls) == 1 for urls in urls_by_worker.values())
    assert len(set.union(*urls_by_worker.values())) == 2
    assert len({s["pid"] for s in seen}) == 2


def test_the_examples_pass_on_two_workers():
    pytest.importorskip("xdist")

    result = run_pytest("-q", "-n", "2", "tests/examples", cwd=ROOT)

    assert result.returncode == 0, outcome(result)
    assert " passed" in result.stdout and "failed" not in result.stdout


REMOTE_SUITE = {
    "test_remote.py": """
        import os

        import pytest

        from simulator.testing import SharedClockError


        @pytest.mark.parametrize("n", range(4))
        def test_an_order_flows_on_the_remote_one(shipper_sim, webhook_receiver, n):
            assert shipper_sim.base_url == os.environ["SHIPPER_SIM_URL"]
            order = shipper_sim.create_b2b()
            shipper_sim.advance(order, to="SHIPPED")
            webhook_receiver.wait_for(event="pgi", order_no=order.order_no)
            shipper_sim.verify("/outbound/wms", method="POST", count=1)


        def test_the_remote_clock_is_not_ours_to_move(shipper_sim):
            with pytest.raises(SharedClockError):
                shipper_sim.clock.freeze()
    """,
}


def test_a_running_simulator_can_be_named_by_url(tmp_path):
    pytest.importorskip("xdist")
    suite = write_suite(tmp_path, REMOTE_SUITE)

    with SimulatorServer() as server:
        result = run_pytest(
            "-q", "-n", "2", cwd=suite, env={"SHIPPER_SIM_URL": server.url}
        )
        leftover = server.control("GET", "/_sim/orders")["orders"]

    assert result.returncode == 0, outcome(result)
    assert "5 passed" in result.stdout
    assert leftover == []  # every client was reset at its teardown


def test_a_failing_test_shows_what_the_simulator_saw(tmp_path):
    suite = write_suite(
        tmp_path,
        {
            "test_fails.py": """
                def test_refused(shipper_sim):
                    body = shipper_sim.b2c_body(order_identification_code=2)
                    shipper_sim.call("POST", "/outbound/oms", json=body)
                    assert False, "the integration did not notice"
            """
        },
    )

    result = run_pytest("-q", cwd=suite)

    assert result.returncode == 1, outcome(result)
    assert "shipper-sim" in result.stdout
    assert (
        "POST /v3/fulfillment/outbound/oms -> 400 code 810: "
        "order_identification_code: must be 1, got 2"
    ) in result.stdout


def test_settings_come_from_the_ini_file_and_are_checked(tmp_path):
    suite = write_suite(
        tmp_path,
        {
            "test_settings.py": """
                import pytest


                def test_ini_delays(shipper_sim_server):
                    assert shipper_sim_server.config.retry_delays == (0.01, 0.02)


                @pytest.mark.shipper_sim(colour="red")
                def test_unknown_option(shipper_sim):
                    pass
            """
        },
        ini=STRICT_INI + "shipper_sim_retry_delays = 0.01, 0.02\n",
    )

    result = run_pytest("-q", "-rE", cwd=suite)

    assert "1 passed, 1 error" in result.stdout, outcome(result)
    assert "unknown option(s) colour" in result.stdout

    ini = STRICT_INI + "shipper_sim_retry_delays = soon\n"
    (tmp_path / "pytest.ini").write_text(ini)
    bad = run_pytest("-q", "test_settings.py::test_ini_delays", cwd=suite)
    assert bad.returncode != 0
    assert "expected seconds separated by commas" in bad.stdout + bad.stderr
