"""Scenarios: scripted runs of a client integration against the simulator.

A scenario is a TOML file (the format is in ``docs/scenarios.md``): the
client to make, its stock, and numbered steps that create, update, cancel and
advance sales orders and then check what a client would see (the order
detail, the stock, the webhooks).

The runner talks to the simulator only over HTTP, Shipper's API with the
client's key plus the ``/_sim`` control API, so a run goes the same against a
simulator it starts itself and against one already running. Each run makes
its own client with a fresh ``client_id`` and ``api_key``, so runs on a
shared simulator never see each other's orders.

Loading checks the whole file before anything is sent: a malformed scenario
is refused with the step and the problem named, and nothing runs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import quote

import requests
from faker import Faker
from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .clock import iso_utc, parse_iso_utc
from .config import Config
from .errors import ERROR_CODES
from .fakedata import fake_b2b_body, fake_b2c_body, fake_lines, make_faker
from .fixtures import builtin_scenarios_dir
from .schemas import FAULT_ENDPOINTS
from .serving import BackgroundServer
from .statuses import API_STATUSES, STEP_NAMES, WMS_CODE_NAMES
from .testing import WebhookReceiver

BASE = "/v3/fulfillment"
KIND_PATH = {"B2C": "oms", "B2B": "wms"}
NUMBER_FIELD = {"B2C": "so_number", "B2B": "doc_no"}
EXPRESS_FIELD = {"B2C": "express_code", "B2B": "carrier_id"}
EXPRESS_TYPE = {"B2C": "OMS", "B2B": "WMS"}

# What a B2C sub-order shows before release; the API status is REGISTERED.
PENDING_AUDIT = "PendingAudit"

EVENTS = ("so_created", "status", "pgi")
DELIVERY_STATES = ("pending", "delivered", "failed", "no_url")
# States a delivery stays in: waiting longer would change nothing.
FINAL_STATES = frozenset({"delivered", "failed", "no_url"})

DEFAULT_WAREHOUSES = ["WH-TGR04"]
DEFAULT_TENANT = "Toko Skenario"
DEFAULT_SEED = 20221
DEFAULT_TIMEOUT = 10.0
MAX_SECONDS = 600.0
POLL_INTERVAL = 0.05
# How often the run's own servers look for a stop request.
STOP_POLL = 0.05
HTTP_TIMEOUT = 10.0
# How long a stopping simulator of the run's own waits for a delivery in flight.
DELIVERY_STOP_WAIT = 2.0

# Client ids of scenario runs: far from the fixtures' six-digit ids.
CLIENT_ID_RANGE = (100_000_000, 999_999_999)

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# ``${order1.order_no}`` or ``${client.client_id}`` inside a value.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*)\.([a-z_]+)\}")
ORDER_ATTRS = ("order_no", "warehouse_id", "kind", "express_code", "group_key")
CLIENT_ATTRS = (
    "client_id",
    "api_key",
    "tenant_name",
    "oms_customer_id",
    "wms_customer_id",
)
MAIN_CLIENT = "client"
# The admin token of a simulator that requires one, as `shipper-sim serve`
# reads it too.
ADMIN_TOKEN_ENV = "SHIPPER_SIM_ADMIN_TOKEN"


class ScenarioError(Exception):
    """The scenario file is missing or malformed; nothing was run."""


class StepError(Exception):
    """A step could not do what it says; the steps after it cannot run."""


class NoAnswer(StepError):
    """The simulator closed the connection, or did not answer in time."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ExpectationFailed(Exception):
    """A check did not hold; the run goes on and the summary names it."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


# -- the format, as tables --------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key a table may hold: the types it accepts, said in words."""

    types: tuple[type, ...]
    noun: str


TEXT = Key((str,), "a string")
WHOLE = Key((int,), "a whole number")
NUMBER = Key((int, float), "a number")
FLAG = Key((bool,), "true or false")
LIST = Key((list,), "a list")
TABLE = Key((dict,), "a table")
CODE = Key((str, int), 'a status code such as "70"')
TEXT_OR_FLAG = Key((str, bool), "a string or true")
SCALAR = Key((str, int, float, bool), "a string, number or boolean")
MOMENT = Key((str, datetime), 'a time in UTC such as "2022-07-15T04:00:00Z"')

TOP_KEYS = {
    "title": TEXT,
    "description": TEXT,
    "seed": WHOLE,
    "simulator": TABLE,
    "client": TABLE,
    "clients": TABLE,
    "stock": LIST,
    "receiver": TABLE,
    "steps": LIST,
}
SIMULATOR_KEYS = {"retry_delays": LIST, "webhook_timeout": NUMBER, "seed": WHOLE}
CLIENT_KEYS = {
    "warehouses": LIST,
    "tenant_name": TEXT,
    "oms_customer_id": TEXT,
    "wms_customer_id": TEXT,
    "progression": TEXT,
    "step_delay": NUMBER,
}
STOCK_KEYS = {
    "client": TEXT,
    "warehouse_id": TEXT,
    "sku": TEXT,
    "qty": WHOLE,
    "sku_descr": TEXT,
}
RECEIVER_KEYS = {"fail_first": WHOLE, "fail_status": WHOLE}
LINE_KEYS = {"sku": TEXT, "qty_ordered": WHOLE, "price": NUMBER}

# Every step kind: the key that names it first, then the keys it takes.
# Every kind also takes ``note``, a few words printed with the step.
STEP_KINDS: dict[str, dict[str, Key]] = {
    "create": {
        "create": TEXT,
        "as": TEXT,
        "client": TEXT,
        "warehouse_id": TEXT,
        "order_no": TEXT,
        "express_code": TEXT,
        "lines": LIST,
        "body": TABLE,
        "expect_error": WHOLE,
        "expect_status": WHOLE,
    },
    "update": {
        "update": TEXT,
        "client": TEXT,
        "lines": LIST,
        "body": TABLE,
        "expect_error": WHOLE,
        "expect_status": WHOLE,
    },
    "cancel": {
        "cancel": TEXT,
        "client": TEXT,
        "reason": TEXT,
        "expect_error": WHOLE,
        "expect_status": WHOLE,
    },
    "advance": {
        "advance": TEXT,
        "client": TEXT,
        "to": CODE,
        "step": TEXT,
        "lines": TABLE,
        "expect_refused": TEXT_OR_FLAG,
    },
    "wait": {"wait": NUMBER},
    "fault": {
        "fault": TEXT,
        "client": TEXT,
        # What it matches: an API call, or a webhook.
        "endpoint": TEXT,
        "method": TEXT,
        "path": TEXT,
        "event": TEXT,
        "order": TEXT,
        # How many it hits.
        "count": WHOLE,
        "rate": NUMBER,
        "seed": WHOLE,
        # What goes wrong.
        "error_code": WHOLE,
        "status": WHOLE,
        "delay": NUMBER,
        "drop": FLAG,
        "duplicate": FLAG,
        "late": NUMBER,
        "out_of_order": FLAG,
    },
    "clock": {"clock": TEXT, "at": MOMENT, "seconds": NUMBER},
    "expect": {
        "expect": TEXT,
        "client": TEXT,
        "status": TEXT,
        "wms_code": CODE,
        "lines": TABLE,
        "fields": TABLE,
        "oms_fields": TABLE,
        "expect_error": WHOLE,
        "timeout": NUMBER,
    },
    "expect_stock": {
        "expect_stock": TEXT,
        "client": TEXT,
        "warehouse_id": TEXT,
        "wms": WHOLE,
        "oms": WHOLE,
        "omswms": WHOLE,
    },
    "expect_webhook": {
        "expect_webhook": TEXT,
        "order": TEXT,
        "client": TEXT,
        "status_code": CODE,
        "state": TEXT,
        "attempts": WHOLE,
        "replies": LIST,
        "count": WHOLE,
        "redeliveries": WHOLE,
        "fields": TABLE,
        "timeout": NUMBER,
    },
    "expect_webhooks": {
        "expect_webhooks": TEXT,
        "client": TEXT,
        "sequence": LIST,
        "delivered": FLAG,
        "timeout": NUMBER,
    },
}
EXPECTATION_KINDS = frozenset(k for k in STEP_KINDS if k.startswith("expect"))
# Keys that turn an action step into an expectation as well.
EXPECTING_KEYS = ("expect_error", "expect_status", "expect_refused")
STOCK_TYPES = {"wms": "WMS", "oms": "OMS", "omswms": "OMSWMS"}

# A fault step's keys by target, as POST /_sim/faults takes them (``order``
# becomes ``order_no``); the runner adds the run's ``client_id``.
FAULT_MATCHERS = {
    "api": ("endpoint", "method", "path"),
    "webhook": ("event", "order"),
}
FAULT_EFFECTS = {
    "api": ("error_code", "status", "delay", "drop"),
    "webhook": ("duplicate", "late", "out_of_order"),
}
FAULT_AMOUNTS = ("count", "rate", "seed")
FAULT_METHODS = ("GET", "POST", "PUT", "PATCH")
# The limits the control API puts on a fault's numbers.
FAULT_LIMITS = {
    "count": (1, 1_000_000),
    "rate": (0, 1),
    "seed": (0, 2**31 - 1),
    "status": (400, 599),
    "delay": (0, 60),
    "late": (0, 3600),
}
CLOCK_ACTIONS = ("freeze", "advance", "unfreeze")
MAX_CLOCK_ADVANCE = 10 * 365 * 86_400
# What expect_status takes: an HTTP error status, or 0 for no answer at all.
NO_ANSWER = 0


def _test_not(operand: Any, got: Any) -> bool:
    return not _same(operand, got)


def _test_matches(operand: str, got: Any) -> bool:
    return isinstance(got, str) and re.search(operand, got) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Expected values that are tables test the value instead of equalling it;
# every test in the table must hold.
MATCHERS: dict[str, tuple[Key, Callable[[Any, Any], bool], str]] = {
    "not": (SCALAR, _test_not, "anything but {}"),
    "matches": (TEXT, _test_matches, "text matching /{}/"),
    "min": (NUMBER, lambda op, got: _is_number(got) and got >= op, "at least {}"),
    "max": (NUMBER, lambda op, got: _is_number(got) and got <= op, "at most {}"),
    "one_of": (LIST, lambda op, got: any(_same(v, got) for v in op), "one of {}"),
}


