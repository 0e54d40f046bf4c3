"""How answers read the store, and how an order's lines are laid out.

An answer that reads several things (an order, then its lines; orders, then
their clients; a row it just wrote) must show them as of one moment, though
another process (``serve --workers``) may commit in between: a reset, a
removed client, a step. Tests make another connection commit at that point.

New files keep an order's lines in their key's own B-tree (``WITHOUT
ROWID``); a file made before keeps its rowid table and reads the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest
from conftest import (
    DEMO_ID,
    SECOND_ID,
    WAREHOUSE,
    ShipperClient,
    advance_ok,
    b2b_body,
    close_app,
    point_webhooks,
    set_stock,
    sim_stock,
    webhooks,
)
from flask import Flask

from simulator.app import create_app
from simulator.config import Config
from simulator.errors import ShipperError
from simulator.store import PAGE_SIZE, Store


@pytest.fixture
def file_app(tmp_path) -> Iterator[tuple[Flask, str]]:
    path = str(tmp_path / "state.db")
    app = create_app(Config(db_path=path, start_workers=False))
    yield app, path
    close_app(app)


@contextmanager
def commits_elsewhere_before(obj, name: str, path: str, sql: str, arg=None):
    """Within: each call of ``obj.name`` follows a commit by another process.

    ``sql`` takes one parameter: ``arg``, else the call's first argument. The
    commit may find the database locked (a write under way here): then it
    does not happen, as it could not in another process either.
    """
    outside = sqlite3.connect(path, isolation_level=None, timeout=0)
    call = getattr(obj, name)

    def after_a_commit_elsewhere(*args, **kwargs):
        try:
            outside.execute(sql, (arg if arg is not None else args[0],))
        except sqlite3.OperationalError:  # locked: our own write is under way
            pass
        return call(*args, **kwargs)

    setattr(obj, name, after_a_commit_elsewhere)
    try:
        yield
    finally:
        delattr(obj, name)  # the method again
        outside.close()


def lines_change_elsewhere(file_app, order_no: str, sql: str):
    """A B2B order just made, whose lines another process changes (``sql``
    on its id) right before each read of them; yields a client of the app."""
    app, path = file_app
    http = app.test_client()
    ShipperClient(http).create_ok("wms", b2b_body(order_no))
    backend = app.extensions["shipper_sim"].backend
    return http, commits_elsewhere_before(backend, "_lines", path, sql)


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


def test_a_detail_shows_its_order_and_lines_as_of_one_moment(file_app):
    """A commit elsewhere between the two reads is not half in the answer."""
    http, elsewhere = lines_change_elsewhere(
        file_app,
        "SO-ONE-MOMENT",
        "UPDATE order_lines SET qty_allocated = qty_ordered WHERE order_id = ?",
    )
    api = ShipperClient(http)
    with elsewhere:
        detail = api.outbound("wms", "SO-ONE-MOMENT")

    assert [line["qty_allocated"] for line in detail["details"]] == [0] * len(
        detail["details"]
    )
    # The change elsewhere did commit: the next detail shows it.
    again = api.outbound("wms", "SO-ONE-MOMENT")
    assert all(line["qty_allocated"] > 0 for line in again["details"])


def test_a_new_file_keeps_tables_read_by_key_without_rowid(tmp_path):
    store = Store(str(tmp_path / "state.db"))
    try:
        for table in KEYED_TABLES:
            sql = store.value("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
            assert sql.rstrip().endswith("WITHOUT ROWID"), table
            assert indexes(store, table) == set(), table
    finally:
        store.close()


# Tables a file made by an earlier version has with a rowid table behind
# their key, with a separate index for the key.
KEYED_TABLES = ("order_lines", "stock", "order_counts", "change_marks")


def indexes(store: Store, table: str) -> set[str]:
    """Every index of a table, SQLite's own for a key included."""
    return {
        r["name"]
        for r in store.rows(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
            (table,),
        )
    }


