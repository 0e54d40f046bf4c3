"""The built-in master data: clients, warehouses, carriers and stock.

The data lives in JSON files under the repository's ``fixtures/`` folder
(written by ``fixtures/generate.py``). A plain ``pip install .`` copies them to
``<prefix>/share/shipper-sim/fixtures`` instead, and the scenarios to
``<prefix>/share/shipper-sim/scenarios``; the ``builtin_*_dir`` functions find
either.

Loading checks shapes only as far as the rest of the simulator relies on them,
and names the file and the entry when something is wrong.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARE_DIR = Path("share") / "shipper-sim"

FIXTURE_FILES = ("clients.json", "warehouses.json", "carriers.json", "stock.json")

# Fields every entry must carry, with the type each must have.
REQUIRED_FIELDS: dict[str, dict[str, type]] = {
    "clients.json": {
        "client_id": int,
        "api_key": str,
        "tenant_name": str,
        "oms_customer_id": str,
        "wms_customer_id": str,
        "warehouses": list,
    },
    "warehouses.json": {
        "warehouse_id": str,
        "name": str,
        "city": str,
        "address": str,
    },
    "carriers.json": {
        "express_code": str,
        "express_name": str,
        "express_type": list,
        "awb_prefix": str,
        "awb_digits": int,
    },
    "stock.json": {
        "client_id": int,
        "warehouse_id": str,
        "sku": str,
        "sku_descr": str,
        "qty": int,
    },
}

# Fields that name an entry in error messages.
ID_FIELDS: dict[str, tuple[str, ...]] = {
    "clients.json": ("client_id", "tenant_name"),
    "warehouses.json": ("warehouse_id",),
    "carriers.json": ("express_code",),
    "stock.json": ("client_id", "warehouse_id", "sku"),
}

# Fields a client may leave out, and what they default to.
CLIENT_DEFAULTS: dict[str, Any] = {
    "webhook_url": "",
    "progression": "manual",
    "step_delay": 2.0,
}

EXPRESS_TYPES = ("OMS", "WMS")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Fixtures:
    clients: list[dict]
    warehouses: list[dict]
    carriers: list[dict]
    stock: list[dict]


def builtin_fixtures_dir() -> Path:
    """The folder holding the built-in fixture JSON files."""
    return _find_builtin_dir("fixtures", "clients.json")


def builtin_scenarios_dir() -> Path:
    """The folder holding the built-in scenario files."""
    return _find_builtin_dir("scenarios", "*.toml")


def _find_builtin_dir(name: str, marker: str) -> Path:
    # A source checkout or editable install first: the folder sits next to
    # the ``simulator`` package. Then where setup.cfg's data_files put it.
    candidates = [
        Path(__file__).resolve().parent.parent / name,
        Path(sys.prefix) / SHARE_DIR / name,
    ]

    for directory in candidates:
        if any(directory.glob(marker)):
            return directory

    tried = " or ".join(str(directory) for directory in candidates)
    raise FileNotFoundError(
        f"No built-in {name} found: looked for {marker} in {tried}. Run from a "
        f"source checkout, reinstall with `pip install .`, or pass a {name} "
        "directory explicitly."
    )


def load_fixtures(directory: Path | None = None) -> Fixtures:
    """Read and check the four fixture files in ``directory``.

    Without a directory, the built-in fixtures are read. Raises ValueError,
    naming the file and the entry, when an entry lacks a field, has one of
    the wrong type, or refers to a client or warehouse that does not exist;
    FileNotFoundError when a file is missing.
    """
    directory = Path(directory) if directory is not None else builtin_fixtures_dir()
    data = {name: _read_entries(directory / name) for name in FIXTURE_FILES}

    for name, entries in data.items():
        for index, entry in enumerate(entries):
            _check_fields(directory / name, index, entry, REQUIRED_FIELDS[name])

    fixtures = Fixtures(
        clients=[_with_defaults(client) for client in data["clients.json"]],
        warehouses=data["warehouses.json"],
        carriers=data["carriers.json"],
        stock=data["stock.json"],
    )

    _check_references(directory, fixtures)
    return fixtures


def _with_defaults(client: dict) -> dict:
    missing = {k: v for k, v in CLIENT_DEFAULTS.items() if k not in client}
    return {**client, **missing}


def _read_entries(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: fixture file is missing; a fixtures directory needs "
            f"{', '.join(FIXTURE_FILES)}."
        )

    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}).") from exc

    if not isinstance(entries, list):
        raise ValueError(
            f"{path}: expected a JSON list of objects, got {type(entries).__name__}."
        )

    return entries


def _describe(path: Path, index: int, entry: Any) -> str:
    """``stock.json: entry 3 (client_id=112233, sku='SKU-CAP-01')``."""
    names = []
    if isinstance(entry, dict):
        for key in ID_FIELDS.get(path.name, ()):
            if key in entry:
                names.append(f"{key}={entry[key]!r}")

    label = f"entry {index} ({', '.join(names)})" if names else f"entry {index}"
    return f"{path}: {label}"


def _check_fields(
    path: Path,
    index: int,
    entry: Any,
    required: dict[str, type],
) -> None:
    where = _describe(path, index, entry)
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is {type(entry).__name__}, expected an object.")

    missing = [field for field in required if field not in entry]
    if missing:
        raise ValueError(
            f"{where} lacks {', '.join(missing)}; each entry needs "
            f"{', '.join(required)}."
        )

    for field, expected in required.items():
        value = entry[field]
        # bool is an int in Python, but true is no client id or quantity.
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ValueError(
                f"{where}: {field} is {value!r}, expected {expected.__name__}."
            )


def _check_references(directory: Path, fixtures: Fixtures) -> None:
    """Cross-file rules: unique names, known warehouses and clients."""
    warehouses_path = directory / "warehouses.json"
    warehouse_ids = _unique(warehouses_path, fixtures.warehouses, "warehouse_id")

    carriers_path = directory / "carriers.json"
    _unique(carriers_path, fixtures.carriers, "express_code")
    for index, carrier in enumerate(fixtures.carriers):
        types = carrier["express_type"]
        if not types or any(t not in EXPRESS_TYPES for t in types):
            raise ValueError(
                f"{_describe(carriers_path, index, carrier)}: express_type is "
                f"{types!r}, expected a non-empty list of {', '.join(EXPRESS_TYPES)}."
            )

    clients_path = directory / "clients.json"
    _unique(clients_path, fixtures.clients, "client_id")
    _unique(clients_path, fixtures.clients, "api_key")
    client_warehouses: dict[int, list[str]] = {}
    for index, client in enumerate(fixtures.clients):
        unknown = [w for w in client["warehouses"] if w not in warehouse_ids]
        if unknown or not client["warehouses"]:
            raise ValueError(
                f"{_describe(clients_path, index, client)} names warehouses "
                f"{unknown or '(none)'}; known are {', '.join(sorted(warehouse_ids))}."
            )

        client_warehouses[client["client_id"]] = client["warehouses"]

    _check_stock(directory / "stock.json", fixtures.stock, client_warehouses)


def _check_stock(
    path: Path, stock: list[dict], client_warehouses: dict[int, list[str]]
) -> None:
    seen: set[tuple[int, str, str]] = set()

    for index, row in enumerate(stock):
        where = _describe(path, index, row)
        client_id, warehouse_id = row["client_id"], row["warehouse_id"]

        if client_id not in client_warehouses:
            raise ValueError(
                f"{where} names client_id {client_id}, which clients.json lacks."
            )

        if warehouse_id not in client_warehouses[client_id]:
            raise ValueError(
                f"{where} names warehouse {warehouse_id!r}, which client "
                f"{client_id} does not use; its warehouses are "
                f"{', '.join(client_warehouses[client_id])}."
            )

        if row["qty"] < 0:
            raise ValueError(f"{where}: qty is {row['qty']}, expected 0 or more.")

        receipt = row.get("receipt_date")
        if receipt is not None and not (
            isinstance(receipt, str) and DATE_RE.fullmatch(receipt)
        ):
            raise ValueError(
                f"{where}: receipt_date is {receipt!r}, expected yyyy-MM-dd or null."
            )

        key = (client_id, warehouse_id, row["sku"])
        if key in seen:
            raise ValueError(
                f"{where} repeats sku {row['sku']!r} for client {client_id} in "
                f"{warehouse_id}; give each SKU one row per warehouse."
            )

        seen.add(key)


def _unique(path: Path, entries: list[dict], field: str) -> set:
    values: set = set()

    for index, entry in enumerate(entries):
        if entry[field] in values:
            raise ValueError(
                f"{_describe(path, index, entry)} repeats {field} "
                f"{entry[field]!r}; each must be unique."
            )

        values.add(entry[field])

    return values
