"""How the store reads and lays out an order: one state per detail, lines by key.

An order's detail reads the order, then its lines. With several processes
on one file, another process may commit in between; the detail must still
show the order and its lines as they were at one moment. New files keep an
order's lines in their key's own B-tree (``WITHOUT ROWID``); a file made
before keeps its rowid table and reads the same.
"""

from __future__ import annotations

import sqlite3

from conftest import DEMO_KEY, WAREHOUSE, b2b_body

from simulator.app import create_app
from simulator.config import Config
from simulator.store import SCHEMA, Store


def test_reads_in_a_snapshot_see_one_state(tmp_path):
    path = str(tmp_path / "state.db")
    store = Store(path)
    outside = sqlite3.connect(path, isolation_level=None)
    try:
        with store.snapshot():
            before = store.value("SELECT COUNT(*) FROM meta")
            outside.execute("INSERT INTO meta (key, value) VALUES ('elsewhere', 1)")
            assert store.value("SELECT COUNT(*) FROM meta") == before
        assert store.value("SELECT COUNT(*) FROM meta") == before + 1
    finally:
        outside.close()
        store.close()


def test_a_snapshot_inside_a_transaction_joins_it():
    store = Store()
    with store.transaction():
        store.execute("INSERT INTO meta (key, value) VALUES ('mine', 1)")
        with store.snapshot():
            assert store.value("SELECT value FROM meta WHERE key = 'mine'") == 1
    assert store.value("SELECT value FROM meta WHERE key = 'mine'") == 1


def test_a_detail_shows_its_order_and_lines_as_of_one_moment(tmp_path):
    """A commit elsewhere between the two reads is not half in the answer."""
    path = str(tmp_path / "state.db")
    app = create_app(Config(db_path=path, start_workers=False))
    simulator = app.extensions["shipper_sim"]
    backend = simulator.backend
    outside = sqlite3.connect(path, isolation_level=None)
    try:
        client = backend.client_by_key(DEMO_KEY)
        backend.create_sales_order(client, "B2B", _loaded(app, "SO-ONE-MOMENT"))
        read_lines = backend._lines

        def lines_after_a_commit_elsewhere(order_id):
            outside.execute(
                "UPDATE order_lines SET qty_allocated = qty_ordered WHERE order_id = ?",
                (order_id,),
            )
            return read_lines(order_id)

        backend._lines = lines_after_a_commit_elsewhere
        detail = backend.get_sales_order_detail_wms(client, WAREHOUSE, "SO-ONE-MOMENT")
        backend._lines = read_lines

        assert [line["qty_allocated"] for line in detail["details"]] == [0] * len(
            detail["details"]
        )
        # The change elsewhere did commit: the next detail shows it.
        again = backend.get_sales_order_detail_wms(client, WAREHOUSE, "SO-ONE-MOMENT")
        assert all(line["qty_allocated"] > 0 for line in again["details"])
    finally:
        outside.close()
        simulator.stop()


def test_a_new_file_keeps_order_lines_without_rowid(tmp_path):
    store = Store(str(tmp_path / "state.db"))
    try:
        sql = store.value("SELECT sql FROM sqlite_master WHERE name = 'order_lines'")
        assert sql.rstrip().endswith("WITHOUT ROWID")
        assert not store.value(
            "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'order_lines' "
            "AND type = 'index'"
        )
    finally:
        store.close()


def test_a_file_with_the_earlier_order_lines_table_still_serves(tmp_path):
    path = str(tmp_path / "state.db")
    spec = SCHEMA["order_lines"]
    with sqlite3.connect(path) as earlier:
        columns = ", ".join(f'"{name}"' for name in spec["columns"])
        earlier.execute(
            f"CREATE TABLE order_lines ({columns}, PRIMARY KEY (order_id, line_no))"
        )

    app = create_app(Config(db_path=path, start_workers=False))
    simulator = app.extensions["shipper_sim"]
    try:
        sql = simulator.store.value(
            "SELECT sql FROM sqlite_master WHERE name = 'order_lines'"
        )
        assert "WITHOUT ROWID" not in sql
        web = app.test_client()
        headers = {"x-api-key": DEMO_KEY}
        created = web.post(
            "/v3/fulfillment/outbound/wms",
            json=b2b_body("SO-EARLIER-FILE"),
            headers=headers,
        )
        assert created.status_code == 200, created.get_json()
        detail = web.get(
            f"/v3/fulfillment/warehouse/{WAREHOUSE}/outbound/wms/SO-EARLIER-FILE",
            headers=headers,
        )
        assert detail.status_code == 200
        lines = detail.get_json()["data"]["outbound"]["details"]
        assert [line["order_line"] for line in lines] == [
            line["line_no"] for line in b2b_body()["details"]
        ]
    finally:
        simulator.stop()


def _loaded(app, doc_no: str) -> dict:
    """The B2B sample as the API hands it to the backend, validated."""
    from simulator import schemas
    from simulator.api import CREATE_SCHEMA

    with app.app_context():
        return schemas.load_body(CREATE_SCHEMA["B2B"], b2b_body(doc_no))