@dataclass
class Step:
    number: int
    kind: str
    # The value of the key that names the kind: an order name, "b2c", ...
    target: Any
    options: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.options[key]

    def __contains__(self, key: str) -> bool:
        return key in self.options

    @property
    def is_expectation(self) -> bool:
        return self.kind in EXPECTATION_KINDS or any(
            key in self.options for key in EXPECTING_KEYS
        )


@dataclass
class Scenario:
    path: Path
    title: str
    description: str
    seed: int
    simulator: dict[str, Any]
    # The main client is named "client"; more come from [clients.NAME].
    clients: dict[str, dict[str, Any]]
    stock: list[dict[str, Any]]
    receiver: dict[str, Any]
    steps: list[Step]

    @property
    def expectation_count(self) -> int:
        return sum(step.is_expectation for step in self.steps)


# -- finding and loading ----------------------------------------------------


def list_builtin() -> list[tuple[str, str]]:
    """The built-in scenarios as ``(name, title)``, by name."""
    try:
        directory = builtin_scenarios_dir()
    except FileNotFoundError:
        return []

    found = []
    for path in sorted(directory.glob("*.toml")):
        try:
            title = tomllib.loads(path.read_text(encoding="utf-8")).get("title", "")
        except (OSError, tomllib.TOMLDecodeError) as exc:
            title = f"(cannot be read: {exc})"

        found.append((path.stem, str(title)))

    return found


