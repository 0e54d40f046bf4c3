"""shipper-sim's pytest plugin: a simulator per worker, a client per test.

Fixtures (thin; the work is in :mod:`simulator.testing`):

- ``shipper_sim``: a :class:`~simulator.testing.SimClient` of the test's
  own, on the simulator its worker process shares. Its faults are removed
  and it is reset at teardown. When the test also asks for
  ``webhook_receiver``, the client's webhooks go there.
- ``shipper_sim_isolated``: the same, on a simulator of the test's own,
  whose clock the test may freeze and move.
- ``webhook_receiver``: a :class:`~simulator.testing.WebhookReceiver`.
- ``shipper_sim_server``: the shared simulator itself (session scope).

Nothing starts until a test asks for one of these, and nothing heavier
than pytest is imported before then, so suites that do not use them pay
nothing. Under pytest-xdist every worker is its own process, with its own
session and so its own simulator.

``@pytest.mark.shipper_sim(...)`` sets up the test's client (``warehouses``,
``stock``, ``progression``, ``step_delay``, ``webhook_url``,
``tenant_name``) or its simulator (``isolated``, ``retry_delays``,
``webhook_timeout``, ``freeze_at``, ``seed``). A simulator setting gives
the test a simulator of its own, since changing the shared one would leak.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import SimClient, WebhookReceiver

CLIENT_OPTIONS = (
    "warehouses",
    "stock",
    "progression",
    "step_delay",
    "webhook_url",
    "tenant_name",
)
SIMULATOR_OPTIONS = ("isolated", "retry_delays", "webhook_timeout", "freeze_at", "seed")

URL_VARIABLE = "SHIPPER_SIM_URL"

_clients_key = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "shipper_sim_retry_delays",
        "seconds before each webhook retry, for simulators the plugin starts "
        "(default 0.05,0.05,0.05)",
        default="0.05,0.05,0.05",
    )
    parser.addini(
        "shipper_sim_webhook_timeout",
        "seconds the plugin's simulators wait for a webhook answer (default 2)",
        default="2",
    )
    parser.addini(
        "shipper_sim_url",
        f"use this running simulator instead of one per worker (or set {URL_VARIABLE})",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shipper_sim(**options): set up the test's shipper-sim client "
        f"({', '.join(CLIENT_OPTIONS)}) or give it a simulator of its own "
        f"({', '.join(SIMULATOR_OPTIONS)})",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failing test, show what its simulator clients saw."""
    outcome = yield
    report = outcome.get_result()
    clients = item.stash.get(_clients_key, [])
    if report.when == "call" and report.failed and clients:
        for client in clients:
            try:
                text = client.summary()
            except Exception as exc:  # never hide the test's own failure
                text = f"(could not read the simulator: {exc})"
            report.sections.append(("shipper-sim", text))


# -- settings ----------------------------------------------------------------


def _delays(config: pytest.Config) -> tuple[float, ...]:
    text = config.getini("shipper_sim_retry_delays")
    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise pytest.UsageError(
            "shipper_sim_retry_delays: expected seconds separated by commas, "
            f"like 0.05,0.05,0.05; got {text!r}"
        )
    return values


def _simulator_settings(config: pytest.Config) -> dict[str, Any]:
    text = config.getini("shipper_sim_webhook_timeout")
    try:
        timeout = float(text)
    except ValueError:
        raise pytest.UsageError(
            f"shipper_sim_webhook_timeout: expected seconds, got {text!r}"
        ) from None
    return {"retry_delays": _delays(config), "webhook_timeout": timeout}


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # Closest marker last, so a test's own marker wins over its class's.
    for marker in reversed(list(request.node.iter_markers("shipper_sim"))):
        if marker.args:
            pytest.fail(
                "@pytest.mark.shipper_sim takes keyword options only, "
                f"got {marker.args!r}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    unknown = sorted(set(options) - set(CLIENT_OPTIONS) - set(SIMULATOR_OPTIONS))
    if unknown:
        pytest.fail(
            f"@pytest.mark.shipper_sim: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(CLIENT_OPTIONS + SIMULATOR_OPTIONS)}",
            pytrace=False,
        )
    return options


# -- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def shipper_sim_server(pytestconfig: pytest.Config):
    """The simulator this worker process shares: started on first use.

    In process on a free 127.0.0.1 port, unless ``SHIPPER_SIM_URL`` or the
    ``shipper_sim_url`` ini option names one already running.
    """
    from .testing import RemoteSimulator, SimulatorServer

    url = os.environ.get(URL_VARIABLE) or pytestconfig.getini("shipper_sim_url")
    if url:
        yield RemoteSimulator(url, shared=True).wait_until_ready()
        return
    with SimulatorServer(shared=True, **_simulator_settings(pytestconfig)) as server:
        yield server


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver of the test's own on 127.0.0.1."""
    from .testing import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def shipper_sim(request: pytest.FixtureRequest) -> Iterator[SimClient]:
    """A fresh client of the test's own, on the worker's shared simulator."""
    yield from _client_for(request, isolated=False)


@pytest.fixture
def shipper_sim_isolated(request: pytest.FixtureRequest) -> Iterator[SimClient]:
    """A fresh client on a simulator of the test's own (the clock may move)."""
    yield from _client_for(request, isolated=True)


def _client_for(request: pytest.FixtureRequest, isolated: bool) -> Iterator[SimClient]:
    from .testing import SimulatorServer

    options = _marker_options(request)
    client_options = {k: v for k, v in options.items() if k in CLIENT_OPTIONS}
    settings = {
        k: v for k, v in options.items() if k in SIMULATOR_OPTIONS and k != "isolated"
    }
    isolated = isolated or bool(options.get("isolated")) or bool(settings)

    if "webhook_url" not in client_options and (
        "webhook_receiver" in request.fixturenames
    ):
        client_options["webhook_url"] = request.getfixturevalue("webhook_receiver")

    own = None
    if isolated:
        own = SimulatorServer(**{**_simulator_settings(request.config), **settings})
        simulator = own.start()
    else:
        simulator = request.getfixturevalue("shipper_sim_server")
    try:
        client = simulator.new_client(**client_options)
        request.node.stash.setdefault(_clients_key, []).append(client)
        try:
            yield client
        finally:
            client.close()
    finally:
        if own is not None:
            own.stop()
