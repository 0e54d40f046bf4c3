"""How an order looks to Shipper's clients: list records, details, webhooks.

Pure functions of the stored order row, its lines and its client. No Flask,
no SQL: the backend reads, these shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from . import jsontext
from .clock import iso_utc, jakarta_text, parse_iso_utc, parse_jakarta_text
from .statuses import PENDING_AUDIT, WMS_CODE_NAMES

UDFS = {f"udf_0{i}": "" for i in range(1, 6)}
USER_DEFINES = {f"user_define_{i}": "" for i in range(1, 4)}


def order_body(order: dict) -> Mapping:
    """The body the order was created (or last updated) with; read-only.

    One answer reads it several times, so the parsed body is kept for the
    latest few texts and shared between callers.
    """
    return _parsed_body(order["body"])


@lru_cache(maxsize=64)
def _parsed_body(text: str) -> Mapping:
    return MappingProxyType(jsontext.loads(text))


def order_time_ts(order: dict) -> float:
    """When the client says the order was placed; creation time if not given."""
    body = order_body(order)
    text = body.get("order_time") or ""
    if not text:
        return order["created"]
    if order["kind"] == "B2B":
        return parse_iso_utc(text)
    return parse_jakarta_text(text)


def is_in_wms(order: dict) -> bool:
    """B2B orders start in the WMS; B2C orders get there by release."""
    return order["last_step"] is not None


def carrier_name(order: dict) -> str:
    body = order_body(order)
    return body.get("carrier_name") or order["express_name"] or ""


def references(order: dict) -> dict:
    refs = {f"so_reference_{i}": "" for i in range(1, 6)}
    if order["kind"] == "B2C":
        refs["so_reference_1"] = order["fo_number"]
        refs["so_reference_2"] = order["order_no"]
    return refs


def list_record(order: dict) -> dict:
    """One entry of the list endpoint (SPEC 3.5)."""
    return _record(order, jakarta_text(order_time_ts(order)))


def _record(order: dict, order_time: str) -> dict:
    return {
        "order_no": order["order_no"],
        "order_type": order["kind"],
        "so_status": order["status"],
        "warehouse_id": order["warehouse_id"],
        "consignee_id": "",
        "consignee_name": "",
        "release_status": is_in_wms(order),
        "order_time": order_time,
        "wave_no": "",
        **references(order),
        "consignee_address_1": "",
        "consignee_city": "",
        "billing_id": "",
        "carrier_name": carrier_name(order),
    }


def consignee(order: dict) -> dict:
    body = order_body(order)
    if order["kind"] == "B2B":
        return {
            "consignee_id": body.get("consignee_id", ""),
            "consignee_name": body["consignee_name"],
            "consignee_address_1": body["consignee_address"],
            "consignee_city": body.get("consignee_city", ""),
        }
    return {
        "consignee_id": "",
        "consignee_name": body["consignee"],
        "consignee_address_1": body["consignee_full_address"],
        "consignee_city": body["consignee_city"],
    }


def notes(order: dict) -> str:
    body = order_body(order)
    return body.get("notes", "") if order["kind"] == "B2B" else body["buyer_remark"]


def wms_line(line: dict, pack_id: str) -> dict:
    return {
        "sku": line["sku"],
        "order_line": line["line_no"],
        "line_status": line["line_code"],
        "sku_descr": line["sku_descr"],
        "qty_ordered": line["qty_ordered"],
        "qty_released": line["qty_released"],
        "qty_allocated": line["qty_allocated"],
        "qty_picked": line["qty_picked"],
        "qty_shipped": line["qty_shipped"],
        "pack_id": pack_id if line["qty_packed"] else "",
        **UDFS,
        "mfg_date": line["mfg_date"],
        "exp_date": line["exp_date"],
        "batch_no": line["batch_no"],
        "serial_no": line["serial_no"],
        "receipt_date": line["receipt_date"] or None,
        "product_condition": "N",
    }


def wms_detail(order: dict, lines: list[dict]) -> dict:
    """``data.outbound`` of the WMS detail endpoint (SPEC 3.6)."""
    # The list's record, but for the time's format.
    record = _record(order, iso_utc(order_time_ts(order)))
    record.update(consignee(order))
    record["delivery_no"] = order["delivery_no"] or "*"
    record.update(UDFS)
    record["notes"] = notes(order)
    record["details"] = [wms_line(line, order["pack_id"]) for line in lines]
    return record


def sub_order_status(order: dict) -> str:
    """PendingAudit until release; a cancel ends that too."""
    if is_in_wms(order) or order["status"] == "CANCELLED":
        return order["status"]
    return PENDING_AUDIT


def oms_total_amount(body: dict) -> float:
    """The order price the client gave, or the lines' sum with postage."""
    if body["order_price"]:
        return body["order_price"]
    lines = sum(d["price"] * d["qty_ordered"] for d in body["details"])
    return lines + body["postage"] - body["discount_price"]