def create_earlier_tables(path: str) -> None:
    """A file whose keyed tables are as an earlier version made them."""
    Store(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as earlier:
        for table in KEYED_TABLES:  # all empty still
            (sql,) = earlier.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()
            earlier.execute(f"DROP TABLE {table}")
            earlier.execute(sql.replace(" WITHOUT ROWID", ""))


def test_a_file_with_the_earlier_keyed_tables_still_serves(tmp_path):
    path = str(tmp_path / "state.db")
    create_earlier_tables(path)

    app = create_app(Config(db_path=path, start_workers=False))
    simulator = app.extensions["shipper_sim"]
    try:
        for table in KEYED_TABLES:
            sql = simulator.store.value(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            )
            assert "WITHOUT ROWID" not in sql, table
            assert indexes(simulator.store, table), table
        http = app.test_client()
        api = ShipperClient(http)
        marks = http.get("/_sim/changes", query_string={"client_id": DEMO_ID})
        before = sim_stock(http, "SKU-CAP-01")["qty_sellable"]

        api.create_ok("wms", b2b_body("SO-EARLIER-FILE"))

        lines = api.outbound("wms", "SO-EARLIER-FILE")["details"]
        assert [line["order_line"] for line in lines] == [
            line["line_no"] for line in b2b_body()["details"]
        ]
        assert api.list("WMS").get_json()["pagination"]["total_elements"] == 1
        (held,) = [d for d in b2b_body()["details"] if d["sku"] == "SKU-CAP-01"]
        after = sim_stock(http, "SKU-CAP-01")["qty_sellable"]
        assert after == before - held["qty_ordered"]
        moved = http.get("/_sim/changes", query_string={"client_id": DEMO_ID})
        assert (
            moved.get_json()["marks"]["orders"] != marks.get_json()["marks"]["orders"]
        )
    finally:
        close_app(app)


NEW_INDEXES = {
    "orders": {
        "idx_orders_order_no_warehouse_id_client_id",
        "idx_orders_client_id_kind_created",
        "idx_orders_client_id_created_last_step",
        "idx_orders_client_id_status_created",
    },
    "deliveries": {"idx_deliveries_order_id", "pending_deliveries"},
}


def test_a_new_file_has_small_pages_and_few_indexes_to_write(tmp_path):
    store = Store(str(tmp_path / "state.db"))
    try:
        assert store.value("PRAGMA page_size") == PAGE_SIZE == 2048
        for table, names in NEW_INDEXES.items():
            assert indexes(store, table) == names
    finally:
        store.close()


# As the version before left its files: other indexes on orders and
# deliveries, and pages of SQLite's default size.
EARLIER_INDEXES = [
    "CREATE UNIQUE INDEX idx_orders_client_id_warehouse_id_order_no "
    "ON orders (client_id, warehouse_id, order_no)",
    "CREATE INDEX idx_orders_warehouse_id_order_no ON orders (warehouse_id, order_no)",
    "CREATE INDEX idx_deliveries_state_order_id_id ON deliveries (state, order_id, id)",
    "CREATE INDEX idx_deliveries_order_no ON deliveries (order_no)",
]


def test_a_file_from_before_gets_todays_indexes_and_keeps_serving(tmp_path):
    path = str(tmp_path / "state.db")
    app = create_app(Config(db_path=path, start_workers=False))
    ShipperClient(app.test_client()).create_ok("wms", b2b_body("SO-BEFORE"))
    close_app(app)
    with closing(sqlite3.connect(path, isolation_level=None)) as earlier:
        for name in (
            "idx_orders_order_no_warehouse_id_client_id",
            "pending_deliveries",
        ):
            earlier.execute(f"DROP INDEX {name}")
        for sql in EARLIER_INDEXES:
            earlier.execute(sql)
        earlier.execute("PRAGMA journal_mode=DELETE")
        earlier.execute("PRAGMA page_size=4096")
        earlier.execute("VACUUM")

    app = create_app(Config(db_path=path, start_workers=False))
    try:
        store = app.extensions["shipper_sim"].store
        assert store.value("PRAGMA page_size") == 4096  # a file keeps its pages
        for table, names in NEW_INDEXES.items():
            assert indexes(store, table) == names
        http = app.test_client()
        api = ShipperClient(http)
        assert api.outbound("wms", "SO-BEFORE")["so_status"] == "CREATED"
        again = api.create("wms", b2b_body("SO-BEFORE"))
        assert again.status_code == 400
        assert again.get_json()["metadata"]["errors"][0]["code"] == 3011
        api.create_ok("wms", b2b_body("SO-AFTER"))
        timeline = http.get(f"/_sim/orders/{WAREHOUSE}/SO-BEFORE").get_json()
        assert timeline["order"]["order_no"] == "SO-BEFORE"
        assert {w["order_no"] for w in webhooks(http, order_no="SO-AFTER")} == {
            "SO-AFTER"
        }
        assert len(webhooks(http, order_no="SO-BEFORE")) == 2
    finally:
        close_app(app)


def test_the_webhook_log_finds_a_number_of_every_client_and_the_pending(
    http, api, second_api, sim
):
    for client_id in (DEMO_ID, SECOND_ID):  # nothing sends here: they wait
        point_webhooks(http, client_id, "http://127.0.0.1:9/hooks")
    api.create_ok("wms", b2b_body("SO-SHARED"))
    api.create_ok("wms", b2b_body("SO-OTHER"))
    second_api.create_ok(
        "wms", b2b_body("SO-SHARED", customer_id="MDS", lines=[("SKU-TSHIRT-M", 3)])
    )
    shared = webhooks(http, order_no="SO-SHARED")
    assert [(w["client_id"], w["order_no"]) for w in shared] == [
        (DEMO_ID, "SO-SHARED"),
        (DEMO_ID, "SO-SHARED"),
        (SECOND_ID, "SO-SHARED"),
        (SECOND_ID, "SO-SHARED"),
    ]
    assert len(webhooks(http, order_no="SO-SHARED", client_id=SECOND_ID)) == 2
    assert webhooks(http, order_no="SO-NONE") == []

    # All six wait, until one is marked sent.
    assert len(webhooks(http, state="pending")) == 6
    with sim.store.transaction():
        sim.store.execute(
            "UPDATE deliveries SET state = 'delivered' WHERE id = ?", (shared[0]["id"],)
        )
    pending = webhooks(http, state="pending")
    assert len(pending) == 5 and shared[0]["id"] not in {w["id"] for w in pending}
    assert [w["id"] for w in webhooks(http, state="delivered")] == [shared[0]["id"]]
    assert len(webhooks(http, state="pending", order_no="SO-SHARED")) == 3


# -- the control API's view of one order ------------------------------------------


def test_a_timeline_shows_its_order_and_lines_as_of_one_moment(file_app):
    http, elsewhere = lines_change_elsewhere(
        file_app,
        "SO-TIMELINE",
        "UPDATE order_lines SET qty_allocated = qty_ordered WHERE order_id = ?",
    )
    with elsewhere:
        timeline = http.get(f"/_sim/orders/{WAREHOUSE}/SO-TIMELINE").get_json()

    shown = [line["qty_allocated"] for line in timeline["order"]["details"]]
    listed = [line["qty_allocated"] for line in timeline["lines"]]
    assert shown == listed == [0] * len(listed)


def test_an_advance_answers_the_state_its_steps_left(file_app):
    http, elsewhere = lines_change_elsewhere(
        file_app,
        "SO-ADVANCED",
        "UPDATE order_lines SET qty_picked = qty_allocated WHERE order_id = ?",
    )
    with elsewhere:
        answer = advance_ok(http, "SO-ADVANCED", step="allocate")

    assert answer["so_status"] == "ALLOCATED"
    assert all(line["qty_picked"] == 0 for line in answer["details"])


@pytest.mark.parametrize(
    "method, tail, body",
    [
        ("GET", "", None),
        ("POST", "/advance", {"step": "allocate"}),
        ("PUT", "/progression", {"mode": "auto"}),
    ],
)
def test_an_order_a_reset_took_after_its_lookup_is_a_404(app, method, tail, body):
    http = app.test_client()
    ShipperClient(http).create_ok("wms", b2b_body("SO-GONE"))
    backend = app.extensions["shipper_sim"].backend
    find = backend.find_order_for_control

    def found_then_reset(*args, **kwargs):
        order = find(*args, **kwargs)
        backend.reset()
        return order

    backend.find_order_for_control = found_then_reset
    response = http.open(
        f"/_sim/orders/{WAREHOUSE}/SO-GONE{tail}", method=method, json=body
    )

    assert response.status_code == 404, response.get_json()
    assert "gone" in response.get_json()["error"]


def test_a_timed_allocation_without_stock_leaves_nothing_of_itself(app):
    http = app.test_client()
    simulator = app.extensions["shipper_sim"]
    set_stock(http, "SKU-CAP-02", 0)
    patched = http.patch(
        f"/_sim/clients/{DEMO_ID}", json={"progression": "auto", "step_delay": 0}
    )
    assert patched.status_code == 200, patched.get_json()
    body = b2b_body("SO-NO-STOCK", lines=[("SKU-CAP-02", 5)])
    api = ShipperClient(http)
    api.create_ok("wms", body)

    assert simulator.backend.run_due_jobs() == 1  # the allocation, which waits

    outbound = api.outbound("wms", "SO-NO-STOCK")
    (line,) = outbound["details"]
    assert outbound["so_status"] == "CREATED"
    assert (line["line_status"], line["qty_allocated"]) == ("", 0)
    # It is tried again later, as it was.
    assert simulator.store.value("SELECT COUNT(*) FROM jobs") == 1


def test_a_savepoint_undoes_only_its_own_part():
    store = Store()
    with store.transaction():
        store.execute("INSERT INTO meta (key, value) VALUES ('before', 1)")
        with pytest.raises(ValueError), store.savepoint():
            store.execute("INSERT INTO meta (key, value) VALUES ('inside', 1)")
            raise ValueError("refused part way")
        store.execute("INSERT INTO meta (key, value) VALUES ('after', 1)")
    kept = {r["key"] for r in store.rows("SELECT key FROM meta")}
    assert {"before", "after"} <= kept and "inside" not in kept

    with pytest.raises(RuntimeError):
        with store.savepoint():
            pass


# -- what the control API answers after a change -------------------------------------


def test_a_stock_change_answers_the_row_it_wrote(file_app):
    app, path = file_app
    backend = app.extensions["shipper_sim"].backend
    with commits_elsewhere_before(
        backend,
        "stock_row",
        path,
        "DELETE FROM stock WHERE client_id = ?",  # as a reset would
        arg=DEMO_ID,
    ):
        response = app.test_client().put(
            "/_sim/stock",
            json={
                "client_id": DEMO_ID,
                "warehouse_id": WAREHOUSE,
                "sku": "SKU-NEW-01",
                "qty": 5,
            },
        )
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["sku"], response.get_json()["qty_on_hand"]) == (
        "SKU-NEW-01",
        5,
    )