def resolve_scenario(scenario: str | Path) -> Path:
    """A scenario file's path, from a path or a built-in scenario's name."""
    path = Path(scenario)
    if path.is_file():
        return path

    text = str(scenario)
    if "/" not in text and "\\" not in text:
        try:
            candidate = builtin_scenarios_dir() / f"{path.stem}.toml"
        except FileNotFoundError:
            candidate = None
        if candidate is not None and candidate.is_file():
            return candidate

    names = ", ".join(name for name, _ in list_builtin()) or "none found"
    raise ScenarioError(
        f"{text}: no such scenario file, and no built-in scenario of that name "
        f"(built-in: {names}). Give a path to a .toml file or one of those names."
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; raises ScenarioError naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read: {exc.strerror or exc}") from None

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None

    return _Loader(path).load(data)


class _Loader:
    """Checks a parsed scenario and normalises its values (codes, kinds)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clients: set[str] = set()
        # Order names defined so far, with their kind (B2C or B2B).
        self.orders: dict[str, str] = {}

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ScenarioError(f"{self.path}: {where}: {problem}")

    def load(self, data: dict) -> Scenario:
        self.check_keys("the top level", data, TOP_KEYS, required=("title",))
        if "steps" not in data:
            self.fail("the top level", "no steps; add at least one [[steps]] table")

        simulator = self.load_simulator(data.get("simulator", {}))
        clients = {MAIN_CLIENT: self.load_client("[client]", data.get("client", {}))}
        for name, table in data.get("clients", {}).items():
            where = f"[clients.{name}]"
            if name == MAIN_CLIENT or not NAME.fullmatch(name):
                self.fail(where, f"{name!r} cannot name a client; use another name")
            if not isinstance(table, dict):
                self.fail(where, f"must be a table, got {_show(table)}")
            clients[name] = self.load_client(where, table)
        self.clients = set(clients)

        stock = [
            self.load_stock(f"[[stock]] {n}", entry, clients)
            for n, entry in enumerate(data.get("stock", []), start=1)
        ]
        receiver = data.get("receiver", {})
        self.check_keys("[receiver]", receiver, RECEIVER_KEYS)
        if receiver.get("fail_first", 0) < 0:
            self.fail("[receiver]", "fail_first must be 0 or more")

        steps = [
            self.load_step(n, table) for n, table in enumerate(data["steps"], start=1)
        ]
        if not steps:
            self.fail("steps", "the list is empty; add at least one [[steps]] table")

        return Scenario(
            path=self.path,
            title=data["title"],
            description=data.get("description", ""),
            seed=data.get("seed", DEFAULT_SEED),
            simulator=simulator,
            clients=clients,
            stock=stock,
            receiver={"fail_first": 0, "fail_status": 500, **receiver},
            steps=steps,
        )

    # -- tables
    def check_keys(
        self,
        where: str,
        table: Any,
        keys: dict[str, Key],
        required: tuple[str, ...] = (),
    ) -> None:
        if not isinstance(table, dict):
            self.fail(where, f"must be a table, got {_show(table)}")

        for key in table:
            if key not in keys:
                self.fail(
                    where,
                    f"unknown key {key!r}; it takes {', '.join(keys)}",
                )

        for key in required:
            if key not in table:
                self.fail(where, f"{key} is required")

        for key, value in table.items():
            self.check_type(where, key, value, keys[key])

    def check_type(self, where: str, key: str, value: Any, spec: Key) -> None:
        # TOML's true is a Python int too, but it is no quantity.
        is_bad_bool = isinstance(value, bool) and bool not in spec.types
        if is_bad_bool or not isinstance(value, spec.types):
            self.fail(where, f"{key} must be {spec.noun}, got {_show(value)}")

    def load_simulator(self, table: dict) -> dict:
        self.check_keys("[simulator]", table, SIMULATOR_KEYS)
        delays = table.get("retry_delays")
        if delays is not None and (
            not delays or not all(_is_number(d) and d >= 0 for d in delays)
        ):
            self.fail(
                "[simulator]",
                f"retry_delays must be a list of seconds like [0.2, 0.2, 0.2], "
                f"got {_show(delays)}",
            )
        return dict(table)

    def load_client(self, where: str, table: dict) -> dict:
        self.check_keys(where, table, CLIENT_KEYS)
        warehouses = table.get("warehouses", DEFAULT_WAREHOUSES)
        if not warehouses or not all(isinstance(w, str) and w for w in warehouses):
            self.fail(
                where,
                f'warehouses must be a list of warehouse ids like ["WH-TGR04"], '
                f"got {_show(warehouses)}",
            )
        if table.get("progression", "manual") not in ("manual", "auto"):
            self.fail(where, 'progression must be "manual" or "auto"')

        return {**table, "warehouses": list(warehouses)}

    def load_stock(self, where: str, entry: Any, clients: dict) -> dict:
        self.check_keys(where, entry, STOCK_KEYS, required=("sku", "qty"))
        client = entry.get("client", MAIN_CLIENT)
        if client not in clients:
            self.fail(
                where, f"client {client!r} is not defined; add [clients.{client}]"
            )

        warehouse_id = entry.get("warehouse_id", clients[client]["warehouses"][0])
        if warehouse_id not in clients[client]["warehouses"]:
            self.fail(
                where,
                f"warehouse_id {warehouse_id!r} is not one of {client}'s warehouses "
                f"({', '.join(clients[client]['warehouses'])})",
            )
        if entry["qty"] < 0:
            self.fail(where, f"qty must be 0 or more, got {entry['qty']}")

        return {
            "sku_descr": "",
            **entry,
            "client": client,
            "warehouse_id": warehouse_id,
        }

    # -- steps
    def load_step(self, number: int, table: Any) -> Step:
        where = f"step {number}"
        if not isinstance(table, dict):
            self.fail(where, "must be a table; write each step as [[steps]]")

        kinds = [kind for kind in STEP_KINDS if kind in table]
        if not kinds:
            self.fail(
                where,
                f"says nothing to do (keys: {', '.join(table) or 'none'}); "
                f"give one of {', '.join(STEP_KINDS)}",
            )
        if len(kinds) > 1:
            self.fail(
                where,
                f"is both {kinds[0]} and {kinds[1]}; make them two steps",
            )

        kind = kinds[0]
        where = f"step {number} ({kind})"
        self.check_keys(where, table, {**STEP_KINDS[kind], "note": TEXT})
        options = {key: value for key, value in table.items() if key != kind}
        step = Step(number, kind, table[kind], options)

        if "client" in step and step["client"] not in self.clients:
            self.fail(where, f"client {step['client']!r} is not defined")
        if not 0 <= table.get("timeout", 0) <= MAX_SECONDS:
            self.fail(where, f"timeout must be 0 to {MAX_SECONDS:g} seconds")
        status = table.get("expect_status", NO_ANSWER)
        if status != NO_ANSWER and not 400 <= status <= 599:
            self.fail(
                where,
                f"expect_status = {status}: give the HTTP status of a refusal "
                "(400 to 599, e.g. 503), or 0 for no answer at all",
            )

        getattr(self, f"check_{kind}")(where, step)
        return step

    def check_order(self, where: str, name: Any, key: str) -> str:
        if name not in self.orders:
            known = ", ".join(self.orders) or "none yet"
            self.fail(
                where,
                f"{key} = {_show(name)}: no earlier create step makes that order "
                f'(as = "{name}"); orders so far: {known}',
            )
        return self.orders[name]

    def check_lines(self, where: str, lines: list | None) -> None:
        if lines is None:
            return
        if not lines:
            self.fail(where, "lines is empty; leave it out to draw lines from stock")

        for index, line in enumerate(lines, start=1):
            self.check_keys(
                f"{where} line {index}", line, LINE_KEYS, ("sku", "qty_ordered")
            )

    def check_create(self, where: str, step: Step) -> None:
        kind = step.target.upper()
        if kind not in KIND_PATH:
            self.fail(where, f'create must be "b2c" or "b2b", got {_show(step.target)}')
        step.target = kind

        self.check_lines(where, step.get("lines"))
        self.check_placeholders(where, step.get("body", {}))

        name = step.get("as")
        if name is None:
            return
        if "expect_error" in step or "expect_status" in step:
            self.fail(
                where,
                "a create that must fail stores no order, so it cannot be named; "
                "remove as",
            )
        if not NAME.fullmatch(name) or name in self.clients or name in self.orders:
            self.fail(
                where,
                f"as = {name!r}: give a new name of letters, digits, '-' and '_'",
            )
        self.orders[name] = kind

    def check_update(self, where: str, step: Step) -> None:
        self.check_order(where, step.target, "update")
        self.check_lines(where, step.get("lines"))
        self.check_placeholders(where, step.get("body", {}))
        if "lines" not in step and "body" not in step:
            self.fail(where, "give lines or body: what should change?")

    def check_cancel(self, where: str, step: Step) -> None:
        self.check_order(where, step.target, "cancel")

    def check_advance(self, where: str, step: Step) -> None:
        self.check_order(where, step.target, "advance")
        if ("to" in step) == ("step" in step):
            self.fail(
                where,
                'give either to = "<status>" (e.g. "SHIPPED" or "66") or '
                'step = "<step>" (one of ' + ", ".join(STEP_NAMES) + ")",
            )

        if "to" in step:
            target = _code_text(step["to"]).upper()
            if target not in API_STATUSES and target not in WMS_CODE_NAMES:
                self.fail(
                    where,
                    f"to = {_show(step['to'])} is no status; use one of "
                    f"{', '.join(API_STATUSES)} or a WMS code such as 66",
                )
            step.options["to"] = target
            if "lines" in step:
                self.fail(where, "lines go with step, not with to")
            return

        if step["step"].lower() not in STEP_NAMES:
            self.fail(
                where,
                f"step = {_show(step['step'])} is no warehouse step; use one of "
                f"{', '.join(STEP_NAMES)}",
            )
        step.options["step"] = step["step"].lower()
        for line, qty in step.get("lines", {}).items():
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
                self.fail(
                    where,
                    f"lines.{line} must be a quantity of 0 or more, got {_show(qty)}",
                )

    def check_wait(self, where: str, step: Step) -> None:
        if not 0 <= step.target <= MAX_SECONDS:
            self.fail(where, f"wait must be 0 to {MAX_SECONDS:g} seconds")

    def check_fault(self, where: str, step: Step) -> None:
        target = step.target
        if target not in FAULT_MATCHERS:
            self.fail(
                where,
                f'fault = {_show(target)}; use "api" (Shipper API calls) or '
                '"webhook" (deliveries)',
            )

        # A key of the other target would be dropped or refused by the
        # simulator; say so now, before anything runs.
        other = "webhook" if target == "api" else "api"
        for key in FAULT_MATCHERS[other] + FAULT_EFFECTS[other]:
            if key in step:
                self.fail(
                    where,
                    f"{key} goes with a {other} fault; a {target} fault takes "
                    + ", ".join(FAULT_MATCHERS[target] + FAULT_EFFECTS[target]),
                )

        effects = [key for key in FAULT_EFFECTS[target] if step.get(key)]
        if not effects:
            self.fail(
                where,
                f"does nothing; give {_either(FAULT_EFFECTS[target])}",
            )
        if "error_code" in step and "status" in step:
            self.fail(where, "give error_code or status, not both")
        if "error_code" in step and step["error_code"] not in ERROR_CODES:
            self.fail(
                where,
                f"error_code = {step['error_code']} is not one of Shipper's codes "
                f"({', '.join(str(code) for code in ERROR_CODES)})",
            )

        for key, (low, high) in FAULT_LIMITS.items():
            if key in step and not low <= step[key] <= high:
                self.fail(where, f"{key} must be {low} to {high}, got {step[key]}")
        if "seed" in step and "rate" not in step:
            self.fail(where, "seed only draws for a rate; add rate or remove seed")

        if step.get("endpoint", FAULT_ENDPOINTS[0]) not in FAULT_ENDPOINTS:
            self.fail(
                where,
                f"endpoint = {_show(step['endpoint'])} is no operation; use one of "
                f"{', '.join(FAULT_ENDPOINTS)}",
            )
        if "method" in step:
            method = step["method"].upper()
            if method not in FAULT_METHODS:
                self.fail(
                    where,
                    f"method = {_show(step['method'])}; use one of "
                    f"{', '.join(FAULT_METHODS)}",
                )
            step.options["method"] = method
        if step.get("event", EVENTS[0]) not in EVENTS:
            self.fail(
                where,
                f"event = {_show(step['event'])}; use one of {', '.join(EVENTS)}",
            )
        if "order" in step:
            self.check_order(where, step["order"], "order")

    def check_clock(self, where: str, step: Step) -> None:
        action = step.target
        if action not in CLOCK_ACTIONS:
            self.fail(
                where,
                f"clock = {_show(action)}; use one of {', '.join(CLOCK_ACTIONS)}",
            )
        if "at" in step and action != "freeze":
            self.fail(where, 'at goes with clock = "freeze"')
        if "seconds" in step and action != "advance":
            self.fail(where, 'seconds goes with clock = "advance"')

        if action == "advance":
            seconds = step.get("seconds")
            if seconds is None:
                self.fail(where, "seconds is required: how far to move the clock?")
            if not 0 <= seconds <= MAX_CLOCK_ADVANCE:
                self.fail(
                    where,
                    f"seconds must be 0 to {MAX_CLOCK_ADVANCE} (ten years), "
                    f"got {seconds:g}",
                )
        if "at" in step:
            step.options["at"] = self.check_moment(where, step["at"])

    def check_moment(self, where: str, value: str | datetime) -> float:
        """Unix seconds of ``"2022-07-15T04:00:00Z"`` or a TOML date-time."""
        if isinstance(value, str):
            try:
                return parse_iso_utc(value)
            except ValueError:
                self.fail(
                    where,
                    f'at = {_show(value)}; write a UTC time as "2022-07-15T04:00:00Z"',
                )

        # TOML's own date-times: a local one (no offset) names no moment.
        if value.tzinfo is None:
            self.fail(
                where,
                f"at = {value.isoformat()} has no time zone; end it with Z for UTC",
            )
        return value.timestamp()

    def check_expect(self, where: str, step: Step) -> None:
        kind = self.check_order(where, step.target, "expect")
        checks = ("status", "wms_code", "lines", "fields", "oms_fields")
        if "expect_error" in step:
            if any(key in step for key in checks):
                self.fail(
                    where,
                    "expect_error says the detail is refused; it cannot also "
                    "check " + ", ".join(k for k in checks if k in step),
                )
            return
        if not any(key in step for key in checks):
            self.fail(where, "checks nothing; give " + ", ".join(checks))

        if "status" in step:
            status = step["status"].upper()
            if status not in API_STATUSES:
                self.fail(
                    where,
                    f"status = {_show(step['status'])}; use one of "
                    f"{', '.join(API_STATUSES)}",
                )
            step.options["status"] = status
        if "wms_code" in step:
            step.options["wms_code"] = self.check_code(where, "wms_code", step)
        if "oms_fields" in step and kind != "B2C":
            self.fail(
                where, "oms_fields is for B2C orders; a B2B order has no OMS detail"
            )

        for line, values in step.get("lines", {}).items():
            if not isinstance(values, dict) or not values:
                self.fail(
                    where,
                    f"lines.{line} must be a table like {{ qty_shipped = 1 }}, "
                    f"got {_show(values)}",
                )
            for name, expected in values.items():
                self.check_expected(where, f"lines.{line}.{name}", expected)

        for key in ("fields", "oms_fields"):
            if key in step:
                step.options[key] = self.check_fields(where, key, step[key])

    def check_expect_stock(self, where: str, step: Step) -> None:
        if not any(key in step for key in STOCK_TYPES):
            self.fail(where, "checks nothing; give wms, oms and/or omswms")

    def check_expect_webhook(self, where: str, step: Step) -> None:
        if step.target not in EVENTS:
            self.fail(
                where,
                f"expect_webhook = {_show(step.target)}; use one of "
                f"{', '.join(EVENTS)}",
            )
        if "order" not in step:
            self.fail(where, "order is required: whose webhook is it?")
        self.check_order(where, step["order"], "order")

        if "status_code" in step:
            if step.target != "status":
                self.fail(where, 'status_code goes with expect_webhook = "status"')
            step.options["status_code"] = self.check_code(where, "status_code", step)
        if step.get("state", "delivered") not in DELIVERY_STATES:
            self.fail(
                where,
                f"state = {_show(step['state'])}; use one of "
                f"{', '.join(DELIVERY_STATES)}",
            )
        for reply in step.get("replies", []):
            if isinstance(reply, bool) or not isinstance(reply, int):
                self.fail(
                    where,
                    "replies must be HTTP status codes like [500, 500, 200] "
                    "(0 for no answer)",
                )

        count = step.get("count")
        if count is not None and count < 0:
            self.fail(where, "count must be 0 or more")
        if step.get("redeliveries", 0) < 0:
            self.fail(where, "redeliveries must be 0 or more")
        if count == 0:
            checks = ("state", "attempts", "replies", "redeliveries", "fields")
            extra = [k for k in checks if k in step]
            if extra:
                self.fail(
                    where,
                    f"count = 0 says there is no such webhook; {extra[0]} cannot "
                    "be checked",
                )
        if "fields" in step:
            step.options["fields"] = self.check_fields(where, "fields", step["fields"])

    def check_expect_webhooks(self, where: str, step: Step) -> None:
        self.check_order(where, step.target, "expect_webhooks")
        sequence = step.get("sequence")
        if not sequence:
            self.fail(
                where,
                'sequence is required, e.g. ["so_created", "00", "40", "pgi"]',
            )

        labels = []
        for item in sequence:
            label = _code_text(item) if isinstance(item, int | str) else None
            if label not in ("so_created", "pgi") and label not in WMS_CODE_NAMES:
                self.fail(
                    where,
                    f"sequence item {_show(item)}: use so_created, pgi or a status "
                    'code such as "40"',
                )
            labels.append(label)
        step.options["sequence"] = labels

    # -- values
    def check_code(self, where: str, key: str, step: Step) -> str:
        code = _code_text(step[key])
        if code not in WMS_CODE_NAMES:
            self.fail(
                where,
                f"{key} = {_show(step[key])} is no WMS status code; use one of "
                f"{', '.join(WMS_CODE_NAMES)}",
            )
        return code

    def check_fields(self, where: str, key: str, table: dict) -> dict[str, Any]:
        """Flatten ``{details = {0 = {sku = ...}}}`` to dotted paths, and check."""
        flat = _flatten(table)
        for path, expected in flat.items():
            self.check_expected(where, f"{key}.{path}", expected)
        return flat

    def check_expected(self, where: str, what: str, expected: Any) -> None:
        if isinstance(expected, dict):
            if not expected or not set(expected) <= set(MATCHERS):
                self.fail(
                    where,
                    f"{what}: a table here holds tests, like {{ min = 1, max = 3 }}; "
                    f"use {', '.join(MATCHERS)}; got {_show(expected)}",
                )
            for name, operand in expected.items():
                self.check_type(where, f"{what}.{name}", operand, MATCHERS[name][0])
            if "matches" in expected:
                try:
                    re.compile(expected["matches"])
                except re.error as exc:
                    self.fail(where, f"{what}.matches: not a regular expression: {exc}")
        self.check_placeholders(where, expected)

    def check_placeholders(self, where: str, value: Any) -> None:
        for text in _strings_in(value):
            for name, attr in PLACEHOLDER.findall(text):
                if name in self.clients:
                    allowed = CLIENT_ATTRS
                elif name in self.orders:
                    allowed = ORDER_ATTRS
                else:
                    self.fail(
                        where,
                        f"${{{name}.{attr}}} names {name!r}, which is neither a "
                        "client nor an order defined before this step",
                    )
                if attr not in allowed:
                    self.fail(
                        where,
                        f"${{{name}.{attr}}}: {name} has no {attr}; use "
                        f"{', '.join(allowed)}",
                    )


def _either(words: tuple[str, ...]) -> str:
    """``error_code, status, delay or drop``."""
    return ", ".join(words[:-1]) + f" or {words[-1]}"


def _code_text(value: Any) -> str:
    """``70`` and ``"70"`` name the same code; ``0`` is ``"00"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:02d}"
    return str(value)


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        is_matcher = isinstance(value, dict) and set(value) <= set(MATCHERS)
        if isinstance(value, dict) and value and not is_matcher:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    return []


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# -- comparing --------------------------------------------------------------


