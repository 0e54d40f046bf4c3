"""Master data kept between requests: a key's client, its warehouses, carriers.

A process keeps what it read of them until the store's master version
moves, which any change to their tables does once it ends, in whichever
process made it. These tests check that a change is seen at once by the
next request, in one process and across the workers of ``serve --workers``,
and that nothing uncommitted or changed past the simulator lingers.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from conftest import DEMO_ID, DEMO_KEY, b2b_body
from serving import Api, SimServer

from simulator import backend as backend_module
from simulator.app import create_app
from simulator.config import Config
from simulator.store import Store

NEW_KEY = "key-kept-apart"


def new_client(warehouses: list[str], key: str = NEW_KEY) -> dict:
    return {
        "api_key": key,
        "client_id": 900077,
        "tenant_name": "Toko Terpisah",
        "oms_customer_id": "CS977",
        "wms_customer_id": "PISAH",
        "warehouses": warehouses,
    }


# -- the store's master version ------------------------------------------------------


def test_the_master_version_moves_once_a_master_change_commits():
    store = Store()
    before = store.master_version()

    with store.transaction():
        store.next_number("anything")  # not master data
    assert store.master_version() == before

    with store.transaction():
        store.execute("UPDATE clients SET tenant_name = 'x' WHERE 0")  # no row
    assert store.master_version() == before

    with store.transaction():
        store.execute(
            "INSERT INTO carriers VALUES ('NEWCO', 'New Co', 'B2C', 'NC', 10)"
        )
        assert store.master_version() is None  # nothing to keep meanwhile
    after = store.master_version()
    assert after is not None and after != before


def test_a_rolled_back_master_change_moves_the_version_too():
    # What was read inside it (uncommitted) must not be kept.
    store = Store()
    before = store.master_version()

    with pytest.raises(RuntimeError), store.transaction():
        store.execute("INSERT INTO warehouses VALUES ('WH-X', 'X', 'Kota', 'J')")
        raise RuntimeError("refused")

    assert store.master_version() not in (None, before)
    assert store.value("SELECT COUNT(*) FROM warehouses") == 0


def test_a_master_change_outside_a_transaction_moves_the_version():
    store = Store()
    before = store.master_version()

    store.execute("INSERT INTO warehouses VALUES ('WH-X', 'X', 'Kota', 'Jalan')")

    assert store.master_version() not in (None, before)


def test_stores_sharing_a_file_see_each_others_master_changes(tmp_path):
    path = str(tmp_path / "state.db")
    one, other = Store(path, shared=True), Store(path, shared=True)
    try:
        seen = other.master_version()
        with one.transaction():
            one.execute("INSERT INTO warehouses VALUES ('WH-X', 'X', 'Kota', 'J')")

        assert other.master_version() != seen
        seen = other.master_version()
        with one.transaction():
            one.next_number("orders only")
        assert other.master_version() == seen
    finally:
        one.close()
        other.close()


@pytest.mark.parametrize("left", [b"", b"8 bytes!"])
def test_a_master_file_already_there_is_read_as_it_is(tmp_path, left):
    path = str(tmp_path / "state.db")
    Path(f"{path}-master").write_bytes(left)
    store = Store(path, shared=True)
    try:
        assert store.master_version()[1] == left.ljust(8, b"\0")
        with store.transaction():
            store.execute("INSERT INTO warehouses VALUES ('WH-X', 'X', 'Kota', 'J')")
        moved = store.master_version()[1]
        assert moved != left.ljust(8, b"\0")
        assert Path(f"{path}-master").read_bytes() == moved
    finally:
        store.close()


def test_the_master_file_is_not_executable(tmp_path):
    path = str(tmp_path / "state.db")
    store = Store(path, shared=True)
    store.close()

    assert not Path(f"{path}-master").stat().st_mode & 0o111


def test_a_change_that_cannot_be_marked_still_stands(tmp_path, monkeypatch, caplog):
    path = str(tmp_path / "state.db")
    store = Store(path, shared=True)
    try:

        def full_disk(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("simulator.store.os.pwrite", full_disk)
        with store.transaction():
            store.execute("INSERT INTO warehouses VALUES ('WH-X', 'X', 'Kota', 'J')")

        assert store.value("SELECT COUNT(*) FROM warehouses") == 1
        assert "could not mark a change of master data" in caplog.text
    finally:
        store.close()


# -- what a process keeps ------------------------------------------------------------


@pytest.fixture
def sim_backend():
    app = create_app(Config(start_workers=False))
    yield app.extensions["shipper_sim"].backend
    app.extensions["shipper_sim"].stop()


def test_a_kept_client_is_handed_out_as_a_copy(sim_backend):
    first = sim_backend.client_by_key(DEMO_KEY)
    first["webhook_url"] = "http://127.0.0.1:1/changed-by-a-caller"

    assert sim_backend.client_by_key(DEMO_KEY)["webhook_url"] != first["webhook_url"]


def test_a_change_through_the_store_is_seen_by_the_next_lookup(sim_backend):
    assert sim_backend.client_by_key(DEMO_KEY)["tenant_name"] != "Renamed"
    assert "WH-ZZZ" not in sim_backend.client_warehouses(DEMO_ID)

    sim_backend.update_client(DEMO_ID, {"tenant_name": "Renamed"})
    sim_backend.store.execute(
        "INSERT INTO client_warehouses VALUES (?, 'WH-ZZZ')", (DEMO_ID,)
    )

    assert sim_backend.client_by_key(DEMO_KEY)["tenant_name"] == "Renamed"
    assert "WH-ZZZ" in sim_backend.client_warehouses(DEMO_ID)


def test_a_carrier_dropped_mid_transaction_is_not_kept(sim_backend):
    code = sim_backend.store.value("SELECT express_code FROM carriers LIMIT 1")
    kind = "B2C" if sim_backend._express("B2C", code) else "B2B"
    assert sim_backend._express(kind, code) is not None

    with pytest.raises(RuntimeError), sim_backend.store.transaction():
        sim_backend.store.execute("DELETE FROM carriers")
        assert sim_backend._express(kind, code) is None  # its own change
        raise RuntimeError("refused")

    assert sim_backend._express(kind, code) is not None


def test_a_change_made_past_the_simulator_is_seen_soon(tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "MASTER_KEPT_FOR", 0.2)
    path = str(tmp_path / "state.db")
    app = create_app(Config(db_path=path, start_workers=False))
    backend = app.extensions["shipper_sim"].backend
    try:
        assert backend.client_by_key(DEMO_KEY) is not None
        with sqlite3.connect(path) as shell:  # no trigger of ours there
            shell.execute(
                "UPDATE clients SET api_key = 'rotated' WHERE api_key = ?", (DEMO_KEY,)
            )
        time.sleep(0.3)

        assert backend.client_by_key(DEMO_KEY) is None
        assert backend.client_by_key("rotated")["client_id"] == DEMO_ID
    finally:
        app.extensions["shipper_sim"].stop()


# -- across the workers of serve --workers -------------------------------------------


def test_every_worker_sees_a_client_change_at_once(tmp_path):
    with SimServer(db=tmp_path / "state.db", workers=2) as server:
        demo, new = Api(server.url), Api(server.url, NEW_KEY)
        for _ in range(12):  # every worker reads (and keeps) the demo client
            assert demo.call("GET", "/express").status_code == 200

        added = demo.sim("POST", "/clients", json=new_client(["WH-TGR04"]))
        assert added.status_code == 201, added.text
        assert {new.call("GET", "/express").status_code for _ in range(12)} == {200}

        assert demo.sim("DELETE", "/clients/900077").status_code == 200
        assert {new.call("GET", "/express").status_code for _ in range(12)} == {401}

        # The same key again, for another warehouse only: kept warehouses go.
        again = demo.sim("POST", "/clients", json=new_client(["WH-NEW01"]))
        assert again.status_code == 201, again.text
        refused = [
            new.create("wms", b2b_body(doc_no=f"KEPT-{n}", customer_id="PISAH"))
            for n in range(12)
        ]
        assert {r.json()["metadata"]["errors"][0]["code"] for r in refused} == {3014}

        assert demo.sim("POST", "/reset").status_code == 200
        assert {new.call("GET", "/express").status_code for _ in range(12)} == {401}
        assert {demo.call("GET", "/express").status_code for _ in range(12)} == {200}
