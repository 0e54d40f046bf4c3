"""The OpenAPI document: valid, complete, and true to what the app answers."""

from __future__ import annotations

import copy
import re

import pytest
from conftest import (
    DEMO_KEY,
    ShipperClient,
    advance_ok,
    b2b_body,
    b2c_body,
    cancel_body,
)
from flask import Flask
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from simulator.app import create_app
from simulator.config import Config
from simulator.openapi import openapi_document

PLACEHOLDER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")
HTML_BLUEPRINTS = {"dashboard"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(app: Flask) -> dict:
    return app.test_client().get("/_sim/openapi.json").get_json()


# -- the routes, read from the URL map on their own


def json_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every JSON route; ``any()`` is one per value."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.split(".")[0] in HTML_BLUEPRINTS:
            continue
        for path in expand(rule.rule):
            for method in sorted(rule.methods - IGNORED_METHODS):
                routes.append((method, path))
    return routes


def expand(rule: str) -> list[str]:
    match = PLACEHOLDER.search(rule)
    if match is None:
        return [rule]
    converter, args, name = match.groups()
    head, tail = rule[: match.start()], rule[match.end() :]
    if converter == "any":
        values = [v.strip().strip("'\"") for v in args.split(",")]
        return [p for v in values for p in expand(head + v + tail)]
    return expand(head + "{" + name + "}" + tail)


def test_document_is_valid_openapi_3(document):
    validate_spec(document)

    assert document["openapi"].startswith("3.")


def test_every_route_of_the_app_is_in_the_document(app, document):
    missing = [
        f"{method} {path}"
        for method, path in json_routes(app)
        if method.lower() not in document["paths"].get(path, {})
    ]

    assert not missing, f"routes missing from simulator/openapi.py: {missing}"


def test_the_document_names_no_route_the_app_lacks(app, document):
    routes = set(json_routes(app))
    extra = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if (method.upper(), path) not in routes
    ]

    assert not extra


def test_every_path_parameter_is_declared(document):
    for path, operations in document["paths"].items():
        in_path = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == in_path, f"{method.upper()} {path}"


def test_dashboard_pages_are_left_out(document):
    assert not [p for p in document["paths"] if p.startswith("/_sim/dashboard")]
    assert "/_sim/" not in document["paths"]


def test_each_operation_has_a_unique_id(document):
    ids = [
        op["operationId"] for ops in document["paths"].values() for op in ops.values()
    ]

    assert len(ids) == len(set(ids))


# -- what the document says of requests


