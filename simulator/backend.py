"""The backend: Shipper's outbound operations and the order state machine.

Named after the endpoints (``create_sales_order``, ``cancel_sales_order``,
...). Each operation runs in one store transaction: the checks, the writes
and the webhook rows it queues are decided together, so a refused request
leaves nothing behind and two concurrent requests cannot both take the same
stock or the same order number. No Flask here, and no response shaping
beyond :mod:`simulator.views`.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

from . import views
from .clock import JAKARTA, Clock
from .config import Config
from .errors import ControlError, InvalidInput, ShipperError
from .fixtures import Fixtures
from .jsontext import dumps
from .statuses import (
    CANCELLED_CODE,
    EDITABLE_STATUSES,
    OPEN_STATUSES,
    STEP_BY_NAME,
    STEPS,
    WMS_CODE_NAMES,
    Step,
    code_for,
    step_index,
    steps_to_reach,
)
from .store import ACTIVITY_TABLES, Store

log = logging.getLogger(__name__)

# What a process read of master data (a key's client, a client's warehouses,
# a carrier) it keeps until the store's master version moves, and at most
# this long (seconds): enough for a change made past the simulator (in a
# sqlite3 shell, say) to be seen soon.
MASTER_KEPT_FOR = 1.0

NUMBER_FIELD = {"B2C": "so_number", "B2B": "doc_no"}
EXPRESS_FIELD = {"B2C": "express_code", "B2B": "carrier_id"}
CUSTOMER_FIELD = {"B2C": "oms_customer_id", "B2B": "wms_customer_id"}
EXPRESS_TYPE = {"B2C": "OMS", "B2B": "WMS"}
GROUP_KEY_PREFIX = {"B2C": "hwoutboundoms", "B2B": "hwoutboundwms"}

# Order types the list endpoint's ``order_type`` filter stands for.
ORDER_TYPE_FILTER = {"SO": ("SO", "CSO"), "RT": ("RT",), "TT": ("TT",)}

# Seconds at least between two tries of a timed step that has to wait (for
# stock), whatever the step delay.
WAITING_STEP_RETRY = 1.0

# Per step: the line quantity an open order may still ship, for OMS stock.
# Before a step runs again its cap is what the step before reached.
_OUTSTANDING_SQL = (
    "CASE o.last_step "
    + " ".join(f"WHEN '{s.name}' THEN l.{s.capped_by}" for s in STEPS if s.capped_by)
    + " ELSE l.qty_ordered END"
)


class Backend:
    def __init__(
        self, config: Config, store: Store, clock: Clock, fixtures: Fixtures
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.fixtures = fixtures
        self.rng = random.Random(config.seed)
        self._master: dict = {}
        self._master_read: tuple = (None, 0.0)

        # Checked and loaded in one transaction: several worker processes
        # opening one new file load the fixtures once.
        with store.transaction():
            if not store.value("SELECT COUNT(*) FROM clients"):
                self._load_fixtures()
            else:
                # A database opened again: the seed alone would make the same
                # AWBs as before the restart, so each opening draws its own.
                opening = store.next_number("rng_openings")
                self.rng.seed(f"{config.seed}:{opening}")

    # ------------------------------------------------------------ master data
    def _load_fixtures(self) -> None:
        f = self.fixtures
        for w in f.warehouses:
            self.store.execute(
                "INSERT OR REPLACE INTO warehouses VALUES (?, ?, ?, ?)",
                (w["warehouse_id"], w["name"], w["city"], w["address"]),
            )
        for c in f.carriers:
            self.store.execute(
                "INSERT OR REPLACE INTO carriers VALUES (?, ?, ?, ?, ?)",
                (
                    c["express_code"],
                    c["express_name"],
                    ",".join(c["express_type"]),
                    c.get("awb_prefix", ""),
                    c.get("awb_digits", 12),
                ),
            )
        for c in f.clients:
            self._insert_client(c, from_fixtures=True)
        for s in f.stock:
            self._upsert_stock(
                s["client_id"],
                s["warehouse_id"],
                s["sku"],
                s["qty"],
                s.get("sku_descr", ""),
                s.get("receipt_date", ""),
            )

    def _insert_client(self, c: dict, from_fixtures: bool = False) -> None:
        self.store.insert(
            "clients",
            {
                "client_id": c["client_id"],
                "api_key": c["api_key"],
                "tenant_name": c["tenant_name"],
                "oms_customer_id": c["oms_customer_id"],
                "wms_customer_id": c["wms_customer_id"],
                "webhook_url": c.get("webhook_url", ""),
                "progression": c.get("progression", "manual"),
                "step_delay": float(c.get("step_delay", self.config.step_delay)),
                "from_fixtures": int(from_fixtures),
            },
        )
        for warehouse_id in c["warehouses"]:
            self.store.execute(
                "INSERT OR IGNORE INTO warehouses VALUES (?, ?, ?, ?)",
                (warehouse_id, warehouse_id, "", ""),
            )
            self.store.execute(
                "INSERT OR IGNORE INTO client_warehouses VALUES (?, ?)",
                (c["client_id"], warehouse_id),
            )

    def _upsert_stock(
        self,
        client_id: int,
        warehouse_id: str,
        sku: str,
        qty: int,
        sku_descr: str,
        receipt_date: str,
    ) -> None:
        receipt_date = receipt_date or self._today()
        self.store.execute(
            "INSERT INTO stock (client_id, warehouse_id, sku, sku_descr, "
            "qty_on_hand, qty_reserved, qty_held, qty_baseline, receipt_date) "
            "VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?) "
            "ON CONFLICT(client_id, warehouse_id, sku) DO UPDATE SET "
            "qty_on_hand = excluded.qty_on_hand, "
            "qty_baseline = excluded.qty_baseline, "
            "sku_descr = CASE WHEN excluded.sku_descr = '' THEN sku_descr "
            "ELSE excluded.sku_descr END",
            (client_id, warehouse_id, sku, sku_descr, qty, qty, receipt_date),
        )

    def _today(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), JAKARTA).strftime("%Y-%m-%d")

    def reset(self, client_id: int | None = None) -> dict:
        """Drop orders, deliveries and journal; a full reset reloads fixtures."""
        with self.store.transaction():
            if client_id is None:
                for table in (*ACTIVITY_TABLES, "stock", "client_warehouses"):
                    self.store.execute(f"DELETE FROM {table}")
                for table in ("clients", "warehouses", "carriers", "meta"):
                    self.store.execute(f"DELETE FROM {table}")
                self.rng.seed(self.config.seed)
                self._load_fixtures()
                self.store.mark_changed()
            else:
                self.client(client_id)
                self._drop_client_activity(client_id)
                self.store.execute(
                    "UPDATE stock SET qty_on_hand = qty_baseline, qty_reserved = 0, "
                    "qty_held = 0 "
                    "WHERE client_id = ?",
                    (client_id,),
                )
                self.store.mark_changed(client_id)
        self.clock.wake()
        return {"status": "ok", "client_id": client_id}

    def remove_client(self, client_id: int) -> dict:
        """Drop a client with everything it has (a full reset brings back
        the fixture clients)."""
        with self.store.transaction():
            self.client(client_id)
            self._drop_client_activity(client_id)
            for table in ("stock", "client_warehouses", "clients"):
                self.store.execute(
                    f"DELETE FROM {table} WHERE client_id = ?", (client_id,)
                )
            self.store.mark_changed(client_id)
        return {"removed": client_id}

    def _drop_client_activity(self, client_id: int) -> None:
        orders = "(SELECT id FROM orders WHERE client_id = ?)"
        deliveries = "(SELECT id FROM deliveries WHERE client_id = ?)"
        for sql in (
            f"DELETE FROM order_lines WHERE order_id IN {orders}",
            f"DELETE FROM order_events WHERE order_id IN {orders}",
            f"DELETE FROM jobs WHERE order_id IN {orders}",
            f"DELETE FROM delivery_attempts WHERE delivery_id IN {deliveries}",
            "DELETE FROM deliveries WHERE client_id = ?",
            "DELETE FROM orders WHERE client_id = ?",
            "DELETE FROM journal WHERE client_id = ?",
        ):
            self.store.execute(sql, (client_id,))

    def _kept_master(self) -> dict:
        """Master data read since the master version last moved (see store)."""
        version = self.store.master_version()
        if version is None:  # changed in the open transaction: keep nothing
            return {}
        now = time.monotonic()
        read_version, read_at = self._master_read
        if version != read_version or now - read_at > MASTER_KEPT_FOR:
            self._master, self._master_read = {}, (version, now)
        return self._master

    def _kept(self, key: tuple, read: Callable[[], Any]) -> Any:
        """What ``read`` answers, kept until master data changes; None (an
        unknown key or code, of which there is no end) is not kept."""
        kept = self._kept_master()
        found = kept.get(key)
        if found is None:
            found = read()
            if found is not None:
                kept[key] = found
        return found

    # -- clients
    def client_by_key(self, api_key: str) -> dict | None:
        client = self._kept(
            ("key", api_key),
            lambda: self.store.row(
                "SELECT * FROM clients WHERE api_key = ?", (api_key,)
            ),
        )
        return dict(client) if client is not None else None

    def client(self, client_id: int) -> dict:
        found = self.store.row(
            "SELECT * FROM clients WHERE client_id = ?", (client_id,)
        )
        if found is None:
            raise ControlError(f"no client {client_id}", 404, "client_id")
        return found

    def clients(self) -> list[dict]:
        return [
            self.describe_client(c)
            for c in self.store.rows("SELECT * FROM clients ORDER BY client_id")
        ]

    def describe_client(self, client: dict) -> dict:
        return {
            "client_id": client["client_id"],
            "api_key": client["api_key"],
            "tenant_name": client["tenant_name"],
            "oms_customer_id": client["oms_customer_id"],
            "wms_customer_id": client["wms_customer_id"],
            "warehouses": sorted(self.client_warehouses(client["client_id"])),
            "webhook_url": client["webhook_url"],
            "progression": client["progression"],
            "step_delay": client["step_delay"],
            "from_fixtures": bool(client["from_fixtures"]),
        }

    def client_warehouses(self, client_id: int) -> frozenset[str]:
        return self._kept(
            ("warehouses", client_id),
            lambda: frozenset(
                r["warehouse_id"]
                for r in self.store.rows(
                    "SELECT warehouse_id FROM client_warehouses WHERE client_id = ?",
                    (client_id,),
                )
            ),
        )

    def add_client(self, data: dict) -> dict:
        with self.store.transaction():
            if self.store.value(
                "SELECT 1 FROM clients WHERE client_id = ?", (data["client_id"],)
            ):
                raise ControlError(
                    f"client_id {data['client_id']} is taken", 400, "client_id"
                )
            if self.client_by_key(data["api_key"]):
                raise ControlError("that api_key is taken", 400, "api_key")
            self._insert_client(data)
            # As added, whatever another request does to it once committed.
            return self.describe_client(self.client(data["client_id"]))

    def update_client(self, client_id: int, changes: dict) -> dict:
        allowed = {"webhook_url", "progression", "step_delay", "tenant_name"}
        values = {k: v for k, v in changes.items() if k in allowed}
        with self.store.transaction():
            self.client(client_id)
            if values:
                self.store.update("clients", {"client_id": client_id}, values)
            answer = self.describe_client(self.client(client_id))
        self.clock.wake()
        return answer

    def set_stock(self, data: dict) -> dict:
        client_id, warehouse_id = data["client_id"], data["warehouse_id"]
        with self.store.transaction():
            self.client(client_id)
            if warehouse_id not in self.client_warehouses(client_id):
                raise ControlError(
                    f"warehouse {warehouse_id!r} is not one of client {client_id}'s",
                    400,
                    "warehouse_id",
                )
            # Fewer units than are allocated would ship into negative stock.
            reserved = self.store.value(
                "SELECT qty_reserved FROM stock WHERE client_id = ? "
                "AND warehouse_id = ? AND sku = ?",
                (client_id, warehouse_id, data["sku"]),
            )
            if reserved and data["qty"] < reserved:
                raise ControlError(
                    f"qty: {reserved} of {data['sku']} in {warehouse_id} are "
                    f"allocated to open orders; set at least {reserved}, "
                    f"got {data['qty']}",
                    400,
                    "qty",
                )
            self._upsert_stock(
                client_id,
                warehouse_id,
                data["sku"],
                data["qty"],
                data.get("sku_descr", ""),
                "",
            )
            return self.stock_row(client_id, warehouse_id, data["sku"])

    def stock_row(self, client_id: int, warehouse_id: str, sku: str) -> dict:
        row = self.store.row(
            "SELECT * FROM stock WHERE client_id = ? AND warehouse_id = ? AND sku = ?",
            (client_id, warehouse_id, sku),
        )
        oms = self._oms_stock(client_id, warehouse_id)
        return self._describe_stock(row, oms)

    def _describe_stock(self, row: dict, oms: dict[str, int]) -> dict:
        return {
            "client_id": row["client_id"],
            "warehouse_id": row["warehouse_id"],
            "sku": row["sku"],
            "sku_descr": row["sku_descr"],
            "qty_on_hand": row["qty_on_hand"],
            "qty_allocated": row["qty_reserved"],
            "qty_available": max(0, row["qty_on_hand"] - row["qty_reserved"]),
            "qty_sellable": self._sellable(row, oms),
        }

    def stock_levels(self, client_id: int) -> list[dict]:
        out = []
        for warehouse_id in sorted(self.client_warehouses(client_id)):
            oms = self._oms_stock(client_id, warehouse_id)
            rows = self.store.rows(
                "SELECT * FROM stock WHERE client_id = ? AND warehouse_id = ? "
                "ORDER BY sku",
                (client_id, warehouse_id),
            )
            out.extend(self._describe_stock(r, oms) for r in rows)
        return out

    # ------------------------------------------------------- shared checks
    def _check_customer(self, client: dict, kind: str, body: dict) -> None:
        expected = client[CUSTOMER_FIELD[kind]]
        if body["customer_id"] != expected:
            raise InvalidInput(
                f"customer_id: must be this client's "
                f"{'OMS shop' if kind == 'B2C' else 'WMS owner'} code "
                f"{expected!r}, got {body['customer_id']!r}"
            )

    def _check_warehouse(self, client: dict, warehouse_id: str) -> None:
        held = self.client_warehouses(client["client_id"])
        if warehouse_id not in held:
            # None at all: the client was removed after its key was checked.
            has = f"it has {', '.join(sorted(held))}" if held else "it has none now"
            raise ShipperError(
                3014,
                f"warehouse_id: {warehouse_id!r} is not a warehouse of client "
                f"{client['client_id']}; {has}",
            )

    def _check_express(self, kind: str, code: str) -> dict:
        carrier = self._express(kind, code)
        if carrier is None:
            self._refuse_express(kind, code)
        return carrier

    def _express(self, kind: str, code: str) -> dict | None:
        """The carrier of an express code, if this kind of order may use it."""
        carrier = self._kept(
            ("carrier", code),
            lambda: self.store.row(
                "SELECT * FROM carriers WHERE express_code = ?", (code,)
            ),
        )
        allowed = carrier is not None and (
            EXPRESS_TYPE[kind] in carrier["express_type"].split(",")
        )
        return dict(carrier) if allowed else None

    @staticmethod
    def _refuse_express(kind: str, code: str) -> NoReturn:
        wanted = EXPRESS_TYPE[kind]
        raise ShipperError(
            3015,
            f"{EXPRESS_FIELD[kind]}: {code!r} is not in the express list for type "
            f"{wanted} (GET /v3/fulfillment/express?express_type={wanted})",
        )

    def _check_skus(self, client: dict, warehouse_id: str, lines: list[dict]):
        skus = sorted({line["sku"] for line in lines})
        held = {
            r["sku"]: r
            for r in self.store.rows(
                "SELECT sku, sku_descr, receipt_date FROM stock "
                "WHERE client_id = ? AND warehouse_id = ? "
                f"AND sku IN ({', '.join('?' for _ in skus)})",
                (client["client_id"], warehouse_id, *skus),
            )
        }
        for i, line in enumerate(lines):
            if line["sku"] not in held:
                raise ShipperError(
                    3013,
                    f"details[{i}].sku: {line['sku']!r} is not held for this "
                    f"client in {warehouse_id}",
                )
        return held

    def _find_order(
        self, client_id: int, warehouse_id: str, order_no: str
    ) -> dict | None:
        return self.store.row(
            "SELECT * FROM orders WHERE client_id = ? AND warehouse_id = ? "
            "AND order_no = ?",
            (client_id, warehouse_id, order_no),
        )

    def _lines(self, order_id: int) -> list[dict]:
        return self.store.rows(
            "SELECT * FROM order_lines WHERE order_id = ? ORDER BY line_no",
            (order_id,),
        )

    def _order(self, order_id: int) -> dict:
        return self.store.row("SELECT * FROM orders WHERE id = ?", (order_id,))

    # ------------------------------------------------ create / update / cancel
    def create_sales_order(
        self, client: dict, kind: str, body: dict, request_id: str = ""
    ) -> dict:
        """Store a B2C (OMS) or B2B (WMS) order; answer its group key."""
        self._check_customer(client, kind, body)
        warehouse_id, order_no = body["warehouse_id"], body[NUMBER_FIELD[kind]]

        # What does not depend on the rest of the state is worked out before
        # the writers' turn, which other requests (and processes) wait for:
        # the carrier (fixed master data), the order's row and its webhooks.
        # The checks still refuse in the same order as ever.
        express_code = body[EXPRESS_FIELD[kind]]
        carrier = self._express(kind, express_code)
        now = self.clock.now()
        group_key = self._group_key(kind, client["client_id"], now)
        if carrier is not None:
            order = self._order_row(
                client, kind, body, carrier, group_key, request_id, now
            )
            webhooks = self._created_webhooks(order, client, now)

        with self.store.transaction():
            self._check_warehouse(client, warehouse_id)
            if carrier is None:
                self._refuse_express(kind, express_code)
            held = self._check_skus(client, warehouse_id, body["details"])
            # A number already taken: the unique index refuses the insert.
            if kind == "B2C":
                order["fo_number"] = self._fo_number(now)
            order["id"] = self._insert_order(order)
            lines = self._insert_lines(order["id"], kind, body["details"], held)
            self._move_held(order, {}, _still_to_ship(order, lines))

            self.store.insert_many(
                "deliveries",
                [self._delivery_row(order, client, e, p) for e, p in webhooks],
            )
            if kind == "B2B":
                self._record_event(order["id"], now, "00", order["status"], "status")
            else:
                self._record_event(order["id"], now, "", "REGISTERED", "registered")
            scheduled = self._schedule_progression(order, client, now, planned=False)

        if scheduled or self.sends_webhooks(client):
            self.clock.wake()
        log.info("created %s order %s in %s", kind, order_no, warehouse_id)
        return {"group_key": group_key}

    def _group_key(self, kind: str, client_id: int, now: float) -> str:
        # UTC, as Shipper's own sample pairs its timestamp with its group key.
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y.%m.%d%H%M%S")
        return f"{GROUP_KEY_PREFIX[kind]}.{stamp}.{client_id}"

    @staticmethod
    def _created_webhooks(order: dict, client: dict, now: float) -> list:
        """(event, JSON text) of the webhooks a new order sends."""
        webhooks = [("so_created", views.so_created_payload(order, client))]
        if order["kind"] == "B2B":
            webhooks.append(("status", views.status_payload(order, client, "00", now)))
        return [(event, dumps(payload)) for event, payload in webhooks]

    def _fo_number(self, now: float) -> str:
        yymmdd = datetime.fromtimestamp(now, JAKARTA).strftime("%y%m%d")
        return f"FO{yymmdd}{self.store.next_number('fo_number'):012d}"

    @staticmethod
    def _order_row(
        client: dict,
        kind: str,
        body: dict,
        carrier: dict,
        group_key: str,
        request_id: str,
        now: float,
    ) -> dict:
        """A new order as stored, but for its id (and a B2C order's FO number)."""
        is_b2c = kind == "B2C"
        return {
            "client_id": client["client_id"],
            "kind": kind,
            "warehouse_id": body["warehouse_id"],
            "order_no": body[NUMBER_FIELD[kind]],
            "order_type": body["order_type"],
            "status": "REGISTERED" if is_b2c else "CREATED",
            "wms_code": None if is_b2c else "00",
            "last_step": None if is_b2c else "release",
            "group_key": group_key,
            "wms_doc_no": "",
            "fo_number": "",
            "delivery_no": "" if is_b2c else body.get("delivery_no", ""),
            "pack_id": "",
            "express_code": carrier["express_code"],
            "express_name": carrier["express_name"],
            "body": dumps(body),
            "request_id": request_id,
            "cancel_reason": "",
            "progression": None,
            "created": now,
            "updated": now,
            "pgi_time": None,
        }

    def _insert_order(self, row: dict) -> int:
        try:
            return self.store.insert("orders", row)
        except sqlite3.IntegrityError as exc:
            # The unique index is the word on order numbers, whichever of two
            # concurrent creates commits first.
            raise ShipperError(
                3011,
                f"{NUMBER_FIELD[row['kind']]}: {row['order_no']!r} already exists "
                f"in {row['warehouse_id']} for this client",
            ) from exc

    def _insert_lines(
        self, order_id: int, kind: str, details: list[dict], held: dict
    ) -> list[dict]:
        in_wms = kind == "B2B"
        rows = [
            {
                "order_id": order_id,
                "line_no": line["line_no"],
                "sku": line["sku"],
                "sku_descr": held[line["sku"]]["sku_descr"],
                "price": line.get("price", 0),
                "qty_ordered": line["qty_ordered"],
                "qty_released": line["qty_ordered"] if in_wms else 0,
                "qty_allocated": 0,
                "qty_picked": 0,
                "qty_packed": 0,
                "qty_loaded": 0,
                "qty_shipped": 0,
                "line_code": "",
                "mfg_date": line.get("mfg_date", ""),
                "exp_date": line.get("exp_date", ""),
                "batch_no": line.get("batch_no", ""),
                "serial_no": line.get("serial_no", ""),
                "receipt_date": "",
            }
            for line in details
        ]
        self.store.insert_many("order_lines", rows)
        return rows

    def _editable_order(
        self,
        client: dict,
        kind: str,
        warehouse_id: str,
        order_no: str,
        refused_code: int,
    ) -> dict:
        """The order a cancel or update names, or the error that refuses it."""
        self._check_warehouse(client, warehouse_id)
        order = self._find_order(client["client_id"], warehouse_id, order_no)
        if order is None or order["kind"] != kind:
            raise ShipperError(
                3012,
                f"no {kind} order {order_no!r} in {warehouse_id} for this client",
            )
        if order["status"] == "CANCELLED":
            raise ShipperError(3022, f"order {order_no!r} is already cancelled")
        if order["status"] not in EDITABLE_STATUSES:
            raise ShipperError(
                refused_code,
                f"order {order_no!r} is {order['status']} (WMS "
                f"{order['wms_code']}); stock has been allocated to it",
            )
        return order

    def update_sales_order(self, client: dict, kind: str, body: dict) -> None:
        """Replace a not-yet-allocated order and its lines."""
        self._check_customer(client, kind, body)
        warehouse_id, order_no = body["warehouse_id"], body[NUMBER_FIELD[kind]]

        with self.store.transaction():
            order = self._editable_order(client, kind, warehouse_id, order_no, 3021)
            carrier = self._check_express(kind, body[EXPRESS_FIELD[kind]])
            held = self._check_skus(client, warehouse_id, body["details"])

            now = self.clock.now()
            with self._holding(order["id"]):
                self._replace_order(order, kind, body, carrier, held, now)
            self._record_event(
                order["id"], now, order["wms_code"] or "", order["status"], "updated"
            )
        log.info("updated %s order %s in %s", kind, order_no, warehouse_id)

    def _replace_order(
        self,
        order: dict,
        kind: str,
        body: dict,
        carrier: dict,
        held: dict,
        now: float,
    ) -> None:
        self.store.update(
            "orders",
            {"id": order["id"]},
            {
                "order_type": body["order_type"],
                "express_code": carrier["express_code"],
                "express_name": carrier["express_name"],
                "body": dumps(body),
                "updated": now,
            },
        )
        if kind == "B2B" and body.get("delivery_no"):
            self.store.update(
                "orders", {"id": order["id"]}, {"delivery_no": body["delivery_no"]}
            )
        self.store.execute("DELETE FROM order_lines WHERE order_id = ?", (order["id"],))
        self._insert_lines(order["id"], kind, body["details"], held)
        if order["last_step"] == "release":
            self.store.execute(
                "UPDATE order_lines SET qty_released = qty_ordered WHERE order_id = ?",
                (order["id"],),
            )

    def cancel_sales_order(self, client: dict, kind: str, cancellation: dict) -> None:
        """Cancel an order to which no stock has been allocated."""
        warehouse_id = cancellation["warehouse_id"]
        order_no = cancellation["order_no"]

        with self.store.transaction():
            order = self._editable_order(client, kind, warehouse_id, order_no, 3020)
            now = self.clock.now()
            with self._holding(order["id"]):
                self.store.update(
                    "orders",
                    {"id": order["id"]},
                    {
                        "status": "CANCELLED",
                        "wms_code": CANCELLED_CODE,
                        "cancel_reason": cancellation["cancel_reason"],
                        "updated": now,
                    },
                )
            self.store.execute("DELETE FROM jobs WHERE order_id = ?", (order["id"],))
            self._record_status(self._order(order["id"]), client, CANCELLED_CODE, now)

        self.clock.wake()
        log.info("cancelled %s order %s in %s", kind, order_no, warehouse_id)

    # --------------------------------------------------------------- reading
    def list_sales_orders(
        self, client: dict, outbound_type: str, query: dict
    ) -> tuple[list[dict], dict]:
        where = ["client_id = ?"]
        params: list = [client["client_id"]]
        # The same filters on order_counts (see the store), while no date
        # filter makes it a COUNT(*).
        counted = list(where)
        if outbound_type == "OMS":
            where.append("kind = 'B2C'")
            counted.append("kind = 'B2C'")
        else:
            where.append("last_step IS NOT NULL")
            counted.append("in_wms = 1")

        for prefix in ("created", "updated"):
            start, end = query.get(f"{prefix}_start"), query.get(f"{prefix}_end")
            if start:
                where.append(f"{prefix} >= ?")
                params.append(_jakarta_midnight(start))
                counted = None
            if end:
                where.append(f"{prefix} < ?")
                params.append(_jakarta_midnight(end + timedelta(days=1)))
                counted = None
        filters = []
        if query.get("warehouse_id"):
            filters.append("warehouse_id = ?")
            params.append(query["warehouse_id"])
        if query.get("order_type"):
            types = ORDER_TYPE_FILTER[query["order_type"]]
            filters.append(f"order_type IN ({', '.join('?' for _ in types)})")
            params.extend(types)
        if query.get("so_status"):
            filters.append("status = ?")
            params.append(query["so_status"])
        where += filters

        clause = " AND ".join(where)
        if counted is None:
            total = self.store.value(
                f"SELECT COUNT(*) FROM orders WHERE {clause}", params
            )
        else:
            total = self.store.value(
                "SELECT COALESCE(SUM(n), 0) FROM order_counts "
                f"WHERE {' AND '.join(counted + filters)}",
                params,
            )
        page, limit = query["page"], query["limit"]
        rows = self.store.rows(
            f"SELECT * FROM orders WHERE {clause} ORDER BY created DESC, id DESC "
            "LIMIT ? OFFSET ?",
            (*params, limit, (page - 1) * limit),
        )
        return [views.list_record(o) for o in rows], _pagination(
            page, limit, len(rows), total
        )

    def get_sales_order_detail_wms(
        self, client: dict, warehouse_id: str, order_no: str
    ) -> dict:
        order, lines = self._order_and_lines(client, warehouse_id, order_no)
        if order is None or not views.is_in_wms(order):
            raise ShipperError(
                10004, f"no order {order_no!r} in the WMS at {warehouse_id}"
            )
        return views.wms_detail(order, lines)

    def get_sales_order_detail_oms(
        self, client: dict, warehouse_id: str, order_no: str
    ) -> dict:
        order, lines = self._order_and_lines(client, warehouse_id, order_no)
        if order is None or order["kind"] != "B2C":
            raise ShipperError(
                10004, f"no B2C order {order_no!r} in the OMS at {warehouse_id}"
            )
        return views.oms_detail(order, lines, client)

    def _order_and_lines(
        self, client: dict, warehouse_id: str, order_no: str
    ) -> tuple[dict | None, list[dict]]:
        """An order and its lines as of one moment; (None, []) if none."""
        with self.store.snapshot():
            order = self._find_order(client["client_id"], warehouse_id, order_no)
            return order, (self._lines(order["id"]) if order else [])

    def get_express_list(self, query: dict) -> tuple[list[dict], dict]:
        rows = self.store.rows("SELECT * FROM carriers ORDER BY express_code")
        code = (query.get("express_code") or "").lower()
        name = (query.get("express_name") or "").lower()
        kind = query.get("express_type") or ""
        found = [
            {"express_code": r["express_code"], "express_name": r["express_name"]}
            for r in rows
            if (not code or r["express_code"].lower() == code)
            and (not name or name in r["express_name"].lower())
            and (not kind or kind in r["express_type"].split(","))
        ]
        return _page(found, query["page"], query["limit"])

    def _oms_stock(self, client_id: int, warehouse_id: str) -> dict[str, int]:
        """Per SKU, what open orders in the warehouse may still ship."""
        rows = self.store.rows(
            "SELECT sku, qty_held FROM stock WHERE client_id = ? AND warehouse_id = ?",
            (client_id, warehouse_id),
        )
        return {r["sku"]: r["qty_held"] for r in rows}

    def recount_held(self, client_id: int, warehouse_id: str) -> dict[str, int]:
        """What ``qty_held`` should be, counted from every open order again."""
        statuses = ", ".join(f"'{s}'" for s in sorted(OPEN_STATUSES))
        rows = self.store.rows(
            f"SELECT l.sku, SUM({_OUTSTANDING_SQL}) AS held "
            "FROM order_lines l JOIN orders o ON o.id = l.order_id "
            f"WHERE o.client_id = ? AND o.warehouse_id = ? "
            f"AND o.status IN ({statuses}) GROUP BY l.sku",
            (client_id, warehouse_id),
        )
        return {r["sku"]: r["held"] for r in rows if r["held"]}

    def _outstanding(self, order_id: int) -> dict[str, int]:
        """Per SKU, what one order may still ship (nothing once it is over)."""
        order = self._order(order_id)
        return _still_to_ship(order, self._lines(order_id)) if order else {}

    @contextmanager
    def _holding(self, order_id: int) -> Iterator[None]:
        """Move the stock an order holds back by what the change inside did.

        Kept per stock row, in the change's own transaction, so the OMS
        stock needs no count over every open order.
        """
        before = self._outstanding(order_id)
        yield
        self._move_held(self._order(order_id), before, self._outstanding(order_id))

    def _move_held(
        self, order: dict, before: dict[str, int], after: dict[str, int]
    ) -> None:
        for sku in before.keys() | after.keys():
            delta = after.get(sku, 0) - before.get(sku, 0)
            if delta:
                self.store.execute(
                    "UPDATE stock SET qty_held = qty_held + ? "
                    "WHERE client_id = ? AND warehouse_id = ? AND sku = ?",
                    (delta, order["client_id"], order["warehouse_id"], sku),
                )

    @staticmethod
    def _sellable(row: dict, held: dict[str, int]) -> int:
        return max(0, row["qty_on_hand"] - held.get(row["sku"], 0))

    def get_stock(self, client: dict, query: dict) -> tuple[list[dict], dict]:
        warehouse_id = query["warehouse_code"]
        self._check_warehouse(client, warehouse_id)
        rows = self.store.rows(
            "SELECT * FROM stock WHERE client_id = ? AND warehouse_id = ? ORDER BY sku",
            (client["client_id"], warehouse_id),
        )
        if query.get("skus"):
            wanted = set(query["skus"])
            rows = [r for r in rows if r["sku"] in wanted]

        held = self._oms_stock(client["client_id"], warehouse_id)
        kind = query["stock_type"]
        out = []
        for r in rows:
            physical, sellable = r["qty_on_hand"], self._sellable(r, held)
            qty = {"WMS": physical, "OMS": sellable}.get(kind, min(physical, sellable))
            out.append(
                {
                    "sku": r["sku"],
                    "sku_descr": r["sku_descr"],
                    "warehouse_id": warehouse_id,
                    "qty": qty,
                }
            )
        return _page(out, query["page"], query["limit"])

    def get_stock_by_warehouse(
        self, client: dict, query: dict
    ) -> tuple[list[dict], dict]:
        per_sku: dict[str, list[dict]] = {}
        for warehouse_id in sorted(self.client_warehouses(client["client_id"])):
            held = self._oms_stock(client["client_id"], warehouse_id)
            for r in self.store.rows(
                "SELECT * FROM stock WHERE client_id = ? AND warehouse_id = ?",
                (client["client_id"], warehouse_id),
            ):
                per_sku.setdefault(r["sku"], []).append(
                    {"warehouse_id": warehouse_id, "stock": self._sellable(r, held)}
                )
        wanted = query.get("skus") or sorted(per_sku)
        out = [
            {
                "sku": sku,
                "stock": sum(d["stock"] for d in per_sku[sku]),
                "details": per_sku[sku],
            }
            for sku in wanted
            if sku in per_sku
        ]
        return _page(out, query["page"], query["limit"])

    def order_summaries(
        self,
        client_id: int | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[dict]:
        """Orders newest first, for the control API and the dashboard."""
        where, params = ["1 = 1"], []
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        if status:
            where.append("status = ?")
            params.append(status.upper())
        # One snapshot: an order's client is still there (a removed client's
        # orders go with it).
        with self.store.snapshot():
            rows = self.store.rows(
                f"SELECT * FROM orders WHERE {' AND '.join(where)} "
                "ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            clients = {o["client_id"]: self.client(o["client_id"]) for o in rows}
        return [
            {
                "client_id": o["client_id"],
                "kind": o["kind"],
                "warehouse_id": o["warehouse_id"],
                "order_no": o["order_no"],
                "order_type": o["order_type"],
                "so_status": o["status"],
                "wms_code": o["wms_code"] or "",
                "last_step": o["last_step"] or "",
                "delivery_no": o["delivery_no"],
                "progression": self.progression_of(o, clients[o["client_id"]])[0],
                "created": o["created"],
                "updated": o["updated"],
            }
            for o in rows
        ]

    # ------------------------------------------------------------ progression
    def find_order_for_control(
        self, warehouse_id: str, order_no: str, client_id: int | None = None
    ) -> dict:
        sql = "SELECT * FROM orders WHERE warehouse_id = ? AND order_no = ?"
        params: list = [warehouse_id, order_no]
        if client_id is not None:
            sql += " AND client_id = ?"
            params.append(client_id)
        found = self.store.rows(sql, params)
        if not found:
            raise ControlError(
                f"no order {order_no!r} in {warehouse_id}"
                + (f" for client {client_id}" if client_id is not None else ""),
                404,
            )
        if len(found) > 1:
            owners = ", ".join(str(o["client_id"]) for o in found)
            raise ControlError(
                f"clients {owners} each have an order {order_no!r} in "
                f"{warehouse_id}; add ?client_id= to say which",
                409,
                "client_id",
            )
        return found[0]

    def advance_order(self, order_id: int, request: dict) -> dict:
        """Run warehouse steps on an order (the control API's advance).

        Answers the order as the steps left it, read before they commit.
        """
        with self.store.transaction():
            order = self._order_still_there(order_id)
            if "to" in request:
                self._run_to(order, request["to"])
            else:
                step = STEP_BY_NAME[request["step"]]
                self._run_step(order, step, request.get("lines") or {})
            answer = self.order_view(order_id)
        self.clock.wake()
        return answer

    def order_lines(self, order_id: int) -> list[dict]:
        """Every line with what each step reached (packed and loaded too)."""
        return [
            {k: v for k, v in line.items() if k != "order_id"}
            for line in self._lines(order_id)
        ]

    def order_view(self, order_id: int) -> dict:
        with self.store.snapshot():
            order = self._order_still_there(order_id)
            return views.wms_detail(order, self._lines(order_id))

    def _order_still_there(self, order_id: int) -> dict:
        """An order the control API found a moment ago, unless since gone."""
        order = self._order(order_id)
        if order is None:
            raise ControlError(
                "the order is gone: a reset or a removed client took it after "
                "it was looked up",
                404,
            )
        return order

    def _run_to(self, order: dict, target: str) -> None:
        target = target.upper()
        if target in ("REGISTERED", "CANCELLED"):
            raise ControlError(
                f"advance cannot reach {target}; "
                + (
                    "use the cancel endpoint"
                    if target == "CANCELLED"
                    else "orders start there"
                )
            )
        try:
            steps = steps_to_reach(target)
        except KeyError:
            raise ControlError(
                f"unknown target {target!r}: name an API status such as SHIPPED "
                "or a WMS code such as 66",
                field="to",
            ) from None

        self._refuse_final(order)
        last = step_index(order["last_step"])
        if len(steps) - 1 < last:
            raise ControlError(
                f"order {order['order_no']} is already {order['status']} "
                f"(WMS {order['wms_code']}), past {target}"
            )
        for step in steps[last + 1 :]:
            order = self._run_step(order, step, {})

    def _refuse_final(self, order: dict) -> None:
        if order["status"] in ("CANCELLED", "CLOSED"):
            raise ControlError(
                f"order {order['order_no']} is {order['status']}; nothing follows"
            )

    def _run_step(self, order: dict, step: Step, overrides: dict) -> dict:
        """Run one warehouse step; ``overrides`` are short quantities per line."""
        with self._holding(order["id"]):
            return self._step(order, step, overrides)

    def _step(self, order: dict, step: Step, overrides: dict) -> dict:
        self._refuse_final(order)
        last, index = step_index(order["last_step"]), step_index(step.name)
        self._check_step_order(order, step, last, index)

        lines = self._lines(order["id"])
        targets = self._line_targets(order, step, lines, overrides)
        now = self.clock.now()
        client = self.client(order["client_id"])
        changes: dict = {"last_step": step.name, "updated": now}

        if step.quantity is not None:
            self._fill_lines(order, step, lines, targets)
            lines = self._lines(order["id"])
            is_full = all(ln[step.quantity] >= ln["qty_ordered"] for ln in lines)
        else:
            is_full = True

        if step.name == "release":
            yymmdd = datetime.fromtimestamp(now, JAKARTA).strftime("%y%m%d")
            changes["wms_doc_no"] = (
                f"{yymmdd}{self.store.next_number('wms_doc_no'):08d}"
            )
        if step.name == "pack":
            changes["pack_id"] = f"PK{self.store.next_number('pack_id'):010d}"
        if step.name in ("pack", "ship") and not order["delivery_no"]:
            changes["delivery_no"] = self._make_awb(order["express_code"])
        if step.name == "ship":
            self._issue_goods(order, lines)
            changes["pgi_time"] = now

        code_before = order["wms_code"]
        code = code_for(step, is_full)
        changes["wms_code"] = code
        changes["status"] = step.status
        self.store.update("orders", {"id": order["id"]}, changes)
        order = self._order(order["id"])

        # One status webhook per code reached: a re-run that reaches no new
        # code sends nothing.
        if code != code_before:
            self._record_status(order, client, code, now)
        if step.name == "ship":
            lines = self._lines(order["id"])
            payload = views.pgi_payload(order, lines, client, now)
            self._enqueue(order, client, "pgi", dumps(payload))
        return order

    def _check_step_order(self, order: dict, step: Step, last: int, index: int) -> None:
        if index == last + 1:
            return
        current = f"{order['status']} (WMS {order['wms_code'] or 'none'})"
        if index > last + 1:
            raise ControlError(
                f"{step.name} cannot run yet: order {order['order_no']} is "
                f"{current}; the next step is {STEPS[last + 1].name}",
                field="step",
            )
        if index < last:
            raise ControlError(
                f"{step.name} is over: {order['last_step']} has already run on "
                f"order {order['order_no']}, and quantities never go backwards",
                field="step",
            )
        if step.quantity is None or step.name in ("release", "ship"):
            raise ControlError(
                f"{step.name} runs once and has already run on order "
                f"{order['order_no']}",
                field="step",
            )

    def _line_targets(
        self, order: dict, step: Step, lines: list[dict], overrides: dict
    ) -> dict[int, int]:
        """Resolve ``{"SKU-A": 3, "2": 1}`` to quantities per line number."""
        by_sku: dict[str, list[int]] = {}
        for ln in lines:
            by_sku.setdefault(ln["sku"], []).append(ln["line_no"])
        numbers = {str(ln["line_no"]) for ln in lines}

        targets: dict[int, int] = {}
        for key, qty in overrides.items():
            if key in by_sku:
                if len(by_sku[key]) > 1:
                    raise ControlError(
                        f"{key} is on lines {by_sku[key]}; name the line number "
                        "instead of the SKU",
                        field="lines",
                    )
                targets[by_sku[key][0]] = qty
            elif key in numbers:
                targets[int(key)] = qty
            else:
                raise ControlError(
                    f"order {order['order_no']} has no line or SKU {key!r}",
                    field="lines",
                )
        if step.quantity is None and targets:
            raise ControlError(f"{step.name} takes no line quantities", field="lines")
        return targets

    def _fill_lines(
        self,
        order: dict,
        step: Step,
        lines: list[dict],
        targets: dict[int, int],
    ) -> None:
        moved = 0
        for ln in lines:
            cap, current = ln[step.capped_by], ln[step.quantity]
            target = targets.get(ln["line_no"], cap)
            if target > cap:
                raise ControlError(
                    f"line {ln['line_no']} ({ln['sku']}): {step.name} can reach at "
                    f"most {cap}, what {step.capped_by} reached; asked for {target}",
                    field="lines",
                )
            if target < current:
                raise ControlError(
                    f"line {ln['line_no']} ({ln['sku']}): {step.quantity} is "
                    f"already {current}; quantities never go backwards",
                    field="lines",
                )
            if step.name == "allocate":
                target = self._reserve(
                    order, ln, current, target, ln["line_no"] in targets
                )
            self.store.execute(
                f"UPDATE order_lines SET {step.quantity} = ?, line_code = ? "
                "WHERE order_id = ? AND line_no = ?",
                (
                    target,
                    code_for(step, target >= ln["qty_ordered"]),
                    order["id"],
                    ln["line_no"],
                ),
            )
            moved += target

        if moved == 0 and step.name != "release":
            what = "in stock" if step.name == "allocate" else "to work with"
            raise ControlError(
                f"{step.name} would move nothing on any line of order "
                f"{order['order_no']}: nothing {what}",
                field="step",
            )

    def _reserve(
        self, order: dict, line: dict, current: int, target: int, explicit: bool
    ) -> int:
        """Take stock for one line; the database decides what is left."""
        want = target - current
        if want <= 0:
            return current
        row = self.store.row(
            "SELECT qty_on_hand - qty_reserved AS free FROM stock "
            "WHERE client_id = ? AND warehouse_id = ? AND sku = ?",
            (order["client_id"], order["warehouse_id"], line["sku"]),
        )
        free = max(0, row["free"]) if row else 0
        if explicit and want > free:
            raise ControlError(
                f"line {line['line_no']} ({line['sku']}): only {free} free in "
                f"{order['warehouse_id']}, asked to allocate {want} more",
                field="lines",
            )
        take = min(want, free)
        if take:
            cursor = self.store.execute(
                "UPDATE stock SET qty_reserved = qty_reserved + ? "
                "WHERE client_id = ? AND warehouse_id = ? AND sku = ? "
                "AND qty_on_hand - qty_reserved >= ?",
                (take, order["client_id"], order["warehouse_id"], line["sku"], take),
            )
            if cursor.rowcount != 1:
                raise ControlError(f"stock of {line['sku']} changed; try again", 409)
        return current + take

    def _issue_goods(self, order: dict, lines: list[dict]) -> None:
        """Goods issue: shipped units leave, the rest of the reservation frees."""
        for ln in lines:
            self.store.execute(
                "UPDATE stock SET qty_on_hand = qty_on_hand - ?, "
                "qty_reserved = MAX(0, qty_reserved - ?) "
                "WHERE client_id = ? AND warehouse_id = ? AND sku = ?",
                (
                    ln["qty_shipped"],
                    ln["qty_allocated"],
                    order["client_id"],
                    order["warehouse_id"],
                    ln["sku"],
                ),
            )
            receipt = self.store.value(
                "SELECT receipt_date FROM stock WHERE client_id = ? "
                "AND warehouse_id = ? AND sku = ?",
                (order["client_id"], order["warehouse_id"], ln["sku"]),
            )
            self.store.execute(
                "UPDATE order_lines SET receipt_date = ? "
                "WHERE order_id = ? AND line_no = ?",
                (receipt or "", order["id"], ln["line_no"]),
            )

    def _make_awb(self, express_code: str) -> str:
        carrier = self.store.row(
            "SELECT awb_prefix, awb_digits FROM carriers WHERE express_code = ?",
            (express_code,),
        )
        prefix = carrier["awb_prefix"] if carrier else "AWB"
        digits = carrier["awb_digits"] if carrier else 12
        return prefix + "".join(str(self.rng.randrange(10)) for _ in range(digits))

    # -- timed progression
    def progression_of(self, order: dict, client: dict) -> tuple[str, float]:
        delay = self.config.step_delay if self.config.auto else client["step_delay"]
        if order["progression"]:
            return order["progression"], delay
        mode = "auto" if self.config.auto else client["progression"]
        return mode, delay

    def _schedule_progression(
        self, order: dict, client: dict, now: float, planned: bool = True
    ) -> bool:
        """Plan the order's next timed step if it moves by itself; True if so.

        Else drop the step planned before, if ``planned`` says there may be
        one: a new order has none, nor has one whose step just ran.
        """
        mode, delay = self.progression_of(order, client)
        if mode == "auto" and order["status"] not in ("CANCELLED", "CLOSED"):
            self.store.execute(
                "INSERT OR REPLACE INTO jobs (order_id, due_at) VALUES (?, ?)",
                (order["id"], now + delay),
            )
            return True
        if planned:
            self.store.execute("DELETE FROM jobs WHERE order_id = ?", (order["id"],))
        return False

    def set_order_progression(self, order_id: int, mode: str) -> dict:
        with self.store.transaction():
            order = self._order_still_there(order_id)
            self.store.update("orders", {"id": order_id}, {"progression": mode})
            order["progression"] = mode
            self._schedule_progression(
                order, self.client(order["client_id"]), self.clock.now()
            )
        self.clock.wake()
        return {"order_no": order["order_no"], "progression": mode}

    def next_job_due(self) -> float | None:
        return self.store.value("SELECT MIN(due_at) FROM jobs")

    def run_due_jobs(self) -> int:
        """Run every timed step that is due; answers how many ran."""
        now = self.clock.now()
        due = self.store.rows(
            "SELECT order_id FROM jobs WHERE due_at <= ? ORDER BY due_at", (now,)
        )
        for job in due:
            self._run_job(job["order_id"], now)
        if due:
            self.clock.wake()
        return len(due)

    def _run_job(self, order_id: int, now: float) -> None:
        with self.store.transaction():
            order = self._order(order_id)
            self.store.execute("DELETE FROM jobs WHERE order_id = ?", (order_id,))
            if order is None or order["status"] in ("CANCELLED", "CLOSED"):
                return
            client = self.client(order["client_id"])
            step = STEPS[step_index(order["last_step"]) + 1]
            try:
                # A step refused part way (no stock to allocate) leaves
                # nothing of itself behind; the job's own changes stay.
                with self.store.savepoint():
                    order = self._run_step(order, step, {})
            except ControlError as exc:
                # Typically allocation waiting for stock: try again later, but
                # never at once, or a step delay of 0 would spin forever.
                log.info(
                    "timed %s of %s waits: %s",
                    step.name,
                    order["order_no"],
                    exc.message,
                )
                _, delay = self.progression_of(order, client)
                now += max(0.0, WAITING_STEP_RETRY - delay)
            self._schedule_progression(order, client, now, planned=False)

    # ------------------------------------------------------------ webhooks
    def _record_event(
        self, order_id: int, now: float, code: str, status: str, note: str
    ) -> None:
        self.store.insert(
            "order_events",
            {
                "order_id": order_id,
                "time": now,
                "code": code,
                "name": WMS_CODE_NAMES.get(code, status),
                "status": status,
                "note": note,
            },
        )

    def _record_status(self, order: dict, client: dict, code: str, now: float):
        self._record_event(order["id"], now, code, order["status"], "status")
        payload = views.status_payload(order, client, code, now)
        self._enqueue(order, client, "status", dumps(payload))

    def sends_webhooks(self, client: dict) -> bool:
        return bool(self.config.webhook_url_for(client))

    def _enqueue(self, order: dict, client: dict, event: str, payload: str) -> None:
        """Queue a webhook of the order; ``payload`` is its JSON text."""
        self.store.insert(
            "deliveries", self._delivery_row(order, client, event, payload)
        )

    def _delivery_row(self, order: dict, client: dict, event: str, payload: str):
        # A client with no webhook URL has nothing to send to: its deliveries
        # are logged as such at once, not handed to the dispatcher.
        pending = self.sends_webhooks(client)
        now = self.clock.now()
        return {
            "client_id": order["client_id"],
            "order_id": order["id"],
            "order_no": order["order_no"],
            "warehouse_id": order["warehouse_id"],
            "event": event,
            "payload": payload,
            "state": "pending" if pending else "no_url",
            "attempts": 0,
            "next_attempt_at": now if pending else None,
            "created": now,
            "redelivery_of": None,
            "unordered": 0,
        }


def _still_to_ship(order: dict, lines: list[dict]) -> dict[str, int]:
    """Per SKU, what an open order may still ship, from its lines."""
    if order["status"] not in OPEN_STATUSES:
        return {}
    step = STEP_BY_NAME.get(order["last_step"] or "")
    column = step.capped_by if step and step.capped_by else "qty_ordered"
    out: dict[str, int] = {}
    for line in lines:
        out[line["sku"]] = out.get(line["sku"], 0) + line[column]
    return out


def _jakarta_midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=JAKARTA).timestamp()


def _pagination(page: int, limit: int, count: int, total: int) -> dict:
    return {
        "current_page": page,
        "current_elements": count,
        "total_pages": (total + limit - 1) // limit,
        "total_elements": total,
    }


def _page(items: list, page: int, limit: int) -> tuple[list, dict]:
    chunk = items[(page - 1) * limit : page * limit]
    return chunk, _pagination(page, limit, len(chunk), len(items))