def _same(expected: Any, got: Any) -> bool:
    # true is not 1 and "1" is not 1: a type change is a contract change.
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if _is_number(expected) and _is_number(got):
        return expected == got
    return type(expected) is type(got) and expected == got


def mismatch(expected: Any, got: Any) -> str | None:
    """Why ``got`` does not meet ``expected``, or None when it does."""
    if isinstance(expected, dict):
        unmet = [
            MATCHERS[name][2].format(_show(operand))
            for name, operand in expected.items()
            if not MATCHERS[name][1](operand, got)
        ]
        if not unmet:
            return None
        return f"expected {' and '.join(unmet)}, got {_show(got)}"

    if _same(expected, got):
        return None
    return f"expected {_show(expected)}, got {_show(got)}"


_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path such as ``details.0.qty_shipped``.

    A string holding JSON is read on the way, so that
    ``items.0.payload.so_number`` reaches into the SO-created payload, which
    Shipper sends as a JSON string. Raises LookupError saying where it stopped.
    """
    current, walked = data, []
    for part in path.split("."):
        if isinstance(current, str):
            try:
                current = json.loads(current)
            except ValueError:
                raise LookupError(
                    f"{'.'.join(walked)} is the text {_show(current)}, not an object"
                ) from None

        if isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                raise LookupError(
                    f"{'.'.join(walked) or 'the value'} is a list of "
                    f"{len(current)}; {part!r} is no index in it"
                )
            current = current[int(part)]
        elif isinstance(current, dict):
            if part not in current:
                keys = ", ".join(list(current)[:12])
                raise LookupError(
                    f"no {part!r} in {'.'.join(walked) or 'the payload'} "
                    f"(it has {keys})"
                )
            current = current[part]
        else:
            raise LookupError(f"{'.'.join(walked)} is {_show(current)}, not an object")
        walked.append(part)

    return current


def check_fields(data: Any, expected: dict[str, Any]) -> list[str]:
    """One failure per dotted path whose value does not meet what is expected."""
    failures = []
    for path, wanted in expected.items():
        try:
            got = lookup(data, path)
        except LookupError as exc:
            failures.append(f"{path}: {exc}")
            continue

        problem = mismatch(wanted, got)
        if problem:
            failures.append(f"{path}: {problem}")
    return failures


# -- a simulator of the run's own ------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without its line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class LocalSimulator:
    """A fresh simulator on a free 127.0.0.1 port, served from a thread.

    ``settings`` are Config fields: a scenario's ``[simulator]`` table, or
    whatever a test needs (``admin_token``, say).
    """

    def __init__(self, settings: dict[str, Any]) -> None:
        config = Config()
        for name, value in settings.items():
            if not hasattr(config, name):
                raise ValueError(f"{name!r} is no simulator setting")
            if name == "retry_delays":
                value = tuple(float(d) for d in value)
            setattr(config, name, value)

        # The run's own lines say what each step got. The simulator's warning
        # for every refusal (which scenarios provoke on purpose) would only
        # interleave with them, unless the user asked for its log (-v).
        self._http_log = logging.getLogger("simulator.http")
        self._http_log_level = self._http_log.level
        if not logging.getLogger().isEnabledFor(logging.INFO):
            self._http_log.setLevel(logging.ERROR)

        self.config = config
        self.app = create_app(config)
        server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._server = BackgroundServer(
            server, name="scenario-simulator", poll_interval=STOP_POLL
        ).start()

    @property
    def url(self) -> str:
        return self._server.url

    def stop(self) -> None:
        self._server.stop()
        simulator = self.app.extensions["shipper_sim"]
        simulator.stop()
        # stop() lets a delivery in flight run on, and it records its attempt:
        # the store stays open until it has.
        simulator.dispatcher.wait_idle(timeout=DELIVERY_STOP_WAIT)
        simulator.store.close()
        self._http_log.setLevel(self._http_log_level)


# -- running ----------------------------------------------------------------


@dataclass
class RunClient:
    name: str
    client_id: int
    api_key: str
    tenant_name: str
    oms_customer_id: str
    wms_customer_id: str
    warehouses: list[str]


@dataclass
class RunOrder:
    name: str
    kind: str
    client: RunClient
    warehouse_id: str
    order_no: str
    body: dict[str, Any]
    group_key: str = ""

    @property
    def express_code(self) -> str:
        return str(self.body.get(EXPRESS_FIELD[self.kind], ""))


@dataclass
class StepResult:
    number: int
    what: str
    is_expectation: bool
    outcome: str = ""
    failures: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures and not self.error


@dataclass
class RunResult:
    scenario: Scenario
    results: list[StepResult] = field(default_factory=list)
    setup_error: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.setup_error
            and len(self.results) == len(self.scenario.steps)
            and all(r.passed for r in self.results)
        )

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.failures]

    def summary(self) -> str:
        steps = len(self.scenario.steps)
        head = f"{steps} steps, {self.scenario.expectation_count} expectations: "
        if self.setup_error:
            return head + f"setup failed, no step run\n  {self.setup_error}"
        if self.passed:
            return head + "all passed"

        parts = []
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        errored = [r for r in self.results if r.error]
        for result in errored:
            parts.append(f"step {result.number} errored")
        not_run = steps - len(self.results)
        if not_run:
            parts.append(f"{not_run} not run")

        lines = [head + ", ".join(parts)]
        for result in self.results:
            for reason in result.failures or ([result.error] if result.error else []):
                lines.append(f"  step {result.number} ({result.what}): {reason}")
        return "\n".join(lines)


class ScenarioRun:
    """One run of a scenario against a simulator at ``simulator_url``."""

    def __init__(
        self,
        scenario: Scenario,
        session: requests.Session,
        simulator_url: str,
        webhook_url: str,
        receiver: WebhookReceiver | None,
        out: TextIO,
        admin_token: str = "",
    ) -> None:
        self.scenario = scenario
        self.admin_token = admin_token
        self.session = session
        self.simulator_url = simulator_url.rstrip("/")
        self.webhook_url = webhook_url
        self.receiver = receiver
        self.out = out
        self.fake: Faker = make_faker(scenario.seed)
        self.clients: dict[str, RunClient] = {}
        self.orders: dict[str, RunOrder] = {}
        self.express: dict[str, list[dict]] = {}
        self.used_numbers: set[str] = set()
        # What the run changes for every user of the simulator, to undo.
        self.fault_ids: list[int] = []
        self.moved_clock = False
        self.clock_was_frozen: bool | None = None

    # -- HTTP
    def call(
        self,
        method: str,
        path: str,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        headers = {"x-api-key": api_key} if api_key else {}
        if self.admin_token and path.startswith("/_sim/"):
            headers["x-admin-token"] = self.admin_token
        try:
            return self.session.request(
                method,
                self.simulator_url + path,
                headers=headers,
                timeout=HTTP_TIMEOUT,
                **kwargs,
            )
        except requests.RequestException as exc:
            raise NoAnswer(
                f"{method} {path}: no answer from the simulator at "
                f"{self.simulator_url} ({exc})",
                _short_reason(exc),
            ) from None

    def send(
        self, step: Step, method: str, path: str, api_key: str, body: dict
    ) -> requests.Response | NoAnswer:
        """An action step's Shipper API call.

        Without an answer it ends the run, unless the step expects none
        (``expect_status = 0``, a dropped connection): then the NoAnswer is
        handed back for check_refusal to judge.
        """
        try:
            return self.call(method, path, api_key, json=body)
        except NoAnswer as exc:
            if step.get("expect_status") != NO_ANSWER:
                raise
            return exc

    def control_json(self, method: str, path: str, **kwargs: Any) -> dict:
        """A control API call that must succeed."""
        response = self.call(method, path, **kwargs)
        if response.status_code >= 400:
            raise StepError(
                f"{method} {path} answered {response.status_code}: "
                f"{_control_reason(response)}"
            )
        return response.json()

    # -- setup
    def set_up(self) -> None:
        health = self.call("GET", "/_sim/health")
        if health.status_code != 200:
            raise StepError(
                f"{self.simulator_url} is not a shipper-sim simulator: "
                f"GET /_sim/health answered {health.status_code}"
            )

        for name, spec in self.scenario.clients.items():
            self.clients[name] = self.add_client(name, spec)
        for entry in self.scenario.stock:
            client = self.clients[entry["client"]]
            self.control_json(
                "PUT",
                "/_sim/stock",
                json={
                    "client_id": client.client_id,
                    "warehouse_id": entry["warehouse_id"],
                    "sku": entry["sku"],
                    "qty": entry["qty"],
                    "sku_descr": entry["sku_descr"],
                },
            )

        main = self.clients[MAIN_CLIENT]
        for express_type in ("OMS", "WMS"):
            response = self.call(
                "GET",
                f"{BASE}/express",
                main.api_key,
                params={"express_type": express_type, "limit": 100},
            )
            if response.status_code != 200:
                raise StepError(
                    f"GET {BASE}/express answered {response.status_code}: "
                    f"{_shipper_reason(response)}"
                )
            self.express[express_type] = response.json()["data"]["express"]

    def add_client(self, name: str, spec: dict) -> RunClient:
        # Not drawn from the scenario's seed: two runs on one simulator must
        # never pick the same id or key.
        for _ in range(5):
            client_id = secrets.randbelow(CLIENT_ID_RANGE[1] - CLIENT_ID_RANGE[0])
            client_id += CLIENT_ID_RANGE[0]
            body = {
                "client_id": client_id,
                "api_key": f"scn-{secrets.token_hex(12)}",
                "tenant_name": spec.get("tenant_name", DEFAULT_TENANT),
                "oms_customer_id": spec.get(
                    "oms_customer_id", f"CS{client_id % 100_000:05d}"
                ),
                "wms_customer_id": spec.get(
                    "wms_customer_id", f"SC{client_id % 1000:03d}"
                ),
                "warehouses": spec["warehouses"],
                "webhook_url": self.webhook_url,
                "progression": spec.get("progression", "manual"),
            }
            if "step_delay" in spec:
                body["step_delay"] = spec["step_delay"]

            response = self.call("POST", "/_sim/clients", json=body)
            if response.status_code == 201:
                return RunClient(
                    name=name,
                    client_id=client_id,
                    api_key=body["api_key"],
                    tenant_name=body["tenant_name"],
                    oms_customer_id=body["oms_customer_id"],
                    wms_customer_id=body["wms_customer_id"],
                    warehouses=list(spec["warehouses"]),
                )
            if response.status_code == 401:
                raise StepError(
                    f"{_control_reason(response)}; for shipper-sim run, set "
                    f"{ADMIN_TOKEN_ENV} to the token the simulator printed"
                )
            if "taken" not in _control_reason(response):
                raise StepError(
                    f"POST /_sim/clients refused client {name}: "
                    f"{_control_reason(response)}"
                )

        raise StepError("POST /_sim/clients: every client_id tried was taken")

    def detach(self) -> None:
        """Point the run's clients away from a receiver that is going away."""
        for client in self.clients.values():
            try:
                self.call(
                    "PATCH",
                    f"/_sim/clients/{client.client_id}",
                    json={"webhook_url": ""},
                )
            except StepError:
                # Best effort: the simulator may already be gone.
                pass

    def clean_up(self) -> None:
        """Remove the run's faults, and unfreeze the clock if the run froze it."""
        notes = []
        removed = 0
        for fault_id in self.fault_ids:
            try:
                response = self.call("DELETE", f"/_sim/faults/{fault_id}")
            except StepError:
                notes.append("the simulator did not answer; its faults may remain")
                break
            # 404: it ran out, and the simulator dropped it already.
            removed += response.status_code == 200
        if removed:
            notes.append(f"removed {removed} fault(s) that had not run out")

        if self.moved_clock and not self.clock_was_frozen:
            try:
                self.control_json("POST", "/_sim/clock/unfreeze")
                notes.append("unfroze the clock")
            except StepError as exc:
                notes.append(f"could not unfreeze the clock: {exc}")

        if notes:
            print(f"  after the run: {'; '.join(notes)}", file=self.out, flush=True)

    # -- the steps
    def run(self) -> list[StepResult]:
        results = []
        for step in self.scenario.steps:
            result = StepResult(step.number, self.describe(step), step.is_expectation)
            try:
                result.outcome = getattr(self, f"do_{step.kind}")(step)
            except ExpectationFailed as exc:
                result.failures = exc.failures
            except StepError as exc:
                result.error = str(exc)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                # An answer of a shape the runner does not know: say so, in
                # one line, rather than end the run with a traceback.
                result.error = (
                    f"unexpected answer from the simulator "
                    f"({type(exc).__name__}: {exc})"
                )

            results.append(result)
            self.print_result(result)
            if result.error:
                break

        return results

    def print_result(self, result: StepResult) -> None:
        prefix = f"{result.number:>3}. {result.what}: "
        if result.error:
            lines = [f"{prefix}ERROR, {result.error}"]
        elif len(result.failures) == 1:
            lines = [f"{prefix}FAILED, {result.failures[0]}"]
        elif result.failures:
            lines = [f"{prefix}FAILED"] + [f"       {f}" for f in result.failures]
        else:
            lines = [prefix + result.outcome]
        print("\n".join(lines), file=self.out, flush=True)

    def describe(self, step: Step) -> str:
        if step.kind == "create":
            what = f"create {step.target}"
            what += f" {step['as']}" if "as" in step else ""
        elif step.kind == "advance":
            if "to" in step:
                what = f"advance {step.target} to {step['to']}"
            else:
                short = ", ".join(f"{k}={v}" for k, v in step.get("lines", {}).items())
                what = f"advance {step.target}: {step['step']}"
                what += f" ({short})" if short else ""
        elif step.kind == "wait":
            what = f"wait {step.target:g} s"
        elif step.kind == "fault":
            what = f"{step.target} fault"
        elif step.kind == "clock" and step.target == "advance":
            what = f"clock advance {step['seconds']:g} s"
        elif step.kind == "clock" and "at" in step:
            what = f"clock freeze at {iso_utc(step['at'])}"
        elif step.kind == "expect_stock":
            what = f"expect stock of {step.target}"
        elif step.kind == "expect_webhook":
            label = step.target + (
                f" {step['status_code']}" if "status_code" in step else ""
            )
            what = f"expect {label} webhook of {step['order']}"
        elif step.kind == "expect_webhooks":
            what = f"expect webhooks of {step.target}"
        else:
            what = f"{step.kind} {step.target}"

        if "client" in step:
            what += f" as {step['client']}"
        if "note" in step:
            what += f" ({step['note']})"
        return what

    def client_of(self, step: Step, order: RunOrder | None = None) -> RunClient:
        if "client" in step:
            return self.clients[step["client"]]
        return order.client if order else self.clients[MAIN_CLIENT]

    def order_named(self, name: str) -> RunOrder:
        if name not in self.orders:
            raise StepError(f"order {name} was never created")
        return self.orders[name]

    def substitute(self, value: Any) -> Any:
        """Fill ``${order1.order_no}`` and the like in with this run's values."""
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole:
                # A value that is one placeholder keeps its type (client_id).
                return self.placeholder(*whole.groups())
            return PLACEHOLDER.sub(lambda m: str(self.placeholder(*m.groups())), value)
        if isinstance(value, dict):
            return {key: self.substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substitute(item) for item in value]
        return value

    def placeholder(self, name: str, attr: str) -> Any:
        owner: Any = self.clients.get(name) or self.orders.get(name)
        if owner is None:
            raise StepError(f"${{{name}.{attr}}}: {name} was never created")
        return getattr(owner, attr)

    # -- actions
    def do_create(self, step: Step) -> str:
        kind = step.target
        client = self.client_of(step)
        warehouse_id = step.get("warehouse_id", client.warehouses[0])
        lines = step.get("lines") or self.lines_from_stock(client, warehouse_id)
        body = self.make_body(kind, client, warehouse_id, lines, step)

        response = self.send(
            step, "POST", f"{BASE}/outbound/{KIND_PATH[kind]}", client.api_key, body
        )
        refusal = self.check_refusal(step, response)
        if refusal:
            return refusal

        order_no = str(body.get(NUMBER_FIELD[kind], ""))
        group_key = response.json()["data"]["group_key"]
        if "as" in step:
            self.orders[step["as"]] = RunOrder(
                name=step["as"],
                kind=kind,
                client=client,
                warehouse_id=str(body.get("warehouse_id", warehouse_id)),
                order_no=order_no,
                body=body,
                group_key=group_key,
            )

        count = len(body.get("details", []))
        return (
            f"ok, {order_no} in {body.get('warehouse_id')} with "
            f"{count} line{'s' if count != 1 else ''}, group key {group_key}"
        )

    def lines_from_stock(self, client: RunClient, warehouse_id: str) -> list[dict]:
        skus = [
            entry["sku"]
            for entry in self.scenario.stock
            if entry["client"] == client.name and entry["warehouse_id"] == warehouse_id
        ]
        if not skus:
            raise StepError(
                f"no lines given, and no [[stock]] of {client.name} in "
                f"{warehouse_id} to draw them from; add lines = [...]"
            )
        return fake_lines(self.fake, skus)

    def make_body(
        self,
        kind: str,
        client: RunClient,
        warehouse_id: str,
        lines: list[dict],
        step: Step,
    ) -> dict:
        express = self.express_for(kind, step.get("express_code"))
        for _ in range(20):
            if kind == "B2C":
                body = fake_b2c_body(
                    self.fake,
                    warehouse_id=warehouse_id,
                    customer_id=client.oms_customer_id,
                    tenant_name=client.tenant_name,
                    express_code=express["express_code"],
                    lines=[dict(line) for line in lines],
                    so_number=step.get("order_no"),
                )
            else:
                body = fake_b2b_body(
                    self.fake,
                    warehouse_id=warehouse_id,
                    customer_id=client.wms_customer_id,
                    carrier_id=express["express_code"],
                    carrier_name=express["express_name"],
                    lines=[dict(line) for line in lines],
                    doc_no=step.get("order_no"),
                )
            body.update(self.substitute(step.get("body", {})))

            # Made-up numbers could repeat within a run; a given one may.
            number = str(body.get(NUMBER_FIELD[kind]))
            is_given = "order_no" in step or NUMBER_FIELD[kind] in step.get("body", {})
            if is_given or number not in self.used_numbers:
                break
        self.used_numbers.add(number)
        return body

    def express_for(self, kind: str, code: str | None) -> dict:
        choices = self.express[EXPRESS_TYPE[kind]]
        if code is not None:
            named = [e for e in choices if e["express_code"] == code]
            # An unknown code is sent as it is: the 3015 refusal is testable.
            return named[0] if named else {"express_code": code, "express_name": ""}
        if not choices:
            raise StepError(f"the express list has no {EXPRESS_TYPE[kind]} carrier")
        return self.fake.random.choice(choices)

    def do_update(self, step: Step) -> str:
        order = self.order_named(step.target)
        client = self.client_of(step, order)
        body = dict(order.body)
        if "lines" in step:
            body["details"] = self.details_for(order, step["lines"])
        body.update(self.substitute(step.get("body", {})))

        path = f"{BASE}/outbound/{KIND_PATH[order.kind]}"
        response = self.send(step, "PUT", path, client.api_key, body)
        refusal = self.check_refusal(step, response)
        if refusal:
            return refusal

        order.body = body
        count = len(body.get("details", []))
        return f"ok, {order.order_no} now has {count} line{'s' if count != 1 else ''}"

    def details_for(self, order: RunOrder, lines: list[dict]) -> list[dict]:
        """Order lines in the shape the faker gives a create body of this kind."""
        client = order.client
        if order.kind == "B2C":
            made = fake_b2c_body(
                self.fake,
                warehouse_id=order.warehouse_id,
                customer_id=client.oms_customer_id,
                tenant_name=client.tenant_name,
                express_code=order.express_code,
                lines=[dict(line) for line in lines],
                so_number=order.order_no,
            )
        else:
            made = fake_b2b_body(
                self.fake,
                warehouse_id=order.warehouse_id,
                customer_id=client.wms_customer_id,
                carrier_id=order.express_code,
                carrier_name="",
                lines=[dict(line) for line in lines],
                doc_no=order.order_no,
            )
        return made["details"]

    def do_cancel(self, step: Step) -> str:
        order = self.order_named(step.target)
        client = self.client_of(step, order)
        cancellation = {
            "order_no": order.order_no,
            "warehouse_id": order.warehouse_id,
            "cancel_reason": step.get("reason", "cancelled by scenario"),
        }
        response = self.send(
            step,
            "PATCH",
            f"{BASE}/outbound/{KIND_PATH[order.kind]}/cancel",
            client.api_key,
            {"data": {"cancellation": cancellation}},
        )
        return self.check_refusal(step, response) or f"ok, {order.order_no} cancelled"

    def check_refusal(
        self, step: Step, response: requests.Response | NoAnswer
    ) -> str | None:
        """None when a call that must succeed did; the outcome when it must fail."""
        if isinstance(response, NoAnswer):
            # send() hands one back only to a step with expect_status = 0.
            return f"no answer, as expected ({response.reason})"

        expected = step.get("expect_error")
        status = step.get("expect_status")
        code = _shipper_code(response)
        reason = _shipper_reason(response)
        got = response.status_code

        if expected is None and status is None:
            if got == 200:
                return None
            raise StepError(f"refused with HTTP {got}, code {code}: {reason}")

        wanted = _refusal_text(expected, status)
        if got == 200:
            raise ExpectationFailed([f"expected {wanted}, but the call succeeded"])
        if status == NO_ANSWER:
            raise ExpectationFailed(
                [f"expected {wanted}, got HTTP {got}, code {code}: {reason}"]
            )
        if status is not None and got != status:
            raise ExpectationFailed(
                [f"expected {wanted}, got HTTP {got} (code {code}): {reason}"]
            )
        if expected is not None and code != expected:
            raise ExpectationFailed(
                [f"expected {wanted}, got {code} (HTTP {got}): {reason}"]
            )

        if status is not None:
            return f"refused with HTTP {got}, code {code} as expected ({reason})"
        return f"refused with {code} as expected ({reason})"

    def do_advance(self, step: Step) -> str:
        order = self.order_named(step.target)
        client = self.client_of(step, order)
        if "to" in step:
            request = {"to": step["to"]}
        else:
            request = {"step": step["step"], "lines": step.get("lines", {})}

        response = self.call(
            "POST",
            f"/_sim/orders/{quote(order.warehouse_id, safe='')}/"
            f"{quote(order.order_no, safe='')}/advance",
            params={"client_id": client.client_id},
            json=request,
        )
        expected = step.get("expect_refused", False)

        if response.status_code == 200:
            outbound = response.json()["data"]["outbound"]
            if expected is not False:
                raise ExpectationFailed(
                    [
                        "expected the simulator to refuse, but it moved the "
                        f"order to {outbound['so_status']}"
                    ]
                )
            progress = ", ".join(_line_progress(ln) for ln in outbound["details"])
            return f"ok, {outbound['so_status']}: {progress}"

        reason = _control_reason(response)
        if expected is False:
            raise StepError(f"refused (HTTP {response.status_code}): {reason}")
        if isinstance(expected, str) and expected.lower() not in reason.lower():
            raise ExpectationFailed(
                [f"refused, but expected {expected!r} in the reason, got {reason!r}"]
            )
        return f"refused as expected: {reason}"

    def do_wait(self, step: Step) -> str:
        time.sleep(step.target)
        return "ok"

    def do_fault(self, step: Step) -> str:
        order = self.order_named(step["order"]) if "order" in step else None
        client = self.client_of(step, order)

        # Scoped to the run's client, so a shared simulator's other users
        # never meet it.
        fault: dict[str, Any] = {"target": step.target, "client_id": client.client_id}
        keys = FAULT_MATCHERS[step.target] + FAULT_AMOUNTS + FAULT_EFFECTS[step.target]
        fault.update((key, step[key]) for key in keys if key in step and key != "order")
        if order is not None:
            fault["order_no"] = order.order_no

        added = self.control_json("POST", "/_sim/faults", json=fault)
        self.fault_ids.append(added["id"])
        return f"ok, fault {added['id']} on {_fault_text(step)}"

    def do_clock(self, step: Step) -> str:
        if self.clock_was_frozen is None:
            # Frozen by someone else before the run: theirs to unfreeze.
            self.clock_was_frozen = self.control_json("GET", "/_sim/clock")["frozen"]

        if step.target == "freeze":
            at = {"at": step["at"]} if "at" in step else {}
            state = self.control_json("POST", "/_sim/clock/freeze", json=at)
            self.moved_clock = True
            return f"ok, frozen at {state['iso']}"

        if step.target == "advance":
            state = self.control_json(
                "POST", "/_sim/clock/advance", json={"seconds": step["seconds"]}
            )
            # An advance freezes a running clock first.
            self.moved_clock = True
            return f"ok, now {state['iso']}, {state['ran']} due job(s) run on the way"

        state = self.control_json("POST", "/_sim/clock/unfreeze", json={})
        self.moved_clock = False
        return f"ok, real time again ({state['iso']})"

    # -- expectations
    def do_expect(self, step: Step) -> str:
        order = self.order_named(step.target)
        client = self.client_of(step, order)

        if "expect_error" in step:
            detail = "oms" if order.kind == "B2C" else "wms"
            response = self.detail(order, client, detail)
            expected = step["expect_error"]
            code = _shipper_code(response)
            if response.status_code == 200 or code != expected:
                got = "the order" if response.status_code == 200 else f"error {code}"
                raise ExpectationFailed(
                    [f"{detail.upper()} detail: expected error {expected}, got {got}"]
                )
            return f"passed, the {detail.upper()} detail answers {code}"

        checked: list[str] = []
        failures = self.poll_checks(
            lambda: self.order_failures(step, order, client, checked),
            step.get("timeout", 0),
        )
        if failures:
            raise ExpectationFailed(failures)
        return "passed, " + ", ".join(checked)

    def order_failures(
        self, step: Step, order: RunOrder, client: RunClient, checked: list[str]
    ) -> list[str]:
        checked.clear()
        failures: list[str] = []

        # A B2C order's status is on its OMS sub-order, released or not; the
        # WMS detail is read only for what only it shows.
        oms_outbound = None
        if order.kind == "B2C":
            oms = self.detail(order, client, "oms")
            if oms.status_code != 200:
                return [
                    f"OMS detail answered {_shipper_code(oms)}: {_shipper_reason(oms)}"
                ]
            oms_outbound = oms.json()["data"]["outbound"]

        needs_wms = "lines" in step or "fields" in step
        wms_outbound, wms = None, None
        if order.kind == "B2B" or needs_wms:
            wms = self.detail(order, client, "wms")
            if wms.status_code == 200:
                wms_outbound = wms.json()["data"]["outbound"]
            elif order.kind == "B2B":
                return [
                    f"WMS detail answered {_shipper_code(wms)}: {_shipper_reason(wms)}"
                ]

        if "status" in step:
            status = _status_of(wms_outbound, oms_outbound)
            problem = mismatch(step["status"], status)
            failures += [f"status: {problem}"] if problem else []
            checked.append(f"status {status}")

        if "wms_code" in step:
            code = self.wms_code(order, client)
            problem = mismatch(step["wms_code"], code)
            failures += [f"wms_code: {problem}"] if problem else []
            checked.append(f"WMS {code}")

        if needs_wms and wms_outbound is None and wms is not None:
            failures.append(
                f"the WMS detail answered {_shipper_code(wms)} "
                f"({_shipper_reason(wms)}); a B2C order is there once released"
            )
        elif needs_wms and wms_outbound is not None:
            line_failures, count = self.line_failures(step, wms_outbound)
            failures += line_failures
            failures += check_fields(
                wms_outbound, self.substitute(step.get("fields", {}))
            )
            if count:
                checked.append(f"{count} line value{'s' if count != 1 else ''}")
            if "fields" in step:
                checked.append(f"{len(step['fields'])} WMS detail field(s)")

        if "oms_fields" in step:
            failures += check_fields(oms_outbound, self.substitute(step["oms_fields"]))
            checked.append(f"{len(step['oms_fields'])} OMS detail field(s)")
        return failures

    def line_failures(self, step: Step, outbound: dict) -> tuple[list[str], int]:
        failures, count = [], 0
        lines = outbound.get("details", [])
        for key, values in step.get("lines", {}).items():
            found = [
                ln
                for ln in lines
                if ln.get("sku") == key or str(ln.get("order_line")) == key
            ]
            if not found:
                skus = ", ".join(str(ln.get("sku")) for ln in lines)
                failures.append(f"no line {key!r} in the order (it has {skus})")
                continue

            for name, expected in self.substitute(values).items():
                count += 1
                if name not in found[0]:
                    failures.append(f"line {key}: no field {name!r} in the WMS detail")
                    continue
                problem = mismatch(expected, found[0][name])
                if problem:
                    failures.append(f"line {key} {name}: {problem}")
        return failures, count

    def detail(
        self, order: RunOrder, client: RunClient, which: str
    ) -> requests.Response:
        path = (
            f"{BASE}/warehouse/{quote(order.warehouse_id, safe='')}/outbound/"
            f"{which}/{quote(order.order_no, safe='')}"
        )
        return self.call("GET", path, client.api_key)

    def wms_code(self, order: RunOrder, client: RunClient) -> str:
        # No Shipper endpoint shows a B2B order's WMS code; the control API does.
        found = self.control_json(
            "GET", "/_sim/orders", params={"client_id": client.client_id, "limit": 1000}
        )["orders"]
        for summary in found:
            if (summary["order_no"], summary["warehouse_id"]) == (
                order.order_no,
                order.warehouse_id,
            ):
                return summary["wms_code"]
        return ""

    def do_expect_stock(self, step: Step) -> str:
        client = self.client_of(step)
        warehouse_id = step.get("warehouse_id", client.warehouses[0])
        failures, seen = [], []

        for key, stock_type in STOCK_TYPES.items():
            if key not in step:
                continue
            response = self.call(
                "GET",
                f"{BASE}/inventory/stock",
                client.api_key,
                params={
                    "warehouse_code": warehouse_id,
                    "stock_type": stock_type,
                    "sku": step.target,
                },
            )
            if response.status_code != 200:
                raise StepError(
                    f"GET {BASE}/inventory/stock answered {_shipper_code(response)}: "
                    f"{_shipper_reason(response)}"
                )
            rows = [
                r for r in response.json()["data"]["stock"] if r["sku"] == step.target
            ]
            if not rows:
                failures.append(f"{stock_type}: no {step.target} in {warehouse_id}")
                continue

            problem = mismatch(step[key], rows[0]["qty"])
            if problem:
                failures.append(f"{stock_type} qty: {problem}")
            seen.append(f"{stock_type} {rows[0]['qty']}")

        if failures:
            raise ExpectationFailed(failures)
        return f"passed, {', '.join(seen)} in {warehouse_id}"

    def deliveries(
        self, order: RunOrder, client: RunClient, event: str | None = None
    ) -> list[dict]:
        """The order's deliveries in the log, oldest first, without redeliveries."""
        params: dict[str, Any] = {
            "client_id": client.client_id,
            "order_no": order.order_no,
        }
        if event:
            params["event"] = event
        found = self.control_json("GET", "/_sim/webhooks", params=params)["webhooks"]
        return [
            d
            for d in found
            if d["warehouse_id"] == order.warehouse_id and d["redelivery_of"] is None
        ]

    def do_expect_webhook(self, step: Step) -> str:
        order = self.order_named(step["order"])
        client = self.client_of(step, order)
        event, code = step.target, step.get("status_code")
        label = f"{event} {code}" if code else event
        timeout = step.get("timeout", DEFAULT_TIMEOUT)

        def matching() -> list[dict]:
            found = self.deliveries(order, client, event)
            return [
                d
                for d in found
                if code is None or d["payload"].get("status_code") == code
            ]

        count = step.get("count")
        if count == 0:
            # Deliveries are written with the change that causes them, so
            # an absent one is absent now; there is nothing to wait for.
            found = matching()
            if found:
                raise ExpectationFailed(
                    [f"expected no {label} webhook, found {_states(found)}"]
                )
            return f"passed, no {label} webhook in the log"

        state = step.get("state", "delivered")

        def is_settled(found: list[dict]) -> bool:
            if count is not None and len(found) < count:
                return False
            if not found or found[0]["state"] in FINAL_STATES:
                return bool(found)
            # Still pending: wait for the attempts asked for, as well.
            tried = len(found[0]["attempts"])
            return found[0]["state"] == state and tried >= step.get("attempts", 0)

        found = self.poll(matching, is_settled, timeout)
        if not found:
            raise ExpectationFailed(
                [f"no {label} webhook in the log after {timeout:g} s"]
            )

        delivery = found[0]
        failures = self.delivery_failures(step, delivery, found, state, timeout)
        if self.receiver is not None and delivery["state"] == "delivered":
            failures += self.receipt_failures(delivery, client)
        copies: list[dict] = []
        if "redeliveries" in step:
            copies = self.redeliveries_of(delivery, order, client, step, timeout)
            failures += self.redelivery_failures(step, copies, client)
        if failures:
            raise ExpectationFailed(failures)

        attempts = len(delivery["attempts"])
        said = f"passed, {label} {delivery['state']} after {attempts} attempt"
        said += "s" if attempts != 1 else ""
        if "fields" in step:
            said += f", {len(step['fields'])} field(s) match"
        if self.receiver is not None and delivery["state"] == "delivered":
            said += ", and the receiver got it"
        if "redeliveries" in step:
            said += "; " + _times_sent_again(len(copies))
        return said

    def redeliveries_of(
        self,
        delivery: dict,
        order: RunOrder,
        client: RunClient,
        step: Step,
        timeout: float,
    ) -> list[dict]:
        """The copies of a delivery in the log (a duplicate fault, a redeliver)."""

        def copies() -> list[dict]:
            params = {
                "client_id": client.client_id,
                "order_no": order.order_no,
                "event": delivery["event"],
            }
            found = self.control_json("GET", "/_sim/webhooks", params=params)
            return [
                d for d in found["webhooks"] if d["redelivery_of"] == delivery["id"]
            ]

        # A copy is queued once the first is delivered; wait for it to settle.
        return self.poll(
            copies,
            lambda found: (
                len(found) >= step["redeliveries"]
                and all(d["state"] in FINAL_STATES for d in found)
            ),
            timeout,
        )

    def redelivery_failures(
        self, step: Step, copies: list[dict], client: RunClient
    ) -> list[str]:
        failures = []
        if len(copies) != step["redeliveries"]:
            failures.append(
                f"redeliveries: expected {step['redeliveries']}, the log shows "
                f"{_states(copies) if copies else 0}"
            )
        for copy in copies:
            if self.receiver is not None and copy["state"] == "delivered":
                failures += [
                    f"redelivery {copy['id']}: {problem}"
                    for problem in self.receipt_failures(copy, client)
                ]
        return failures

    def delivery_failures(
        self,
        step: Step,
        delivery: dict,
        found: list[dict],
        state: str,
        timeout: float,
    ) -> list[str]:
        failures = []
        attempts = delivery["attempts"]
        replies = [a["status_code"] or 0 for a in attempts]

        count = step.get("count")
        if count is not None and len(found) != count:
            failures.append(
                f"expected {count} such webhook(s) in the log, found {len(found)}"
            )
        if delivery["state"] != state:
            last = attempts[-1] if attempts else None
            tail = ""
            if last:
                tail = f"; last attempt: {last['status_code'] or 'no answer'}"
                tail += f" ({last['error']})" if last["error"] else ""
            failures.append(
                f"state: expected {state}, got {delivery['state']} after "
                f"{len(attempts)} attempt(s){tail}"
                + (
                    f" (waited {timeout:g} s)"
                    if delivery["state"] not in FINAL_STATES
                    else ""
                )
            )
        if "attempts" in step and len(attempts) != step["attempts"]:
            failures.append(
                f"attempts: expected {step['attempts']}, the log shows {len(attempts)} "
                f"(replies {replies})"
            )
        if "replies" in step and replies != step["replies"]:
            failures.append(f"replies: expected {step['replies']}, got {replies}")

        failures += check_fields(
            delivery["payload"], self.substitute(step.get("fields", {}))
        )
        return failures

    def receipt_failures(self, delivery: dict, client: RunClient) -> list[str]:
        """Compare what the built-in receiver got with what the log says."""
        assert self.receiver is not None
        receipts = self.receiver.received
        mine = [r for r in receipts if r.delivery_id == delivery["id"]]
        if not mine:
            # Without the simulator's delivery id header, match on the body.
            mine = [r for r in receipts if r.json == delivery["payload"]]
        if not mine:
            return [
                f"the log says delivered, but the built-in receiver got no POST "
                f"for delivery {delivery['id']}"
            ]

        failures = []
        replies = [a["status_code"] for a in delivery["attempts"]]
        answered = [r.answered for r in mine]
        if answered != replies:
            failures.append(
                f"the log shows replies {replies}, the receiver answered {answered}"
            )
        last = mine[-1]
        if last.json != delivery["payload"]:
            failures.append("the body the receiver got differs from the logged payload")
        if last.headers.get("x-api-key") != client.api_key:
            failures.append(
                f"x-api-key: expected the client's key, got "
                f"{last.headers.get('x-api-key')!r}"
            )
        if "application/json" not in last.headers.get("content-type", ""):
            failures.append(
                f"content-type: expected application/json, got "
                f"{last.headers.get('content-type')!r}"
            )
        return failures

    def do_expect_webhooks(self, step: Step) -> str:
        order = self.order_named(step.target)
        client = self.client_of(step, order)
        sequence = step["sequence"]
        delivered = step.get("delivered", True)

        def is_settled(found: list[dict]) -> bool:
            if len(found) < len(sequence):
                return False
            return not delivered or all(d["state"] in FINAL_STATES for d in found)

        found = self.poll(
            lambda: self.deliveries(order, client),
            is_settled,
            step.get("timeout", DEFAULT_TIMEOUT),
        )
        got = [_label(d) for d in found]
        failures = []
        if got != sequence:
            has = ", ".join(got) or "none"
            failures.append(f"expected {', '.join(sequence)}; the log has {has}")

        if delivered:
            stuck = [
                f"{_label(d)} {d['state']}" for d in found if d["state"] != "delivered"
            ]
            if stuck:
                failures.append("not delivered: " + ", ".join(stuck))

        if delivered and self.receiver is not None and not failures:
            arrived = self.arrival_order(found)
            if arrived != got:
                failures.append(
                    f"the receiver got them as {', '.join(arrived)}, "
                    f"not in the order of the log"
                )
        if failures:
            raise ExpectationFailed(failures)

        said = f"passed, {len(got)} webhook{'s' if len(got) != 1 else ''} in order"
        if delivered:
            said += ", all delivered"
        if delivered and self.receiver is not None:
            said += " and received in that order"
        return said

    def arrival_order(self, deliveries: list[dict]) -> list[str]:
        """Labels of the deliveries, in the order the receiver accepted them."""
        assert self.receiver is not None
        label_of = {d["id"]: _label(d) for d in deliveries}
        accepted = [
            r.delivery_id
            for r in self.receiver.received
            if r.delivery_id in label_of and r.answered < 300
        ]
        return [label_of[i] for i in accepted if i is not None]

    # -- waiting
    def poll(
        self,
        fetch: Callable[[], Any],
        is_ready: Callable[[Any], bool],
        timeout: float,
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = fetch()
            if is_ready(value) or time.monotonic() >= deadline:
                return value
            time.sleep(POLL_INTERVAL)

    def poll_checks(
        self, failures_now: Callable[[], list[str]], timeout: float
    ) -> list[str]:
        return self.poll(failures_now, lambda failures: not failures, timeout)


def _status_of(wms: dict | None, oms: dict | None) -> str | None:
    """The API status a client sees: the WMS detail's, else the OMS sub-order's.

    A sub-order shows PendingAudit while the order waits in the OMS, which is
    the API status REGISTERED; once it has a status code, the sub-order's
    status is shown as it is.
    """
    if wms is not None:
        return wms["so_status"]
    if oms is None or not oms.get("sub_orders"):
        return None

    sub_order = oms["sub_orders"][0]
    if sub_order["so_status"] == PENDING_AUDIT and not sub_order.get("status_code"):
        return "REGISTERED"
    return sub_order["so_status"]


def _line_progress(line: dict) -> str:
    for name in ("shipped", "picked", "allocated", "released"):
        qty = line.get(f"qty_{name}", 0)
        if qty:
            return f"{line['sku']} {qty}/{line['qty_ordered']} {name}"
    return f"{line['sku']} 0/{line['qty_ordered']}"


def _label(delivery: dict) -> str:
    if delivery["event"] == "status":
        return str(delivery["payload"].get("status_code"))
    return delivery["event"]


def _states(deliveries: list[dict]) -> str:
    """``2 (delivery 7 delivered, delivery 9 pending)``."""
    each = ", ".join(f"delivery {d['id']} {d['state']}" for d in deliveries)
    return f"{len(deliveries)} ({each})"


def _shipper_code(response: requests.Response) -> int | None:
    """The Shipper error code of an answer, in either error shape."""
    try:
        metadata = response.json().get("metadata", {})
        errors = metadata.get("errors") or [metadata.get("error") or {}]
        return errors[0].get("code")
    except (ValueError, AttributeError, IndexError):
        return None


def _short_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {HTTP_TIMEOUT:g} s"
    if isinstance(exc, requests.ConnectionError):
        return "the connection closed without an answer"
    return type(exc).__name__


def _times_sent_again(copies: int) -> str:
    if copies == 0:
        return "not sent again"
    return "sent again once" if copies == 1 else f"sent again {copies} times"


def _refusal_text(code: int | None, status: int | None) -> str:
    """``error 3011``, ``HTTP 503``, ``HTTP 503 with error 803``, ``no answer``."""
    if status == NO_ANSWER:
        return "no answer"
    if status is None:
        return f"error {code}"
    return f"HTTP {status}" + (f" with error {code}" if code is not None else "")


def _fault_text(step: Step) -> str:
    """``the next create_sales_order call: HTTP 503``, for the step's line."""
    if step.target == "api":
        named = step.get("endpoint") or " ".join(
            str(step[key]) for key in ("method", "path") if key in step
        )
        noun = f"{named or 'Shipper API'} call"
    else:
        noun = f"{step.get('event', 'any')} webhook"
        noun += f" of {step['order']}" if "order" in step else ""

    count = step.get("count")
    if "rate" in step:
        amount = f"{step['rate']:.0%} of {noun}s (seed {step.get('seed', 0)})"
        amount += f", at most {count}" if count else ""
    elif count and count > 1:
        amount = f"the next {count} {noun}s"
    else:
        amount = f"the next {noun}"

    effects = {
        "error_code": lambda v: f"error {v}",
        "status": lambda v: f"HTTP {v}",
        "delay": lambda v: f"{v:g} s delay",
        "drop": lambda v: "connection dropped",
        "duplicate": lambda v: "sent twice",
        "late": lambda v: f"{v:g} s late",
        "out_of_order": lambda v: "after the order's next webhook",
    }
    done = [say(step[key]) for key, say in effects.items() if step.get(key)]
    return f"{amount}: {', '.join(done)}"


def _shipper_reason(response: requests.Response) -> str:
    return response.headers.get("x-sim-error") or "no reason given"


def _control_reason(response: requests.Response) -> str:
    try:
        return str(response.json().get("error") or response.text[:200])
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"


# -- the command ------------------------------------------------------------


def run_scenario(
    scenario: str | Path,
    client_url: str = "",
    simulator_url: str = "",
    *,
    out: TextIO | None = None,
    simulator_settings: dict[str, Any] | None = None,
) -> RunResult:
    """Run one scenario and print its steps and summary to ``out``.

    ``simulator_settings`` go over the scenario's ``[simulator]`` table when
    the runner starts its own simulator (tests use it for fast retries).
    Raises ScenarioError when the file is missing or malformed.
    """
    out = out or sys.stdout
    spec = load_scenario(resolve_scenario(scenario))
    result = RunResult(spec)
    print(f"Scenario: {spec.title} ({spec.path})", file=out)
    for line in textwrap.wrap(spec.description, 84):
        print(f"  {line}", file=out)

    with ExitStack() as stack:
        # Started in this order, so the simulator stops before the receiver
        # and no delivery goes to a closed port.
        receiver = None
        if client_url:
            webhook_url = client_url
        else:
            # It answers fail_status to the first fail_first POSTs, counted
            # over every client of the run.
            receiver = WebhookReceiver().start()
            stack.callback(receiver.stop)
            receiver.fail_next(
                spec.receiver.get("fail_first", 0),
                spec.receiver.get("fail_status", 500),
            )
            webhook_url = receiver.url

        if simulator_url:
            url = simulator_url.rstrip("/")
            where = "already running"
        else:
            settings = {**spec.simulator, **(simulator_settings or {})}
            local = LocalSimulator(settings)
            stack.callback(local.stop)
            url = local.url
            delays = ", ".join(f"{d:g}" for d in local.config.retry_delays)
            where = f"started for this run, webhook retries after {delays} s"

        session = requests.Session()
        # Never through a proxy from the environment: these hosts are local.
        session.trust_env = False
        stack.callback(session.close)

        token = os.environ.get(ADMIN_TOKEN_ENV, "") if simulator_url else ""
        run = ScenarioRun(spec, session, url, webhook_url, receiver, out, token)
        print(f"  simulator: {url} ({where})", file=out)
        print(f"  webhooks:  {_describe_target(spec, webhook_url, receiver)}", file=out)
        for ignored in _ignored_sections(spec, client_url, simulator_url):
            print(f"  note: {ignored}", file=out)

        try:
            run.set_up()
        except StepError as exc:
            result.setup_error = str(exc)
        else:
            if simulator_url and receiver is not None:
                stack.callback(run.detach)
            # Undone first on the way out, while the simulator still answers.
            stack.callback(run.clean_up)
            for client in run.clients.values():
                print(
                    f"  {client.name}: {client.client_id} {client.tenant_name!r}, "
                    f"key {client.api_key}, warehouses {', '.join(client.warehouses)}",
                    file=out,
                )
            out.flush()
            result.results = run.run()

    print(result.summary(), file=out, flush=True)
    return result


def _describe_target(
    spec: Scenario, webhook_url: str, receiver: WebhookReceiver | None
) -> str:
    if receiver is None:
        return f"{webhook_url} (your receiver)"
    fail_first = spec.receiver["fail_first"]
    if fail_first:
        return (
            f"{webhook_url} (built-in receiver; answers "
            f"{spec.receiver['fail_status']} to the first {fail_first})"
        )
    return f"{webhook_url} (built-in receiver)"


def _ignored_sections(spec: Scenario, client_url: str, simulator_url: str) -> list[str]:
    notes = []
    if client_url and spec.receiver["fail_first"]:
        notes.append(
            f"[receiver] fail_first = {spec.receiver['fail_first']} does not apply: "
            "webhooks go to --client-url, and expectations that rely on it may fail"
        )
    if simulator_url and spec.simulator:
        notes.append(
            "[simulator] does not apply to a simulator that is already running; "
            "webhook retries follow its own --retry-delays"
        )
    return notes


def run_scenario_command(scenario: str, client_url: str, simulator_url: str) -> int:
    """``shipper-sim run``: 0 all passed, 1 a check failed or a step errored,
    2 the scenario is missing or malformed."""
    try:
        result = run_scenario(scenario, client_url, simulator_url)
    except ScenarioError as exc:
        print(f"shipper-sim run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shipper-sim run: interrupted", file=sys.stderr)
        return 130
    return 0 if result.passed else 1