def oms_detail(order: dict, lines: list[dict], client: dict) -> dict:
    """``data.outbound`` of the OMS detail endpoint (SPEC 3.7)."""
    body = order_body(order)
    payment_time = body["payment_time"]
    return {
        "order_no": order["order_no"],
        "order_type": order["order_type"],
        "so_status": "",
        "warehouse_id": order["warehouse_id"],
        "shop_code": client["oms_customer_id"],
        "tenant_name": body["tenant_name"],
        "platform": body["platform"],
        "order_source": body["order_source"],
        "internal_order_status": body["internal_order_status"],
        "consignee": body["consignee"],
        "consignee_phone": body["consignee_phone"],
        "consignee_mobile": body["consignee_mobile"],
        "consignee_email": body["consignee_email"],
        "consignee_full_address": body["consignee_full_address"],
        "consignee_state": body["consignee_state"],
        "consignee_province": body["consignee_province"],
        "consignee_city": body["consignee_city"],
        "area": body["area"],
        "town": body["town"],
        "zip_code": body["zip_code"],
        "order_time": iso_utc(order_time_ts(order)),
        "payment_time": (
            iso_utc(parse_jakarta_text(payment_time)) if payment_time else ""
        ),
        "express_code": order["express_code"],
        "express_name": order["express_name"],
        "delivery_no": order["delivery_no"] or "*",
        **references(order),
        "notes": body["buyer_remark"],
        "seller_remark": body["seller_remark"],
        "has_split": False,
        "payment_type": "COD" if body["payment_type"] == 1 else "PAY_ONLINE",
        "payment_way": body["payment_way"],
        "total_discount": body["discount_price"],
        "seller_discount": 0,
        "buyer_paid_shipping_fee": body["postage"],
        "currency": "IDR",
        "total_amount": oms_total_amount(body),
        "details": [
            {
                "sku": line["sku"],
                "order_line": line["line_no"],
                "sku_descr": line["sku_descr"],
                "qty_ordered": line["qty_ordered"],
                "price": line["price"],
            }
            for line in lines
        ],
        "sub_orders": [
            {
                "warehouse_id": order["warehouse_id"],
                "so_status": sub_order_status(order),
                "status_code": order["wms_code"] or "",
                "status_name": WMS_CODE_NAMES.get(order["wms_code"] or "", ""),
                "doc_no": order["wms_doc_no"],
                "delivery_no": order["delivery_no"] or "*",
                "details": [
                    {
                        "sku": line["sku"],
                        "order_line": line["line_no"],
                        "qty_ordered": line["qty_ordered"],
                        "qty_released": line["qty_released"],
                        "qty_allocated": line["qty_allocated"],
                        "qty_picked": line["qty_picked"],
                        "qty_shipped": line["qty_shipped"],
                    }
                    for line in lines
                ],
            }
        ],
    }


# -- webhook payloads (SPEC 5)


def so_created_payload(order: dict, client: dict) -> dict:
    stored = dict(order_body(order))
    stored.update(
        {
            "client_id": client["client_id"],
            "group_key": order["group_key"],
            "so_status": order["status"],
        }
    )
    return {
        "client_id": client["client_id"],
        "group_key": order["group_key"],
        "status": "success",
        "total_data": 1,
        "total_success": 1,
        "items": [{"payload": json.dumps(stored, ensure_ascii=False)}],
    }


def status_payload(order: dict, client: dict, code: str, at: float) -> dict:
    body = order_body(order)
    name = WMS_CODE_NAMES[code]
    return {
        "warehouse_id": order["warehouse_id"],
        "order_no": order["order_no"],
        "order_type": order["order_type"],
        "shop_code": client["oms_customer_id"],
        "client_id": client["client_id"],
        "tenant_name": body.get("tenant_name") or client["tenant_name"],
        "express_code": order["express_code"],
        "express_no": order["delivery_no"],
        "seller_remark": body.get("seller_remark", ""),
        "status": name,
        "status_code": code,
        "status_descr": name,
        "status_time": jakarta_text(at),
    }


def pgi_payload(order: dict, lines: list[dict], client: dict, at: float) -> dict:
    is_b2c = order["kind"] == "B2C"
    return {
        "warehouse_id": order["warehouse_id"],
        "customer_id": client["wms_customer_id"],
        "order_type": order["order_type"],
        "doc_no": order["wms_doc_no"] if is_b2c else order["order_no"],
        "delivery_no": order["delivery_no"],
        "carrier_id": order["express_code"],
        "carrier_name": carrier_name(order),
        "so_reference_a": order["order_no"],
        "so_reference_b": "",
        **USER_DEFINES,
        "pgi_date": jakarta_text(at),
        "shop_code": client["oms_customer_id"],
        "details": [
            {
                "sku": line["sku"],
                "qty_shipped": line["qty_shipped"],
                "mfg_date": line["mfg_date"],
                "exp_date": line["exp_date"],
                "batch_no": line["batch_no"],
                "serial_no": line["serial_no"],
                "receipt_date": line["receipt_date"] or None,
                "stock_condition": "N",
                **USER_DEFINES,
                "project_ref_no": "",
            }
            for line in lines
        ],
    }
