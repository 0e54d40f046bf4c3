"""The OpenAPI 3 document of Shipper's API and of the control API.

Served at ``GET /_sim/openapi.json``. Request bodies and query parameters
come from the very marshmallow schemas that validate requests
(:mod:`simulator.schemas`), through apispec's MarshmallowPlugin and a few
attribute functions that turn the simulator's own fields (``StrictString``,
``Choice``, ``StrictInteger``, ...) into OpenAPI properties: their lengths,
bounds, choices and patterns. The response shapes below mirror SPEC 3.

The paths are read from the app's URL map, so a route is documented where it
is served; each needs an entry in :data:`OPERATIONS`, and
``tests/test_openapi.py`` fails for a route that has none. The document is
built once per app and kept in ``app.extensions``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from . import __version__, schemas
from .envelope import reason_phrase
from .errors import ERROR_CODES
from .statuses import API_STATUSES, PENDING_AUDIT

OPENAPI_VERSION = "3.0.3"
CACHE_KEY = "shipper_sim_openapi"
SECURITY_SCHEME = "ApiKeyAuth"
ADMIN_SCHEME = "AdminToken"

# Routes that answer HTML or files, not JSON: not part of the API.
UNDOCUMENTED_ENDPOINTS = {"static"}
UNDOCUMENTED_BLUEPRINTS = {"dashboard"}
API_PREFIXES = ("/v3/", "/_sim/")


# -- From the simulator's fields to OpenAPI properties -----------------------

# Validators written as functions in schemas.py, and the rule each states.
VALIDATOR_PROPERTIES: dict[Any, dict] = {
    schemas._check_order_number: {"pattern": "^[A-Za-z0-9_-]+$"},
    schemas._check_email: {"format": "email"},
    schemas._check_webhook_url: {"pattern": r"^(|https?://[^\s]+)$"},
    schemas._check_api_key: {"pattern": "^[\\x21-\\x7e]+$"},
    schemas._check_status_target: {"pattern": "^([0-9]{2}|[A-Za-z]*)$"},
}


def strict_field_properties(self, field: fields.Field, ret: dict, **kwargs) -> dict:
    """apispec attribute function for the custom fields of ``schemas``.

    Bound to the plugin's converter; ``ret`` holds what the built-in
    functions found (type, default, ``$ref``...) and may be changed in place.
    """
    props: dict[str, Any] = {}

    if ret.get("default", "") is None:
        del ret["default"]  # "not given", which OpenAPI says by omission

    if isinstance(field, schemas.Choice):
        # Every accepted spelling (aliases too); in its own case if any will do.
        spellings = field.accepted.values() if field.ignore_case else field.accepted
        props["enum"] = list(dict.fromkeys(spellings))
        if field.ignore_case:
            props["description"] = "in any case"
        if not field.required:
            props["enum"].append("")
    elif isinstance(field, schemas.TimeText):
        shape = field.shape.pattern
        required = field.required or isinstance(field, schemas.QueryDate)
        props["pattern"] = f"^{shape}$" if required else f"^({shape})?$"
        props["description"] = field.expected.removeprefix("must be ")

    if isinstance(field, schemas.StrictString):
        if field.max_length is not None:
            props["maxLength"] = field.max_length
        if field.required:
            props["minLength"] = 1

    if isinstance(field, schemas.StrictInteger):
        if field.choices is not None:
            props["enum"] = list(field.choices)
        if field.minimum is not None:
            props["minimum"] = field.minimum
        if field.maximum is not None:
            props["maximum"] = field.maximum

    if isinstance(field, schemas.StrictNumber):
        props["minimum"] = field.minimum
        props["maximum"] = field.maximum

    if isinstance(field, schemas.ZipCode):
        props["oneOf"] = [
            {"type": "integer", "minimum": 10_000, "maximum": 99_999},
            {"type": "string", "pattern": "^[0-9]{5}$"},
        ]
        props["description"] = field.expected.removeprefix("must be ")

    if isinstance(field, schemas.StrictList):
        if field.min_items:
            props["minItems"] = field.min_items
        if field.max_items is not None:
            props["maxItems"] = field.max_items

    if isinstance(field, schemas.Lines):
        # A list of line objects, although marshmallow sees one Nested field.
        props["type"] = "array"
        props["items"] = {"$ref": ret.pop("$ref")}
        props["minItems"] = 1
        props["maxItems"] = schemas.MAX_LINES

    if isinstance(field, schemas.LineQuantities):
        props["type"] = "object"
        props["additionalProperties"] = {
            "type": "integer",
            "minimum": 0,
            "maximum": schemas.MAX_QTY,
        }
        props["description"] = (
            'quantity per line, named by SKU or line number, e.g. {"SKU-A": 3}'
        )

    for validator in field.validators:
        props.update(VALIDATOR_PROPERTIES.get(validator, {}))

    # null is never a value of a request field [decided]; "$ref" allows no
    # siblings in OpenAPI 3.0.
    if "$ref" not in ret and "$ref" not in props and _is_strict(field):
        props["nullable"] = False
    return props


STRICT_FIELDS = (
    schemas.StrictString,
    schemas.StrictInteger,
    schemas.StrictNumber,
    schemas.StrictBoolean,
    schemas.AnyObject,
    schemas.ZipCode,
    schemas.StrictList,
    schemas.Lines,
    schemas.LineQuantities,
)


def _is_strict(field: fields.Field) -> bool:
    return isinstance(field, STRICT_FIELDS)


def _teach(plugin: MarshmallowPlugin) -> None:
    """The converter exists once the plugin is bound to a spec."""
    converter = plugin.converter
    # A copy: map_to_openapi_type writes to apispec's module-wide table.
    converter.field_mapping = dict(converter.field_mapping)
    converter.map_to_openapi_type(schemas.StrictString, "string", None)
    converter.map_to_openapi_type(schemas.StrictInteger, "integer", None)
    converter.map_to_openapi_type(schemas.StrictNumber, "number", None)
    converter.map_to_openapi_type(schemas.StrictBoolean, "boolean", None)
    converter.map_to_openapi_type(schemas.AnyObject, "object", None)
    converter.add_attribute_function(strict_field_properties)


# -- Response shapes (SPEC 3) -------------------------------------------------
#
# Every field is required and no other is allowed (marshmallow's default,
# RAISE, becomes additionalProperties: false): a field added to an answer
# must be added here too, or the schemathesis pass in CI fails.


def _text(**kwargs: Any) -> fields.String:
    return fields.String(required=True, **kwargs)


def _whole(**kwargs: Any) -> fields.Integer:
    return fields.Integer(required=True, **kwargs)


def _money(**kwargs: Any) -> fields.Float:
    return fields.Float(required=True, **kwargs)


def _udfs(prefix: str, count: int) -> dict[str, fields.Field]:
    return {f"{prefix}{i}": _text() for i in range(1, count + 1)}


class GroupKeySchema(Schema):
    group_key = _text(
        metadata={
            "pattern": r"^hwoutbound(oms|wms)\.[0-9]{4}\.[0-9]{2}\.[0-9]{8}\.[0-9]+$",
            "example": "hwoutboundoms.2022.02.04083214.112233",
        }
    )


class PaginationSchema(Schema):
    current_page = _whole(metadata={"minimum": 1})
    current_elements = _whole(metadata={"minimum": 0})
    total_pages = _whole(metadata={"minimum": 0})
    total_elements = _whole(metadata={"minimum": 0})


LIST_RECORD_FIELDS: dict[str, fields.Field] = {
    "order_no": _text(),
    "order_type": _text(metadata={"enum": ["B2B", "B2C"]}),
    "so_status": _text(metadata={"enum": list(API_STATUSES)}),
    "warehouse_id": _text(),
    "consignee_id": _text(),
    "consignee_name": _text(),
    "release_status": fields.Boolean(required=True),
    "order_time": _text(metadata={"example": "2021-08-31 01:15:30"}),
    "wave_no": _text(),
    **_udfs("so_reference_", 5),
    "consignee_address_1": _text(),
    "consignee_city": _text(),
    "billing_id": _text(),
    "carrier_name": _text(),
}
ListRecordSchema = Schema.from_dict(LIST_RECORD_FIELDS, name="ListRecordSchema")


WmsLineSchema = Schema.from_dict(
    {
        "sku": _text(),
        "order_line": _whole(),
        "line_status": _text(),
        "sku_descr": _text(),
        **{
            f"qty_{step}": _whole()
            for step in ("ordered", "released", "allocated", "picked", "shipped")
        },
        "pack_id": _text(),
        **_udfs("udf_0", 5),
        "mfg_date": _text(),
        "exp_date": _text(),
        "batch_no": _text(),
        "serial_no": _text(),
        "receipt_date": fields.String(required=True, allow_none=True),
        "product_condition": _text(metadata={"enum": ["N", "Y"]}),
    },
    name="WmsLineSchema",
)

WmsOutboundSchema = Schema.from_dict(
    {
        **LIST_RECORD_FIELDS,
        "order_time": _text(metadata={"example": "2021-08-31T01:15:30Z"}),
        "delivery_no": _text(metadata={"description": '"*" until an AWB exists'}),
        **_udfs("udf_0", 5),
        "notes": _text(),
        "details": fields.List(fields.Nested(WmsLineSchema), required=True),
    },
    name="WmsOutboundSchema",
)


class OmsLineSchema(Schema):
    sku = _text()
    order_line = _whole()
    sku_descr = _text()
    qty_ordered = _whole()
    price = _money()


class SubOrderLineSchema(Schema):
    sku = _text()
    order_line = _whole()
    qty_ordered = _whole()
    qty_released = _whole()
    qty_allocated = _whole()
    qty_picked = _whole()
    qty_shipped = _whole()


class SubOrderSchema(Schema):
    warehouse_id = _text()
    so_status = _text(metadata={"enum": [PENDING_AUDIT, *API_STATUSES]})
    status_code = _text()
    status_name = _text()
    doc_no = _text()
    delivery_no = _text()
    details = fields.List(fields.Nested(SubOrderLineSchema), required=True)


OMS_TEXT_FIELDS = (
    "order_no order_type warehouse_id shop_code tenant_name platform "
    "order_source internal_order_status consignee consignee_phone "
    "consignee_mobile consignee_email consignee_full_address consignee_state "
    "consignee_province consignee_city area town zip_code order_time "
    "payment_time express_code express_name delivery_no notes seller_remark "
    "payment_way"
).split()

OmsOutboundSchema = Schema.from_dict(
    {
        **{name: _text() for name in OMS_TEXT_FIELDS},
        "so_status": _text(metadata={"enum": [""]}),
        **_udfs("so_reference_", 5),
        "has_split": fields.Boolean(required=True),
        "payment_type": _text(metadata={"enum": ["PAY_ONLINE", "COD"]}),
        "total_discount": _money(),
        "seller_discount": _money(),
        "buyer_paid_shipping_fee": _money(),
        "currency": _text(metadata={"enum": ["IDR"]}),
        "total_amount": _money(),
        "details": fields.List(fields.Nested(OmsLineSchema), required=True),
        "sub_orders": fields.List(fields.Nested(SubOrderSchema), required=True),
    },
    name="OmsOutboundSchema",
)


class ExpressSchema(Schema):
    express_code = _text()
    express_name = _text()


class StockRowSchema(Schema):
    sku = _text()
    sku_descr = _text()
    warehouse_id = _text()
    qty = _whole()


class WarehouseStockSchema(Schema):
    warehouse_id = _text()
    stock = _whole()


class SkuStockSchema(Schema):
    sku = _text()
    stock = _whole()
    details = fields.List(fields.Nested(WarehouseStockSchema), required=True)


def _wrapped(key: str, schema: type[Schema], many: bool = False) -> dict:
    """``{"<key>": <schema>}`` or ``{"<key>": [<schema>]}`` as JSON schema."""
    ref = _ref(_name(schema))
    return _closed({key: {"type": "array", "items": ref} if many else ref})


# -- Envelopes ----------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _name(schema: type[Schema]) -> str:
    return schema.__name__.removesuffix("Schema")


def _closed(properties: dict) -> dict:
    """An object with exactly these properties, every one of them required."""
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


def _metadata(status: int, errors: dict | None = None) -> dict:
    properties = {
        "path": {"type": "string", "description": "path and query string"},
        "http_status_code": {"type": "integer", "enum": [status]},
        "http_status": {"type": "string", "enum": [reason_phrase(status)]},
        "timestamp": {"type": "integer", "description": "Unix seconds"},
    }
    if errors is not None:
        properties["errors"] = errors
    return _closed(properties)


def _errors(codes: list[int]) -> dict:
    return {
        "type": "array",
        "minItems": 1,
        "items": _closed(
            {
                "code": {"type": "integer", "enum": codes},
                "message": {
                    "type": "string",
                    "enum": sorted({ERROR_CODES[c].message for c in codes}),
                },
            }
        ),
    }


SHIPPER_ERRORS = {
    400: "refused: a field failed validation (810) or a business rule "
    "(3011-3022); x-sim-error says which",
    404: "no such order, or no such route (10004)",
    413: "the body is larger than the simulator accepts (810)",
    500: "the simulator failed, or a fault was injected (803)",
}

CONTROL_ERRORS = {
    400: "refused: a bad field or parameter, named in field",
    401: "this simulator was started with an admin token: send x-admin-token",
    404: "no such client, order, delivery or route",
    409: "two clients have that order number: add ?client_id=",
    413: "the body is larger than the simulator accepts",
    500: "the simulator failed",
}


def _codes_of(status: int) -> list[int]:
    # A body too large is Shipper's 810 with the status the gateway gives.
    if status == 413:
        return [810]
    return sorted(c for c, e in ERROR_CODES.items() if e.http_status == status)


GATEWAY_401 = _closed(
    {
        "metadata": _closed(
            {
                "path": {"type": "string"},
                "status_code": {"type": "integer", "enum": [401]},
                "status": {"type": "string", "enum": ["Unauthorized"]},
                "message": {
                    "type": "string",
                    "example": "PATCH /v1/fulfillment/outbound/oms/cancel "
                    "[401] Unauthorized",
                },
                "error": _closed(
                    {
                        "code": {"type": "integer", "enum": [802]},
                        "message": {
                            "type": "string",
                            "enum": [ERROR_CODES[802].message],
                        },
                    }
                ),
                "timestamp": {
                    "type": "string",
                    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$",
                },
            }
        )
    }
)

CONTROL_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, what would work"},
        "field": {"type": "string", "description": "the field at fault, if one"},
    },
}

# A control answer: a JSON object whose fields docs/control-api.md lists.
LOOSE_OBJECT = {"type": "object"}
CLOCK = {
    "type": "object",
    "required": ["now", "iso", "frozen"],
    "properties": {
        "now": {"type": "number", "description": "Unix seconds"},
        "iso": {"type": "string"},
        "frozen": {"type": "boolean"},
    },
}


def _components(spec: APISpec) -> None:
    for schema in (
        GroupKeySchema,
        PaginationSchema,
        ListRecordSchema,
        WmsOutboundSchema,
        OmsOutboundSchema,
        ExpressSchema,
        StockRowSchema,
        SkuStockSchema,
    ):
        spec.components.schema(_name(schema), schema=schema)

    add = spec.components.schema
    add("Metadata", _metadata(200))
    for status in (400, 404, 413, 500):
        errors = _errors(_codes_of(status))
        metadata = _metadata(status, errors)
        add(f"Error{status}", _closed({"metadata": metadata}))
    add("GatewayUnauthorized", GATEWAY_401)
    add("ControlError", CONTROL_ERROR)

    def envelope(name: str, data: dict | None, paged: bool = False) -> None:
        properties = {"metadata": _ref("Metadata")}
        if data is not None:
            properties["data"] = data
        if paged:
            properties["pagination"] = _ref("Pagination")
        add(name, _closed(properties))

    envelope("MetadataOnly", None)
    envelope("CreateSalesOrderResponse", _ref("GroupKey"))
    envelope(
        "ListSalesOrderResponse", _wrapped("outbounds", ListRecordSchema, True), True
    )
    envelope("DetailWmsResponse", _wrapped("outbound", WmsOutboundSchema))
    envelope("DetailOmsResponse", _wrapped("outbound", OmsOutboundSchema))
    envelope("ExpressListResponse", _wrapped("express", ExpressSchema, True), True)
    envelope("StockResponse", _wrapped("stock", StockRowSchema, True), True)
    envelope(
        "StockByWarehouseResponse",
        {"type": "array", "items": _ref("SkuStock")},
        True,
    )

    spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "apiKey", "in": "header", "name": "x-api-key"}
    )
    spec.components.security_scheme(
        ADMIN_SCHEME,
        {
            "type": "apiKey",
            "in": "header",
            "name": "x-admin-token",
            "description": "only when the simulator was started with an admin "
            "token (wide binds)",
        },
    )


# -- The operations -----------------------------------------------------------

B2C_EXAMPLE = {
    "warehouse_id": "WH-TGR04",
    "customer_id": "CS674",
    "so_number": "SHOPEE-2207-000123",
    "order_type": "SO",
    "platform": "SHOPEE",
    "order_identification_code": 1,
    "internal_order_status": "Pending",
    "express_code": "JNE",
    "tenant_name": "Toko Contoh",
    "consignee": "Budi Santoso",
    "consignee_phone": "081200000001",
    "consignee_email": "budi@example.com",
    "consignee_full_address": "Jl. Contoh No. 5, Tanah Abang, Jakarta Pusat",
    "consignee_state": "Indonesia",
    "consignee_province": "DKI Jakarta",
    "consignee_city": "Jakarta Pusat",
    "zip_code": "10250",
    "buyer_remark": "tolong dibungkus rapi",
    "order_price": 185000,
    "postage": 10000,
    "order_time": "2022-07-15 11:58:40",
    "payment_time": "2022-07-15 12:01:02",
    "payment_type": 0,
    "details": [
        {"sku": "SKU-TSHIRT-M", "qty_ordered": 2, "price": 75000},
        {"sku": "SKU-CAP-01", "qty_ordered": 1, "price": 35000},
    ],
}

B2B_EXAMPLE = {
    "warehouse_id": "WH-TGR04",
    "customer_id": "HJ",
    "order_type": "CSO",
    "doc_no": "ERP-SO-0042",
    "order_time": "2021-05-07T00:00:00Z",
    "consignee_id": "ERP",
    "consignee_name": "PT Contoh Retail",
    "consignee_tel": "0213000000",
    "consignee_mail": "gudang@example.com",
    "consignee_zip": 12345,
    "consignee_address": "Jl. Contoh Raya 10, Kebayoran Baru, Jakarta Selatan",
    "consignee_city": "Jakarta Selatan",
    "carrier_id": "SICEPAT",
    "carrier_name": "SiCepat",
    "details": [
        {"line_no": 1, "sku": "SKU-TSHIRT-M", "qty_ordered": 40, "price": 60000},
        {"line_no": 2, "sku": "SKU-CAP-01", "qty_ordered": 25, "price": 30000},
    ],
}


def _cancel_example(order_no: str) -> dict:
    return {
        "data": {
            "cancellation": {
                "order_no": order_no,
                "warehouse_id": "WH-TGR04",
                "cancel_reason": "customer changed mind",
            }
        }
    }


def _query(name: str, schema: dict, description: str = "", **extra: Any) -> dict:
    param = {"in": "query", "name": name, "schema": schema, **extra}
    if description:
        param["description"] = description
    return param


CLIENT_ID_QUERY = _query(
    "client_id",
    {"type": "integer", "minimum": 1, "maximum": schemas.MAX_CLIENT_ID},
    "the client whose order or data is meant",
    example=112233,
)
LIMIT_QUERY = _query("limit", {"type": "integer", "minimum": 1}, "at most this many")


def _text_query(name: str, description: str = "") -> dict:
    return _query(name, {"type": "string"}, description)


@dataclass(frozen=True)
class Operation:
    """What the URL map cannot say about one method on one path."""

    operation_id: str
    summary: str
    tag: str
    body: type[Schema] | dict | None = None
    body_required: bool = True
    example: dict | None = None
    query: type[Schema] | None = None
    query_params: tuple[dict, ...] = ()
    path_params: dict[str, dict] = field(default_factory=dict)
    ok_status: int = 200
    ok: str | dict = "MetadataOnly"
    errors: tuple[int, ...] = ()
    description: str = ""

    @property
    def is_shipper(self) -> bool:
        return self.tag != CONTROL


SALES_ORDER, MASTER_DATA, CONTROL = "Sales order", "Master data", "Control (simulator)"

WAREHOUSE_PARAM = {"schema": {"type": "string", "minLength": 1}, "example": "WH-TGR04"}


def _order_no_param(example: str) -> dict:
    return {"schema": {"type": "string", "minLength": 1}, "example": example}


B2C_DETAIL_PARAMS = {
    "warehouse_id": WAREHOUSE_PARAM,
    "order_no": _order_no_param(B2C_EXAMPLE["so_number"]),
}
B2B_DETAIL_PARAMS = {
    "warehouse_id": WAREHOUSE_PARAM,
    "order_no": _order_no_param(B2B_EXAMPLE["doc_no"]),
}
DELIVERY_ID_PARAM = {"delivery_id": {"schema": {"type": "integer", "minimum": 0}}}
CLIENT_ID_PARAM = {"client_id": {"schema": {"type": "integer", "minimum": 0}}}

V3 = "/v3/fulfillment"

# None, or the admin token when the simulator was started with one.
CONTROL_SECURITY = [{}, {ADMIN_SCHEME: []}]

# Keyed by (method, path) as the document names them, one entry per route
# and method of the app; ``<any(oms, wms):kind_path>`` is one path per value.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", f"{V3}/outbound/oms"): Operation(
        "create_sales_order_b2c",
        "Create Sales Order B2C (OMS)",
        SALES_ORDER,
        body=schemas.B2CCreateSchema,
        example=B2C_EXAMPLE,
        ok="CreateSalesOrderResponse",
        description='SPEC 3.1. A body wrapped as {"data": {"outbound": {...}}} '
        "is accepted too. zip_code (or its older name zipcode) is required; "
        "mobile is the older name of consignee_mobile.",
    ),
    ("POST", f"{V3}/outbound/wms"): Operation(
        "create_sales_order_b2b",
        "Create Sales Order B2B (WMS)",
        SALES_ORDER,
        body=schemas.B2BCreateSchema,
        example=B2B_EXAMPLE,
        ok="CreateSalesOrderResponse",
        description="SPEC 3.2.",
    ),
    ("PUT", f"{V3}/outbound/oms"): Operation(
        "update_sales_order_b2c",
        "Update Sales Order B2C (OMS)",
        SALES_ORDER,
        body=schemas.B2CCreateSchema,
        example=B2C_EXAMPLE,
        description="SPEC 3.3: the full create body; allowed until allocation.",
    ),
    ("PUT", f"{V3}/outbound/wms"): Operation(
        "update_sales_order_b2b",
        "Update Sales Order B2B (WMS)",
        SALES_ORDER,
        body=schemas.B2BCreateSchema,
        example=B2B_EXAMPLE,
        description="SPEC 3.3: the full create body; allowed until allocation.",
    ),
    ("PATCH", f"{V3}/outbound/oms/cancel"): Operation(
        "cancel_sales_order_b2c",
        "Cancel Sales Order B2C (OMS)",
        SALES_ORDER,
        body=schemas.CancelSchema,
        example=_cancel_example(B2C_EXAMPLE["so_number"]),
        description="SPEC 3.4: order_no is the so_number.",
    ),
    ("PATCH", f"{V3}/outbound/wms/cancel"): Operation(
        "cancel_sales_order_b2b",
        "Cancel Sales Order B2B (WMS)",
        SALES_ORDER,
        body=schemas.CancelSchema,
        example=_cancel_example(B2B_EXAMPLE["doc_no"]),
        description="SPEC 3.4: order_no is the doc_no.",
    ),
    ("GET", f"{V3}/outbounds/{{outbound_type}}"): Operation(
        "list_sales_orders",
        "Retrieve List Sales Order",
        SALES_ORDER,
        query=schemas.ListQuerySchema,
        path_params={
            "outbound_type": {"schema": {"type": "string", "enum": ["WMS", "OMS"]}}
        },
        ok="ListSalesOrderResponse",
        description="SPEC 3.5: newest first; a page past the end is empty.",
    ),
    ("GET", f"{V3}/warehouse/{{warehouse_id}}/outbound/wms/{{order_no}}"): Operation(
        "get_sales_order_detail_wms",
        "Sales Order Detail WMS",
        SALES_ORDER,
        path_params=B2B_DETAIL_PARAMS,
        ok="DetailWmsResponse",
        description="SPEC 3.6: B2B orders, and B2C orders once released.",
    ),
    ("GET", f"{V3}/warehouse/{{warehouse_id}}/outbound/oms/{{order_no}}"): Operation(
        "get_sales_order_detail_oms",
        "Sales Order Detail OMS",
        SALES_ORDER,
        path_params=B2C_DETAIL_PARAMS,
        ok="DetailOmsResponse",
        description="SPEC 3.7: B2C orders, with one sub-order per warehouse part.",
    ),
    ("GET", f"{V3}/express"): Operation(
        "get_express_list",
        "Express (carrier) list",
        MASTER_DATA,
        query=schemas.ExpressQuerySchema,
        ok="ExpressListResponse",
    ),
    ("GET", f"{V3}/inventory/stock"): Operation(
        "get_stock",
        "Stock of one warehouse",
        MASTER_DATA,
        query=schemas.StockQuerySchema,
        ok="StockResponse",
        description="SPEC 3.8: sku and the repeated skus together at most 20.",
    ),
    ("GET", f"{V3}/inventory/stock/warehouse"): Operation(
        "get_stock_by_warehouse",
        "OMS stock per SKU over every warehouse",
        MASTER_DATA,
        query=schemas.StockWarehouseQuerySchema,
        ok="StockByWarehouseResponse",
    ),
    # -- the control API
    ("GET", "/_sim/health"): Operation(
        "health",
        "Ready?",
        CONTROL,
        ok=_closed({"status": {"type": "string", "enum": ["ok"]}}),
    ),
    ("POST", "/_sim/reset"): Operation(
        "reset",
        "Drop orders, deliveries and journal; reload fixtures",
        CONTROL,
        query_params=(CLIENT_ID_QUERY,),
        ok=LOOSE_OBJECT,
        errors=(404,),
    ),
    ("GET", "/_sim/clients"): Operation(
        "list_clients", "Every client", CONTROL, ok=LOOSE_OBJECT
    ),
    ("POST", "/_sim/clients"): Operation(
        "add_client",
        "Add a client",
        CONTROL,
        body=schemas.ClientSchema,
        example={
            "api_key": "my-test-key",
            "client_id": 900001,
            "tenant_name": "Toko Uji",
            "oms_customer_id": "CS900",
            "wms_customer_id": "UJI",
            "warehouses": ["WH-TGR04"],
            "webhook_url": "http://127.0.0.1:9000/hook",
        },
        ok_status=201,
        ok=LOOSE_OBJECT,
    ),
    ("GET", "/_sim/clients/{client_id}"): Operation(
        "get_client",
        "One client",
        CONTROL,
        path_params=CLIENT_ID_PARAM,
        ok=LOOSE_OBJECT,
    ),
    ("DELETE", "/_sim/clients/{client_id}"): Operation(
        "remove_client",
        "Remove a client with its stock, orders, deliveries and journal",
        CONTROL,
        path_params=CLIENT_ID_PARAM,
        ok=LOOSE_OBJECT,
    ),
    ("PATCH", "/_sim/clients/{client_id}"): Operation(
        "update_client",
        "Change a client's webhook URL, progression, step delay or name",
        CONTROL,
        body=schemas.ClientUpdateSchema,
        path_params=CLIENT_ID_PARAM,
        ok=LOOSE_OBJECT,
    ),
    ("PUT", "/_sim/stock"): Operation(
        "set_stock",
        "Set one SKU's physical stock",
        CONTROL,
        body=schemas.StockSetSchema,
        example={
            "client_id": 112233,
            "warehouse_id": "WH-TGR04",
            "sku": "SKU-NEW-01",
            "qty": 50,
            "sku_descr": "Botol minum 600ml",
        },
        ok=LOOSE_OBJECT,
        errors=(404,),
    ),
    ("GET", "/_sim/stock"): Operation(
        "list_stock",
        "A client's stock levels",
        CONTROL,
        query_params=({**CLIENT_ID_QUERY, "required": True},),
        ok=LOOSE_OBJECT,
        errors=(404,),
    ),
    ("GET", "/_sim/orders"): Operation(
        "list_orders",
        "Orders, newest first",
        CONTROL,
        query_params=(CLIENT_ID_QUERY, _text_query("status"), LIMIT_QUERY),
        ok=LOOSE_OBJECT,
    ),
    ("GET", "/_sim/orders/{warehouse_id}/{order_no}"): Operation(
        "order_timeline",
        "One order's timeline",
        CONTROL,
        query_params=(CLIENT_ID_QUERY,),
        path_params=B2B_DETAIL_PARAMS,
        ok=LOOSE_OBJECT,
        errors=(409,),
    ),
    ("POST", "/_sim/orders/{warehouse_id}/{order_no}/advance"): Operation(
        "advance_order",
        "Run warehouse steps",
        CONTROL,
        body=schemas.AdvanceSchema,
        example={"to": "SHIPPED"},
        query_params=(CLIENT_ID_QUERY,),
        path_params=B2B_DETAIL_PARAMS,
        ok=LOOSE_OBJECT,
        errors=(409,),
        description='{"to": "<status>"} or {"step": "<step>", "lines": {...}}; '
        "answers the order as the WMS detail shows it.",
    ),
    ("PUT", "/_sim/orders/{warehouse_id}/{order_no}/progression"): Operation(
        "set_progression",
        "How one order moves on",
        CONTROL,
        body=schemas.ProgressionSchema,
        example={"mode": "manual"},
        query_params=(CLIENT_ID_QUERY,),
        path_params=B2B_DETAIL_PARAMS,
        ok=LOOSE_OBJECT,
        errors=(409,),
    ),
    ("POST", "/_sim/orders/{warehouse_id}/{order_no}/cancel"): Operation(
        "cancel_order",
        "Cancel as the order's client would",
        CONTROL,
        body={
            "type": "object",
            "properties": {"cancel_reason": {"type": "string", "maxLength": 50}},
        },
        body_required=False,
        query_params=(CLIENT_ID_QUERY,),
        path_params=B2B_DETAIL_PARAMS,
        ok=LOOSE_OBJECT,
        errors=(409,),
        description="Answers {shipper_status, shipper_body, reason}: Shipper's "
        "answer as the client would get it.",
    ),
    ("GET", "/_sim/webhooks"): Operation(
        "list_webhooks",
        "Every webhook delivery with its attempts",
        CONTROL,
        query_params=(
            CLIENT_ID_QUERY,
            _text_query("order_no"),
            _text_query("event"),
            _text_query("state"),
            LIMIT_QUERY,
        ),
        ok=LOOSE_OBJECT,
    ),
    ("GET", "/_sim/webhooks/{delivery_id}"): Operation(
        "get_webhook",
        "One webhook delivery",
        CONTROL,
        path_params=DELIVERY_ID_PARAM,
        ok=LOOSE_OBJECT,
    ),
    ("POST", "/_sim/webhooks/{delivery_id}/redeliver"): Operation(
        "redeliver_webhook",
        "Send one webhook again",
        CONTROL,
        path_params=DELIVERY_ID_PARAM,
        ok_status=202,
        ok=LOOSE_OBJECT,
    ),
    ("GET", "/_sim/requests"): Operation(
        "list_requests",
        "The request journal, newest first",
        CONTROL,
        query_params=(
            CLIENT_ID_QUERY,
            _text_query("path"),
            _query("status", {"type": "integer"}, "HTTP status"),
            _text_query("method"),
            LIMIT_QUERY,
        ),
        ok=LOOSE_OBJECT,
    ),
    ("POST", "/_sim/requests/verify"): Operation(
        "verify_requests",
        "Was an endpoint called N times with a body matching these fields?",
        CONTROL,
        body=schemas.VerifySchema,
        example={
            "method": "PATCH",
            "path": f"{V3}/outbound/oms/cancel",
            "body": {"data": {"cancellation": {"order_no": "SO-1"}}},
            "count": 1,
        },
        ok=LOOSE_OBJECT,
    ),
    ("GET", "/_sim/faults"): Operation(
        "list_faults", "Faults waiting to happen", CONTROL, ok=LOOSE_OBJECT
    ),
    ("POST", "/_sim/faults"): Operation(
        "add_fault",
        "Make the next matching calls or webhooks go wrong",
        CONTROL,
        body=schemas.FaultSchema,
        example={"endpoint": "create_sales_order", "status": 500, "count": 1},
        ok_status=201,
        ok=LOOSE_OBJECT,
        errors=(409,),
        description="An API fault answers its error_code or status on Shipper's "
        "routes, which this document does not list for them.",
    ),
    ("DELETE", "/_sim/faults"): Operation(
        "remove_faults", "Remove every fault", CONTROL, ok=LOOSE_OBJECT, errors=(409,)
    ),
    ("DELETE", "/_sim/faults/{fault_id}"): Operation(
        "remove_fault",
        "Remove one fault",
        CONTROL,
        path_params={"fault_id": {"schema": {"type": "integer", "minimum": 0}}},
        ok=LOOSE_OBJECT,
        errors=(409,),
    ),
    ("GET", "/_sim/clock"): Operation(
        "get_clock", "The simulator's clock", CONTROL, ok=CLOCK
    ),
    ("POST", "/_sim/clock/freeze"): Operation(
        "freeze_clock",
        "Stop the clock (at a given Unix time, or now)",
        CONTROL,
        body=schemas.ClockSchema,
        body_required=False,
        example={"at": 1657860000},
        ok=CLOCK,
        errors=(409,),
    ),
    ("POST", "/_sim/clock/advance"): Operation(
        "advance_clock",
        "Move virtual time on, running what falls due",
        CONTROL,
        body=schemas.ClockSchema,
        example={"seconds": 60},
        ok=LOOSE_OBJECT,
        errors=(409,),
    ),
    ("POST", "/_sim/clock/unfreeze"): Operation(
        "unfreeze_clock", "Let the clock run again", CONTROL, ok=CLOCK, errors=(409,)
    ),
    ("GET", "/_sim/statuses"): Operation(
        "status_table", "The status ladder", CONTROL, ok=LOOSE_OBJECT
    ),
    ("GET", "/_sim/config"): Operation(
        "show_config", "The settings this simulator runs with", CONTROL, ok=LOOSE_OBJECT
    ),
    ("GET", "/_sim/changes"): Operation(
        "list_changes",
        "One mark per kind of state, for polling",
        CONTROL,
        query_params=(CLIENT_ID_QUERY,),
        ok=LOOSE_OBJECT,
    ),
    ("GET", "/_sim/openapi.json"): Operation(
        "openapi_document", "This document", CONTROL, ok=LOOSE_OBJECT
    ),
}


# -- From the URL map to paths ------------------------------------------------

_PLACEHOLDER = re.compile(
    r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>"
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def is_documented(rule: Rule) -> bool:
    """JSON routes of Shipper's API and the control API; not pages or files."""
    if rule.endpoint in UNDOCUMENTED_ENDPOINTS:
        return False
    if rule.endpoint.split(".", 1)[0] in UNDOCUMENTED_BLUEPRINTS:
        return False
    return rule.rule.startswith(API_PREFIXES)