def component(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def body_schema(document: dict, method: str, path: str) -> dict:
    operation = document["paths"][path][method]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return component(document, ref.rsplit("/", 1)[1])


def test_b2c_create_schema_carries_the_field_constraints(document):
    schema = body_schema(document, "post", "/v3/fulfillment/outbound/oms")
    fields = schema["properties"]

    assert fields["so_number"]["maxLength"] == 50
    assert fields["so_number"]["pattern"] == "^[A-Za-z0-9_-]+$"
    assert fields["so_number"]["nullable"] is False
    assert fields["warehouse_id"]["maxLength"] == 20
    assert fields["order_identification_code"]["enum"] == [1]
    assert "SHOPEE" in fields["platform"]["enum"]
    assert fields["order_price"]["type"] == "number"
    assert fields["order_time"]["pattern"].startswith("^(")
    assert {"so_number", "warehouse_id", "details"} <= set(schema["required"])
    assert "zip_code" not in schema["required"]  # or its older name, zipcode

    details = fields["details"]
    assert details["type"] == "array"
    assert (details["minItems"], details["maxItems"]) == (1, 500)
    line = component(document, details["items"]["$ref"].rsplit("/", 1)[1])
    assert line["properties"]["qty_ordered"]["minimum"] == 1
    assert line["properties"]["sku"]["maxLength"] == 50
    assert set(line["required"]) == {"sku", "qty_ordered"}


def test_b2b_create_schema_carries_the_field_constraints(document):
    schema = body_schema(document, "post", "/v3/fulfillment/outbound/wms")
    fields = schema["properties"]

    assert fields["doc_no"]["maxLength"] == 20
    assert fields["doc_no"]["pattern"] == "^[A-Za-z0-9_-]+$"
    assert fields["consignee_mail"]["format"] == "email"
    assert set(fields["order_type"]["enum"]) == {"CSO", "RT", "TT", "CD", "SO"}
    assert fields["order_time"]["pattern"] == (
        "^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z$"
    )
    assert [s["type"] for s in fields["consignee_zip"]["oneOf"]] == [
        "integer",
        "string",
    ]
    line = component(document, fields["details"]["items"]["$ref"].rsplit("/", 1)[1])
    assert line["properties"]["qty_ordered"]["minimum"] == 1
    assert line["properties"]["line_no"]["minimum"] == 1


def test_update_takes_the_create_body_and_cancel_its_wrapper(document):
    create = body_schema(document, "post", "/v3/fulfillment/outbound/oms")
    update = body_schema(document, "put", "/v3/fulfillment/outbound/oms")
    cancel = body_schema(document, "patch", "/v3/fulfillment/outbound/wms/cancel")

    assert update == create
    assert cancel["required"] == ["data"]
    cancellation = component(document, "Cancellation")
    assert cancellation["properties"]["cancel_reason"]["maxLength"] == 50


def test_query_parameters_come_from_the_query_schemas(document):
    listed = document["paths"]["/v3/fulfillment/outbounds/{outbound_type}"]["get"]
    params = {p["name"]: p for p in listed["parameters"]}

    assert params["outbound_type"]["schema"]["enum"] == ["WMS", "OMS"]
    assert params["limit"]["schema"]["maximum"] == 100
    assert params["created_start"]["schema"]["pattern"].startswith("^[0-9]")
    assert "CANCELLED" in params["so_status"]["schema"]["enum"]

    stock = document["paths"]["/v3/fulfillment/inventory/stock"]["get"]
    params = {p["name"]: p for p in stock["parameters"]}
    assert params["warehouse_code"]["required"] is True
    assert params["stock_type"]["schema"]["enum"] == ["OMS", "WMS", "OMSWMS"]
    assert params["skus"]["schema"]["type"] == "array"
    assert params["skus"]["explode"] is True


def test_control_bodies_come_from_the_control_schemas(document):
    client = body_schema(document, "post", "/_sim/clients")
    advance = body_schema(
        document, "post", "/_sim/orders/{warehouse_id}/{order_no}/advance"
    )

    assert client["properties"]["client_id"]["maximum"] == 2**31 - 1
    assert client["properties"]["warehouses"]["minItems"] == 1
    assert "release" in advance["properties"]["step"]["enum"]
    assert advance["properties"]["lines"]["additionalProperties"]["type"] == "integer"


def test_shipper_routes_need_the_api_key_and_control_routes_do_not(document):
    scheme = document["components"]["securitySchemes"]["ApiKeyAuth"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "x-api-key"}

    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/v3/"):
                assert operation["security"] == [{"ApiKeyAuth": []}]
                assert "401" in operation["responses"]
            else:
                assert {} in operation["security"]


# -- serving


def test_the_document_is_built_once_per_app(app):
    first = app.test_client().get("/_sim/openapi.json").get_json()

    assert openapi_document(app) is openapi_document(app)
    assert first == openapi_document(app)

    other = create_app(Config(start_workers=False))
    try:
        assert openapi_document(other) is not openapi_document(app)
    finally:
        other.extensions["shipper_sim"].store.close()


# -- what the app answers, checked against the document


def resolve(node: object, document: dict) -> object:
    """The schema with every local ``$ref`` replaced by what it names."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target, document)
        return {k: resolve(v, document) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, document) for v in node]
    return node


def assert_documented(document: dict, method: str, path: str, response) -> None:
    responses = document["paths"][path][method.lower()]["responses"]
    status = str(response.status_code)

    assert status in responses, f"{method} {path} answered an undocumented {status}"
    answer = resolve(responses[status], document)
    schema = answer["content"]["application/json"]["schema"]
    OAS30Validator(schema).validate(response.get_json())


V3 = "/v3/fulfillment"
WMS_DETAIL = f"{V3}/warehouse/{{warehouse_id}}/outbound/wms/{{order_no}}"
OMS_DETAIL = f"{V3}/warehouse/{{warehouse_id}}/outbound/oms/{{order_no}}"


def test_success_answers_match_the_document(http, api: ShipperClient, document):
    checks = [
        ("POST", f"{V3}/outbound/oms", api.create("oms", b2c_body("SO-1"))),
        ("POST", f"{V3}/outbound/wms", api.create("wms", b2b_body("DOC-1"))),
        ("PUT", f"{V3}/outbound/oms", api.update("oms", b2c_body("SO-1"))),
    ]
    advance_ok(http, "DOC-1", to="SHIPPED")
    advance_ok(http, "SO-1", to="PACKED")
    checks += [
        ("GET", f"{V3}/outbounds/{{outbound_type}}", api.list("WMS")),
        ("GET", f"{V3}/outbounds/{{outbound_type}}", api.list("OMS")),
        ("GET", WMS_DETAIL, api.detail("wms", "DOC-1")),
        ("GET", WMS_DETAIL, api.detail("wms", "SO-1")),
        ("GET", OMS_DETAIL, api.detail("oms", "SO-1")),
        ("GET", f"{V3}/express", api.call("GET", "/express")),
        ("GET", f"{V3}/inventory/stock", api.stock()),
        (
            "GET",
            f"{V3}/inventory/stock/warehouse",
            api.call("GET", "/inventory/stock/warehouse"),
        ),
    ]
    api.create("oms", b2c_body("SO-2"))
    checks.append(("PATCH", f"{V3}/outbound/oms/cancel", api.cancel("oms", "SO-2")))

    for method, path, response in checks:
        assert response.status_code == 200, (path, response.get_json())
        assert_documented(document, method, path, response)


def test_error_answers_match_the_document(http, api: ShipperClient, document):
    stranger = ShipperClient(http, "no-such-key")
    too_large = "x" * 1_000_001
    checks = [
        ("POST", f"{V3}/outbound/oms", api.create("oms", {"so_number": 1})),
        ("POST", f"{V3}/outbound/wms", stranger.create("wms", b2b_body())),
        ("GET", WMS_DETAIL, api.detail("wms", "NO-SUCH-ORDER")),
        ("PATCH", f"{V3}/outbound/wms/cancel", api.cancel("wms", "NO-SUCH-ORDER")),
        (
            "PUT",
            f"{V3}/outbound/wms",
            api.call("PUT", "/outbound/wms", data=too_large),
        ),
        ("GET", "/_sim/clients/{client_id}", http.get("/_sim/clients/1")),
        ("POST", "/_sim/clients", http.post("/_sim/clients", json={})),
    ]
    fault = {"endpoint": "get_express_list", "status": 500}
    assert http.post("/_sim/faults", json=fault).status_code == 201
    checks.append(("GET", f"{V3}/express", api.call("GET", "/express")))

    statuses = {response.status_code for _, _, response in checks}
    assert statuses == {400, 401, 404, 413, 500}
    for method, path, response in checks:
        assert_documented(document, method, path, response)


def test_a_field_added_to_an_answer_breaks_the_document(api: ShipperClient, document):
    """The response shapes are closed: a new field must be documented too."""
    api.create("wms", b2b_body("DOC-9"))
    response = api.detail("wms", "DOC-9")
    body = copy.deepcopy(response.get_json())
    body["data"]["outbound"]["surprise"] = 1

    answer = resolve(document["paths"][WMS_DETAIL]["get"]["responses"]["200"], document)
    validator = OAS30Validator(answer["content"]["application/json"]["schema"])
    assert validator.is_valid(response.get_json())
    assert not validator.is_valid(body)


def test_examples_in_the_document_are_accepted(http, document):
    """The request examples are what schemathesis tries first: they must work."""
    api = ShipperClient(http, DEMO_KEY)
    for path, kind in (
        ("/v3/fulfillment/outbound/oms", "oms"),
        ("/v3/fulfillment/outbound/wms", "wms"),
    ):
        content = document["paths"][path]["post"]["requestBody"]["content"]
        response = api.create(kind, content["application/json"]["example"])
        assert response.status_code == 200, response.headers.get("x-sim-error")

    cancel = document["paths"]["/v3/fulfillment/outbound/oms/cancel"]["patch"]
    example = cancel["requestBody"]["content"]["application/json"]["example"]
    assert example == cancel_body(
        example["data"]["cancellation"]["order_no"], reason="customer changed mind"
    )