def test_an_added_client_answers_as_added(file_app):
    app, path = file_app
    backend = app.extensions["shipper_sim"].backend
    new = {
        "api_key": "key-added-then-gone",
        "client_id": 900011,
        "tenant_name": "Toko Sebentar",
        "oms_customer_id": "CS911",
        "wms_customer_id": "SEBENTAR",
        "warehouses": [WAREHOUSE],
    }
    with commits_elsewhere_before(
        backend,
        "client",
        path,
        "DELETE FROM clients WHERE client_id = ?",  # as a removal would
        arg=900011,
    ):
        response = app.test_client().post("/_sim/clients", json=new)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["warehouses"] == [WAREHOUSE]


def test_the_order_list_reads_orders_and_their_clients_at_one_moment(file_app):
    app, path = file_app
    http = app.test_client()
    ShipperClient(http).create_ok("wms", b2b_body("SO-LISTED"))
    backend = app.extensions["shipper_sim"].backend
    with commits_elsewhere_before(
        backend,
        "client",
        path,
        "DELETE FROM clients WHERE client_id = ?",  # as a removal would
    ):
        response = http.get("/_sim/orders", query_string={"limit": 50})
    assert response.status_code == 200, response.get_json()
    assert "SO-LISTED" in {o["order_no"] for o in response.get_json()["orders"]}


def test_a_warehouse_refused_for_a_client_with_none_left_says_so(sim):
    gone = {"client_id": 777000}  # removed after its key was checked
    with pytest.raises(ShipperError) as refused:
        sim.backend._check_warehouse(gone, WAREHOUSE)
    assert refused.value.code == 3014
    assert refused.value.reason.endswith("it has none now")
