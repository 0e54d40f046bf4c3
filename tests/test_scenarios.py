"""The scenario runner: built-in scenarios pass, failures and bad files are named."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from simulator.scenarios import (
    MATCHERS,
    STEP_KINDS,
    LocalSimulator,
    ScenarioError,
    list_builtin,
    load_scenario,
    lookup,
    mismatch,
    run_scenario,
    run_scenario_command,
)

# Fast retries, so that receiver_down and friends take a fraction of a second.
FAST = {"retry_delays": [0.05, 0.05, 0.05]}

REQUIRED_SCENARIOS = {
    "b2c_happy_path",
    "b2b_happy_path",
    "cancel_before_allocation",
    "cancel_refused_after_allocation",
    "short_stock",
    "short_pick",
    "receiver_down",
}

DOCS = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"


def run(scenario: str | Path, **kwargs):
    out = io.StringIO()
    result = run_scenario(scenario, out=out, simulator_settings=FAST, **kwargs)
    return result, out.getvalue()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Receiver:
    """A stand-in for a client's own webhook endpoint."""

    def __init__(self) -> None:
        self.got: list[tuple[dict, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.got.append((headers, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/shipper"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


# -- the built-in scenarios


def test_the_required_scenarios_are_built_in():
    names = {name for name, _ in list_builtin()}

    assert REQUIRED_SCENARIOS <= names


def test_every_built_in_scenario_has_a_title():
    for name, title in list_builtin():
        assert title and not title.startswith("(cannot"), name


@pytest.mark.parametrize("name", [name for name, _ in list_builtin()])
def test_built_in_scenario_passes(name):
    result, output = run(name)

    assert result.passed, output
    assert output.rstrip().endswith("all passed")


def test_scenarios_on_a_shared_simulator_do_not_collide():
    simulator = LocalSimulator(FAST)
    try:
        first, out_first = run("two_clients_isolated", simulator_url=simulator.url)
        second, out_second = run("two_clients_isolated", simulator_url=simulator.url)
    finally:
        simulator.stop()

    assert first.passed, out_first
    assert second.passed, out_second
    assert "already running" in out_first


def test_client_url_gets_the_webhooks(receiver):
    result, output = run("b2c_happy_path", client_url=receiver.url)

    assert result.passed, output
    assert "(your receiver)" in output
    key = re.search(r"key (scn-[0-9a-f]+)", output).group(1)
    events = [headers["x-sim-event"] for headers, _ in receiver.got]
    assert events[0] == "so_created" and events[-1] == "pgi"
    assert len(events) == 8
    assert all(headers["x-api-key"] == key for headers, _ in receiver.got)
    assert receiver.got[-1][1]["details"][0]["qty_shipped"] == 2


# -- failures and errors


FAILING = """
title = "Fails on purpose"

[[stock]]
sku = "SKU-A"
qty = 5

[[steps]]
create = "b2c"
as = "o1"
lines = [{ sku = "SKU-A", qty_ordered = 2 }]

[[steps]]
advance = "o1"
to = "ALLOCATED"

[[steps]]
expect = "o1"
status = "SHIPPED"

[[steps]]
expect_webhook = "status"
order = "o1"
status_code = "40"
fields = { status = "Allocated" }
"""


def test_a_failing_expectation_exits_non_zero_and_is_named(tmp_path, capsys):
    code = run_scenario_command(str(write(tmp_path, FAILING)), "", "")
    output = capsys.readouterr().out

    assert code == 1
    assert "4 steps, 2 expectations: 1 failed" in output
    assert 'step 3 (expect o1): status: expected "SHIPPED", got "ALLOCATED"' in output
    assert "  4. expect status 40 webhook of o1: passed" in output


def test_a_refused_action_stops_the_run(tmp_path):
    text = FAILING.replace('to = "ALLOCATED"', 'step = "pick"')
    result, output = run(write(tmp_path, text))

    assert not result.passed
    assert (
        "2. advance o1: pick: ERROR, refused (HTTP 400): pick cannot run yet" in output
    )
    assert "step 2 errored, 2 not run" in output


def test_expect_error_that_does_not_come_fails(tmp_path):
    text = FAILING + '\n[[steps]]\ncancel = "o1"\nexpect_error = 3022\n'
    result, output = run(write(tmp_path, text))

    assert [r.number for r in result.failed] == [3, 5]
    assert "expected error 3022, got 3020" in output


def test_a_receiver_that_never_recovers_fails_the_delivery(tmp_path):
    text = """
title = "Receiver gone"
[receiver]
fail_first = 99
fail_status = 503
[[stock]]
sku = "SKU-A"
qty = 5
[[steps]]
create = "b2b"
as = "po"
lines = [{ sku = "SKU-A", qty_ordered = 1 }]
[[steps]]
expect_webhook = "so_created"
order = "po"
state = "failed"
attempts = 4
replies = [503, 503, 503, 503]
"""
    result, output = run(write(tmp_path, text))

    assert result.passed, output
    assert "so_created failed after 4 attempts" in output


def test_a_simulator_that_is_not_there_is_a_setup_failure(tmp_path):
    result, output = run(write(tmp_path, FAILING), simulator_url="http://127.0.0.1:9")

    assert not result.passed
    assert "setup failed, no step run" in output
    assert "no answer from the simulator at http://127.0.0.1:9" in output


# -- malformed files


@pytest.mark.parametrize(
    "steps, message",
    [
        (
            '[[steps]]\nadvance = "nobody"\nto = "SHIPPED"',
            'step 1 (advance): advance = "nobody": no earlier create step',
        ),
        (
            '[[steps]]\ncreate = "b2x"',
            'step 1 (create): create must be "b2c" or "b2b"',
        ),
        ("[[steps]]\nwait = 1\n[[steps]]\ncolour = 1", "step 2: says nothing to do"),
        (
            '[[steps]]\ncreate = "b2c"\nas = "o"\nlines = [{ sku = "A", qty = 1 }]',
            "step 1 (create) line 1: unknown key 'qty'",
        ),
        (
            '[[steps]]\ncreate = "b2c"\nas = "o"\n[[steps]]\nexpect = "o"\n'
            'status = "SHIPED"',
            'step 2 (expect): status = "SHIPED"',
        ),
        (
            '[[steps]]\ncreate = "b2c"\nas = "o"\n[[steps]]\nexpect_webhook = "pgi"\n'
            'order = "o"\ncount = 0\nattempts = 1',
            "step 2 (expect_webhook): count = 0 says there is no such webhook",
        ),
        (
            '[[steps]]\ncreate = "b2c"\nas = "o"\n[[steps]]\nexpect = "o"\n'
            'fields = { so_reference_2 = "${o.number}" }',
            "${o.number}: o has no number",
        ),
        (
            '[[steps]]\ncreate = "b2c"\nwait = 2',
            "step 1: is both create and wait; make them two steps",
        ),
        (
            '[[steps]]\nwait = "soon"',
            'step 1 (wait): wait must be a number, got "soon"',
        ),
        ("[[steps]\n", "not valid TOML"),
        (
            '[[steps]]\nfault = "api"\nendpoint = "create_sales_order"',
            "step 1 (fault): does nothing; give error_code, status, delay or drop",
        ),
        (
            '[[steps]]\nfault = "api"\nendpoint = "create_order"\nstatus = 503',
            'step 1 (fault): endpoint = "create_order" is no operation',
        ),
        (
            '[[steps]]\nfault = "api"\nstatus = 503\nduplicate = true',
            "step 1 (fault): duplicate goes with a webhook fault",
        ),
        (
            '[[steps]]\nfault = "webhook"\norder = "later"\nduplicate = true',
            'step 1 (fault): order = "later": no earlier create step',
        ),
        (
            '[[steps]]\nfault = "api"\nerror_code = 3999',
            "step 1 (fault): error_code = 3999 is not one of Shipper's codes",
        ),
        (
            '[[steps]]\nfault = "api"\nstatus = 503\nrate = 1.5',
            "step 1 (fault): rate must be 0 to 1, got 1.5",
        ),
        (
            '[[steps]]\nfault = "network"\ndrop = true',
            'step 1 (fault): fault = "network"; use "api"',
        ),
        (
            '[[steps]]\nfault = "api"\nstatus = 503\nlate = true',
            "step 1 (fault): late must be a number, got true",
        ),
        (
            '[[steps]]\nclock = "advance"',
            "step 1 (clock): seconds is required",
        ),
        (
            '[[steps]]\nclock = "freeze"\nat = "2022-07-15 04:00"',
            'step 1 (clock): at = "2022-07-15 04:00"; write a UTC time',
        ),
        (
            '[[steps]]\nclock = "freeze"\nat = 2022-07-15T04:00:00',
            "step 1 (clock): at = 2022-07-15T04:00:00 has no time zone",
        ),
        (
            '[[steps]]\nclock = "unfreeze"\nseconds = 5',
            'step 1 (clock): seconds goes with clock = "advance"',
        ),
        (
            '[[steps]]\ncreate = "b2c"\nexpect_status = 200',
            "step 1 (create): expect_status = 200: give the HTTP status of a refusal",
        ),
        (
            '[[steps]]\ncreate = "b2c"\nas = "o"\nexpect_status = 503',
            "step 1 (create): a create that must fail stores no order",
        ),
    ],
)
def test_a_malformed_scenario_exits_2_naming_the_problem(
    tmp_path, capsys, steps, message
):
    path = write(tmp_path, f'title = "Broken"\n{steps}\n')

    code = run_scenario_command(str(path), "", "")

    assert code == 2
    error = capsys.readouterr().err
    assert str(path) in error
    assert message in error


def test_a_malformed_file_runs_nothing(tmp_path, capsys):
    path = write(tmp_path, 'title = "Broken"\n[[steps]]\nwait = 0\n[[steps]]\nx = 1\n')

    run_scenario_command(str(path), "", "")

    assert capsys.readouterr().out == ""


def test_an_unknown_scenario_name_lists_the_built_in_ones(capsys):
    assert run_scenario_command("no_such_scenario", "", "") == 2
    assert "b2c_happy_path" in capsys.readouterr().err


def test_load_scenario_normalises_codes(tmp_path):
    path = write(
        tmp_path,
        'title = "t"\n[[steps]]\ncreate = "B2B"\nas = "o"\n'
        '[[steps]]\nadvance = "o"\nto = 66\n'
        '[[steps]]\nexpect_webhooks = "o"\nsequence = ["so_created", 0, "pgi"]\n',
    )

    steps = load_scenario(path).steps

    assert steps[0].target == "B2B"
    assert steps[1]["to"] == "66"
    assert steps[2]["sequence"] == ["so_created", "00", "pgi"]


def test_load_scenario_reads_fault_and_clock_steps(tmp_path):
    path = write(
        tmp_path,
        'title = "t"\n[[steps]]\nclock = "freeze"\nat = 2022-07-15T04:00:00Z\n'
        '[[steps]]\nclock = "freeze"\nat = "2022-07-15T04:00:00Z"\n'
        '[[steps]]\nfault = "api"\nmethod = "put"\npath = "/outbound"\ndrop = true\n',
    )

    steps = load_scenario(path).steps

    assert steps[0]["at"] == steps[1]["at"] == 1657857600.0
    assert steps[2]["method"] == "PUT"
    assert not steps[2].is_expectation


def test_load_scenario_refuses_a_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "absent.toml")


# -- values


def test_lookup_reads_into_a_json_string():
    payload = {"items": [{"payload": json.dumps({"so_number": "SO-1"})}]}

    assert lookup(payload, "items.0.payload.so_number") == "SO-1"


def test_lookup_says_where_it_stopped():
    with pytest.raises(LookupError, match="no 'qty' in details.0"):
        lookup({"details": [{"sku": "A"}]}, "details.0.qty")


@pytest.mark.parametrize(
    "expected, got, ok",
    [
        (1, 1, True),
        (1, "1", False),
        (True, 1, False),
        ({"not": ""}, "CGK123", True),
        ({"not": ""}, "", False),
        ({"matches": "^[0-9]{14}$"}, "26120400000001", True),
        ({"matches": "^[0-9]{14}$"}, 26120400000001, False),
        ({"min": 2}, 3, True),
        ({"max": 2}, 3, False),
        ({"one_of": ["70", "80"]}, "70", True),
        ({"min": 1, "max": 3}, 2, True),
        ({"min": 1, "max": 3}, 4, False),
    ],
)
def test_mismatch(expected, got, ok):
    assert (mismatch(expected, got) is None) is ok


# -- faults and the clock


def simulator_json(simulator: LocalSimulator, method: str, path: str) -> dict:
    with requests.Session() as session:
        session.trust_env = False
        response = session.request(method, simulator.url + path, json={}, timeout=5)
    response.raise_for_status()
    return response.json()


def test_faults_then_recovery_shows_the_retry_and_the_copy():
    result, output = run("faults_then_recovery")

    assert result.passed, output
    assert "refused with HTTP 503, code 803 as expected" in output
    assert "no answer, as expected (the connection closed without an answer)" in output
    assert "status 00 delivered after 1 attempt" in output
    assert "sent again once" in output
    assert "after the run" not in output  # every fault ran out


SCOPED = """
title = "A fault hits the run's own client only"

[clients.other]
warehouses = ["WH-TGR04"]

[[stock]]
sku = "SKU-A"
qty = 9

[[stock]]
client = "other"
sku = "SKU-A"
qty = 9

[[steps]]
fault = "api"
endpoint = "create_sales_order"
status = 429
count = 5

[[steps]]
create = "b2c"
client = "other"
as = "theirs"
lines = [{ sku = "SKU-A", qty_ordered = 1 }]

[[steps]]
create = "b2c"
lines = [{ sku = "SKU-A", qty_ordered = 1 }]
expect_status = 429

[[steps]]
fault = "api"
client = "other"
endpoint = "cancel_sales_order"
error_code = 3011
note = "on the other client this time"

[[steps]]
cancel = "theirs"
expect_error = 3011
"""


def test_a_fault_is_scoped_to_the_run_and_removed_at_the_end(tmp_path):
    simulator = LocalSimulator(FAST)
    try:
        result, output = run(write(tmp_path, SCOPED), simulator_url=simulator.url)
        left = simulator_json(simulator, "GET", "/_sim/faults")["faults"]
    finally:
        simulator.stop()

    assert result.passed, output
    assert "ok, fault 1 on the next 5 create_sales_order calls: HTTP 429" in output
    assert "create B2C theirs as other: ok" in output
    assert "refused with HTTP 429, code 803 as expected" in output
    assert (
        "refused with 3011 as expected (fault 2 (error_code=3011) injected)" in output
    )
    assert "after the run: removed 1 fault(s) that had not run out" in output
    assert left == []


def test_an_api_fault_that_does_not_fire_fails_the_expectation(tmp_path):
    text = SCOPED.replace("status = 429", "status = 503", 1)
    result, output = run(write(tmp_path, text))

    assert [r.number for r in result.failed] == [3]
    assert "expected HTTP 429, got HTTP 503 (code 803)" in output

    text = SCOPED.replace('endpoint = "create_sales_order"', 'endpoint = "get_stock"')
    result, output = run(write(tmp_path, text))

    assert [r.number for r in result.failed] == [3]
    assert "expected HTTP 429, but the call succeeded" in output


def test_retry_schedule_runs_on_the_virtual_clock_in_well_under_a_second():
    # The scenario's own schedule (60, 300, 900 s): 21 minutes in real time.
    simulator = LocalSimulator({"retry_delays": [60, 300, 900]})
    try:
        started = time.monotonic()
        result, output = run(
            "retry_schedule_on_virtual_clock", simulator_url=simulator.url
        )
        elapsed = time.monotonic() - started
        clock = simulator_json(simulator, "GET", "/_sim/clock")
    finally:
        simulator.stop()

    assert result.passed, output
    assert "now 2022-07-15T04:21:00Z" in output
    assert "so_created failed after 4 attempts" in output
    assert elapsed < 1.0, output
    assert clock["frozen"] is False


FROZEN = """
title = "Freezes and leaves it to the runner"

[[stock]]
sku = "SKU-A"
qty = 5

[[steps]]
clock = "freeze"

[[steps]]
create = "b2b"
as = "po"
lines = [{ sku = "SKU-A", qty_ordered = 1 }]

[[steps]]
clock = "advance"
seconds = 30
"""


def test_the_runner_unfreezes_a_clock_the_scenario_froze(tmp_path):
    simulator = LocalSimulator(FAST)
    try:
        result, output = run(write(tmp_path, FROZEN), simulator_url=simulator.url)
        clock = simulator_json(simulator, "GET", "/_sim/clock")
    finally:
        simulator.stop()

    assert result.passed, output
    assert "after the run: unfroze the clock" in output
    assert clock["frozen"] is False


def test_a_clock_frozen_before_the_run_stays_frozen(tmp_path):
    simulator = LocalSimulator(FAST)
    try:
        simulator_json(simulator, "POST", "/_sim/clock/freeze")
        result, output = run(write(tmp_path, FROZEN), simulator_url=simulator.url)
        clock = simulator_json(simulator, "GET", "/_sim/clock")
    finally:
        simulator.stop()

    assert result.passed, output
    assert "unfroze" not in output
    assert clock["frozen"] is True


@pytest.mark.parametrize(
    "step, what",
    [
        ('clock = "freeze"', "the virtual clock's controls"),
        ('fault = "api"\nstatus = 503', "faults"),
    ],
)
def test_a_multi_process_simulator_refuses_with_its_reason(tmp_path, step, what):
    text = f'title = "t"\n[[steps]]\n{step}\n[[steps]]\nwait = 0\n'
    simulator = LocalSimulator({**FAST, "multi_process": True})
    try:
        result, output = run(write(tmp_path, text), simulator_url=simulator.url)
    finally:
        simulator.stop()

    assert not result.passed
    assert "step 1 errored, 1 not run" in output
    assert f"answered 409: {what} work in a single-process simulator only" in output


# -- docs that cannot drift


def test_every_step_kind_and_key_is_documented():
    text = DOCS.read_text(encoding="utf-8")

    for kind, keys in STEP_KINDS.items():
        assert f"### `{kind}`" in text, kind
        for key in keys:
            assert f"`{key}`" in text, f"{kind}.{key}"
    for name in MATCHERS:
        assert f"`{{ {name} = " in text, name


def test_a_simulator_with_an_admin_token_takes_it_from_the_environment(monkeypatch):
    simulator = LocalSimulator({**FAST, "admin_token": "rahasia"})
    try:
        refused, refused_out = run("receiver_down", simulator_url=simulator.url)
        monkeypatch.setenv("SHIPPER_SIM_ADMIN_TOKEN", "rahasia")
        allowed, allowed_out = run("receiver_down", simulator_url=simulator.url)
    finally:
        simulator.stop()

    assert not refused.passed
    assert "set SHIPPER_SIM_ADMIN_TOKEN" in refused_out
    assert allowed.passed, allowed_out