def document_paths(rule: Rule) -> list[tuple[str, dict[str, str]]]:
    """The OpenAPI paths of one rule, each with its path parameters' converters.

    ``<any(oms, wms):kind_path>`` gives one path per value, since the two
    take different bodies; any other ``<converter:name>`` is ``{name}``.
    """
    paths = [("", {})]
    position = 0
    for match in _PLACEHOLDER.finditer(rule.rule):
        literal = rule.rule[position : match.start()]
        position = match.end()
        converter = match["converter"] or "default"
        if converter == "any":
            values = [v.strip().strip("'\"") for v in match["args"].split(",")]
            paths = [(p + literal + v, c) for p, c in paths for v in values]
        else:
            name = match["name"]
            paths = [
                (p + literal + f"{{{name}}}", {**c, name: converter}) for p, c in paths
            ]
    tail = rule.rule[position:]
    return [(p + tail, c) for p, c in paths]


def documented_operations(app: Flask) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(method, path, path converters) of every documented route of ``app``."""
    for rule in app.url_map.iter_rules():
        if not is_documented(rule):
            continue
        for path, converters in document_paths(rule):
            for method in sorted(rule.methods or ()):
                if method in METHODS:
                    yield method, path, converters


# -- Building -----------------------------------------------------------------


def openapi_document(app: Flask) -> dict:
    """The document of ``app``, built on first use and kept with the app."""
    document = app.extensions.get(CACHE_KEY)
    if document is None:
        document = build_document(app)
        app.extensions[CACHE_KEY] = document
    return document


def build_document(app: Flask) -> dict:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Shipper OMS/WMS outbound API (shipper-sim)",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": "Shipper's outbound (sales order) API under "
            "/v3/fulfillment, as the simulator serves it, and the simulator's "
            "own control API under /_sim. See docs/openapi.md."
        },
        servers=[{"url": "/", "description": "the simulator serving this document"}],
        tags=[
            {"name": SALES_ORDER, "description": "SPEC 3.1-3.7"},
            {"name": MASTER_DATA, "description": "SPEC 3.8, read-only"},
            {"name": CONTROL, "description": "not Shipper's: SPEC 6, no API key"},
        ],
    )
    _teach(plugin)
    _components(spec)
    _request_schemas(spec)
    _error_responses(spec)

    by_path: dict[str, dict] = {}
    for method, path, converters in documented_operations(app):
        found = OPERATIONS.get((method, path))
        if found is None:
            continue  # tests/test_openapi.py names every route left out
        by_path.setdefault(path, {})[method.lower()] = _operation(found, converters)

    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _request_schemas(spec: APISpec) -> None:
    """Each body schema once, described by its docstring's first line."""
    bodies = {op.body for op in OPERATIONS.values() if isinstance(op.body, type)}
    for schema in sorted(bodies, key=_name):
        description = (schema.__doc__ or "").strip().split("\n\n")[0]
        spec.components.schema(
            _name(schema), {"description": " ".join(description.split())}, schema=schema
        )


