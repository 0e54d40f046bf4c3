"""The built-in fixtures, their generator, and how load_fixtures reports errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

import simulator.fixtures as fixtures_module
from simulator.fixtures import (
    FIXTURE_FILES,
    Fixtures,
    builtin_fixtures_dir,
    builtin_scenarios_dir,
    load_fixtures,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO / "fixtures"

# What the samples beside the contract use.
DEMO_CLIENT = {
    "client_id": 112233,
    "api_key": "demo-key-toko-contoh",
    "tenant_name": "Toko Contoh",
    "oms_customer_id": "CS674",
    "wms_customer_id": "HJ",
    "warehouses": ["WH-TGR04", "WH-BAL"],
}
SAMPLE_SKUS = {"SKU-TSHIRT-M": "Kaos polos M", "SKU-CAP-01": None}


@pytest.fixture(scope="module")
def builtin() -> Fixtures:
    return load_fixtures()


@pytest.fixture
def fixtures_copy(tmp_path: Path) -> Path:
    """A writable copy of the built-in fixtures, to break on purpose."""
    for name in FIXTURE_FILES:
        shutil.copy(FIXTURES_DIR / name, tmp_path / name)

    return tmp_path


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fixtures_generate", FIXTURES_DIR / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stock_of(fixtures: Fixtures, client_id: int) -> list[dict]:
    return [row for row in fixtures.stock if row["client_id"] == client_id]


def edit_json(path: Path, change) -> None:
    rows = json.loads(path.read_text(encoding="utf-8"))
    change(rows)
    path.write_text(json.dumps(rows), encoding="utf-8")


# --------------------------------------------------------------- built-ins


def test_builtin_fixtures_dir_is_the_repository_folder() -> None:
    assert builtin_fixtures_dir() == FIXTURES_DIR


def test_builtin_fixtures_load_without_arguments(builtin: Fixtures) -> None:
    assert builtin == load_fixtures(FIXTURES_DIR)
    assert builtin.clients and builtin.warehouses
    assert builtin.carriers and builtin.stock


def test_demo_client_comes_first_and_matches_the_samples(builtin: Fixtures) -> None:
    demo = builtin.clients[0]

    for field, expected in DEMO_CLIENT.items():
        assert demo[field] == expected, field

    assert demo["webhook_url"] == ""
    assert demo["progression"] == "manual"
    assert demo["step_delay"] == 2.0


def test_sample_skus_have_stock_for_repeated_sample_orders(builtin: Fixtures) -> None:
    rows = {
        row["sku"]: row
        for row in stock_of(builtin, 112233)
        if row["warehouse_id"] == "WH-TGR04"
    }

    for sku, descr in SAMPLE_SKUS.items():
        assert rows[sku]["qty"] >= 500, sku
        if descr is not None:
            assert rows[sku]["sku_descr"] == descr


def test_demo_client_has_a_short_stock_sku(builtin: Fixtures) -> None:
    short = [
        row
        for row in stock_of(builtin, 112233)
        if row["warehouse_id"] == "WH-TGR04" and 0 < row["qty"] <= 5
    ]

    assert any(row["sku"] == "SKU-LIMITED-01" for row in short)


def test_there_are_at_least_two_clients_and_three_warehouses(builtin: Fixtures) -> None:
    assert len(builtin.clients) >= 2
    warehouse_ids = {w["warehouse_id"] for w in builtin.warehouses}
    assert {"WH-TGR04", "WH-BAL", "WH-SBY01"} <= warehouse_ids


def test_warehouses_are_in_their_named_cities(builtin: Fixtures) -> None:
    cities = {w["warehouse_id"]: w["city"] for w in builtin.warehouses}

    assert cities["WH-TGR04"] == "Tangerang"
    assert cities["WH-BAL"] == "Balikpapan"
    assert cities["WH-SBY01"] == "Surabaya"


def test_second_client_shares_a_warehouse_and_sku_codes(builtin: Fixtures) -> None:
    second = next(c for c in builtin.clients if c["client_id"] == 445566)
    assert second["api_key"] == "demo-key-second-client"
    assert second["warehouses"] == ["WH-TGR04", "WH-SBY01"]

    def tgr04_stock(client_id: int) -> dict[str, int]:
        return {
            row["sku"]: row["qty"]
            for row in stock_of(builtin, client_id)
            if row["warehouse_id"] == "WH-TGR04"
        }

    demo, other = tgr04_stock(112233), tgr04_stock(445566)
    shared = set(demo) & set(other)
    assert "SKU-TSHIRT-M" in shared
    assert all(demo[sku] != other[sku] for sku in shared)


def test_clients_have_distinct_ids_keys_and_codes(builtin: Fixtures) -> None:
    for field in ("client_id", "api_key", "oms_customer_id", "wms_customer_id"):
        values = [client[field] for client in builtin.clients]
        assert len(values) == len(set(values)), field


def test_every_client_holds_a_dozen_skus_in_each_warehouse(builtin: Fixtures) -> None:
    for client in builtin.clients:
        for warehouse_id in client["warehouses"]:
            skus = {
                row["sku"]
                for row in stock_of(builtin, client["client_id"])
                if row["warehouse_id"] == warehouse_id
            }
            assert len(skus) >= 12, (client["client_id"], warehouse_id)


def test_every_stock_row_is_in_a_warehouse_of_its_client(builtin: Fixtures) -> None:
    warehouses = {c["client_id"]: c["warehouses"] for c in builtin.clients}

    for row in builtin.stock:
        assert row["warehouse_id"] in warehouses[row["client_id"]], row
        assert row["sku_descr"]
        assert row["qty"] >= 0


def test_every_carrier_has_a_type_and_an_awb_form(builtin: Fixtures) -> None:
    for carrier in builtin.carriers:
        assert carrier["express_type"], carrier
        assert set(carrier["express_type"]) <= {"OMS", "WMS"}
        assert carrier["awb_prefix"] and carrier["awb_digits"] > 0


def test_sample_carriers_have_the_types_the_samples_need(builtin: Fixtures) -> None:
    carriers = {c["express_code"]: c for c in builtin.carriers}

    assert "OMS" in carriers["JNE"]["express_type"]
    assert "WMS" in carriers["SICEPAT"]["express_type"]
    assert carriers["SICEPAT"]["express_name"] == "SiCepat"


# --------------------------------------------------------------- generator


def test_generate_writes_the_same_files_twice(tmp_path: Path) -> None:
    generator = load_generator()
    generator.generate(tmp_path / "a")
    generator.generate(tmp_path / "b")

    for name in FIXTURE_FILES:
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name


def test_generated_files_load(tmp_path: Path) -> None:
    load_generator().generate(tmp_path)

    assert load_fixtures(tmp_path) == load_fixtures(FIXTURES_DIR)


# ------------------------------------------------------------------ errors


def test_missing_field_names_the_file_and_the_entry(fixtures_copy: Path) -> None:
    edit_json(fixtures_copy / "clients.json", lambda rows: rows[1].pop("api_key"))

    with pytest.raises(ValueError, match=r"clients\.json: entry 1 .*api_key"):
        load_fixtures(fixtures_copy)


def test_wrong_type_names_the_field(fixtures_copy: Path) -> None:
    def stringify_qty(rows: list[dict]) -> None:
        rows[0]["qty"] = "12"

    edit_json(fixtures_copy / "stock.json", stringify_qty)

    with pytest.raises(ValueError, match=r"stock\.json: entry 0 .*qty is '12'"):
        load_fixtures(fixtures_copy)


def test_client_with_unknown_warehouse_is_refused(fixtures_copy: Path) -> None:
    def add_warehouse(rows: list[dict]) -> None:
        rows[0]["warehouses"].append("WH-NOWHERE")

    edit_json(fixtures_copy / "clients.json", add_warehouse)

    with pytest.raises(ValueError, match=r"clients\.json: .*WH-NOWHERE"):
        load_fixtures(fixtures_copy)


def test_stock_of_unknown_client_is_refused(fixtures_copy: Path) -> None:
    def retarget(rows: list[dict]) -> None:
        rows[0]["client_id"] = 999999

    edit_json(fixtures_copy / "stock.json", retarget)

    with pytest.raises(ValueError, match=r"stock\.json: .*999999"):
        load_fixtures(fixtures_copy)


def test_stock_in_a_warehouse_the_client_does_not_use_is_refused(
    fixtures_copy: Path,
) -> None:
    def move(rows: list[dict]) -> None:
        rows[0]["warehouse_id"] = "WH-SBY01"  # the demo client is not there

    edit_json(fixtures_copy / "stock.json", move)

    with pytest.raises(ValueError, match=r"stock\.json: .*'WH-SBY01'"):
        load_fixtures(fixtures_copy)


def test_stock_in_an_unknown_warehouse_is_refused(fixtures_copy: Path) -> None:
    def move(rows: list[dict]) -> None:
        rows[0]["warehouse_id"] = "WH-NOWHERE"

    edit_json(fixtures_copy / "stock.json", move)

    with pytest.raises(ValueError, match=r"stock\.json: .*WH-NOWHERE"):
        load_fixtures(fixtures_copy)


def test_carrier_without_type_is_refused(fixtures_copy: Path) -> None:
    def untype(rows: list[dict]) -> None:
        rows[0]["express_type"] = []

    edit_json(fixtures_copy / "carriers.json", untype)

    with pytest.raises(ValueError, match=r"carriers\.json: .*express_type"):
        load_fixtures(fixtures_copy)


def test_duplicate_api_key_is_refused(fixtures_copy: Path) -> None:
    def duplicate(rows: list[dict]) -> None:
        rows[1]["api_key"] = rows[0]["api_key"]

    edit_json(fixtures_copy / "clients.json", duplicate)

    with pytest.raises(ValueError, match=r"clients\.json: .*api_key"):
        load_fixtures(fixtures_copy)


def test_invalid_json_names_the_file(fixtures_copy: Path) -> None:
    (fixtures_copy / "warehouses.json").write_text("[{", encoding="utf-8")

    with pytest.raises(ValueError, match=r"warehouses\.json: not valid JSON"):
        load_fixtures(fixtures_copy)


def test_missing_file_names_the_file(fixtures_copy: Path) -> None:
    (fixtures_copy / "carriers.json").unlink()

    with pytest.raises(FileNotFoundError, match=r"carriers\.json"):
        load_fixtures(fixtures_copy)


# ------------------------------------------------------ installed locations


def pretend_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Path, Path]:
    """Move the package to a site-packages-like place and sys.prefix to tmp."""
    site = tmp_path / "lib" / "site-packages" / "simulator" / "fixtures.py"
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(fixtures_module, "__file__", str(site))
    monkeypatch.setattr(sys, "prefix", str(prefix))
    return site, prefix


def test_installed_fixtures_are_found_under_sys_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, prefix = pretend_installed(monkeypatch, tmp_path)
    shared = prefix / "share" / "shipper-sim" / "fixtures"
    shutil.copytree(FIXTURES_DIR, shared)

    assert builtin_fixtures_dir() == shared
    assert load_fixtures().clients[0]["client_id"] == 112233


def test_installed_scenarios_are_found_under_sys_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, prefix = pretend_installed(monkeypatch, tmp_path)
    shared = prefix / "share" / "shipper-sim" / "scenarios"
    shared.mkdir(parents=True)
    (shared / "demo.toml").write_text("", encoding="utf-8")

    assert builtin_scenarios_dir() == shared


def test_no_builtin_fixtures_anywhere_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pretend_installed(monkeypatch, tmp_path)

    with pytest.raises(FileNotFoundError, match=r"share[/\\]shipper-sim"):
        builtin_fixtures_dir()

    with pytest.raises(FileNotFoundError, match="scenarios"):
        builtin_scenarios_dir()