def _operation(op: Operation, converters: dict[str, str]) -> dict:
    parameters = [_path_param(name, conv, op) for name, conv in converters.items()]
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    parameters.extend(op.query_params)

    operation: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": _responses(op, bool(converters)),
        "security": [{SECURITY_SCHEME: []}] if op.is_shipper else CONTROL_SECURITY,
    }
    if op.description:
        operation["description"] = op.description
    if op.body is not None:
        operation["requestBody"] = _request_body(op)
    return operation


def _path_param(name: str, converter: str, op: Operation) -> dict:
    param = {"in": "path", "name": name, "required": True}
    if name in op.path_params:
        param.update(op.path_params[name])
    elif converter == "int":
        param["schema"] = {"type": "integer", "minimum": 0}
    else:
        param["schema"] = {"type": "string", "minLength": 1}
    return param


def _request_body(op: Operation) -> dict:
    # apispec registers a schema class as a component and answers a $ref.
    content: dict[str, Any] = {"schema": op.body}
    if op.example is not None:
        content["example"] = op.example
    return {"required": op.body_required, "content": {"application/json": content}}


def _responses(op: Operation, has_path_params: bool) -> dict:
    ok = op.ok if isinstance(op.ok, dict) else _ref(op.ok)
    responses = {str(op.ok_status): _json_response("success", ok)}

    statuses = {400, 500, *op.errors}
    if has_path_params:
        statuses.add(404)
    if op.body is not None:
        statuses.add(413)

    family = "Shipper" if op.is_shipper else "Control"
    for status in sorted(statuses):
        responses[str(status)] = f"{family}Error{status}"
    responses["401"] = "GatewayUnauthorized" if op.is_shipper else "ControlError401"
    return dict(sorted(responses.items()))


def _error_responses(spec: APISpec) -> None:
    """Every error answer once, under components/responses."""
    for status, description in SHIPPER_ERRORS.items():
        spec.components.response(
            f"ShipperError{status}",
            _json_response(description, _ref(f"Error{status}"), error=True),
        )
    for status, description in CONTROL_ERRORS.items():
        spec.components.response(
            f"ControlError{status}",
            _json_response(description, _ref("ControlError"), error=True),
        )
    spec.components.response(
        "GatewayUnauthorized",
        _json_response(
            "missing or unknown x-api-key (the gateway's own shape, code 802)",
            _ref("GatewayUnauthorized"),
            error=True,
        ),
    )


def _json_response(description: str, schema: dict, error: bool = False) -> dict:
    headers = {
        "x-request-id": {
            "description": "unique per request",
            "schema": {"type": "string"},
        }
    }
    if error:
        headers["x-sim-error"] = {
            "description": "the simulator's reason: which field, which value",
            "schema": {"type": "string"},
        }
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }
