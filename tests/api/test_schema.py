"""The OpenAPI schema is part of the contract: every endpoint of config/urls.py, with bodies and problem errors."""

import json
import re

import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.api.utils import schema_operations

SURFACES = ("api/pos/v1/", "api/manage/v1/")
WRITE_METHODS = {"post", "put", "patch"}
PROBLEM_REF = "#/components/schemas/Problem"


def _definedschema_operations():
    """{"/api/pos/v1/members/{member_id}/": {"get"}, ...} for every route under the two surfaces."""
    operations = {}

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(SURFACES):
                view = pattern.callback.view_class
                methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
                operations["/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)] = methods

    walk(get_resolver().url_patterns, "")
    return operations


def test_schema_is_served_as_yaml_by_default(db):
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Loyalty backend API"
    assert "/api/pos/v1/members/" in document["paths"]


def test_schema_as_json(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert json.loads(response.content)["openapi"].startswith("3.")


def test_schema_is_valid_openapi(schema):
    validate_schema(schema)


def test_schema_generates_without_warnings(tmp_path, db):
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))

    assert yaml.safe_load((tmp_path / "schema.yaml").read_text())["paths"]


def test_schema_lists_every_endpoint_of_both_surfaces(schema):
    defined = _definedschema_operations()
    documented = {
        path: {method for method in item if method in {"get", "post", "put", "patch", "delete"}}
        for path, item in schema["paths"].items()
        if path.startswith(("/api/pos/v1/", "/api/manage/v1/"))
    }

    assert "/api/pos/v1/members/{member_id}/ledger/" in defined  # the walk found the routes
    assert documented == defined


def test_operation_ids_are_unique_and_tagged(schema):
    ids = [operation["operationId"] for _, _, operation in schema_operations(schema)]

    assert len(ids) == len(set(ids))
    assert all(operation.get("tags") for _, _, operation in schema_operations(schema))
    assert all(operation.get("summary") for _, _, operation in schema_operations(schema))


def test_writes_document_their_request_body(schema):
    components = schema["components"]["schemas"]
    for path, method, operation in schema_operations(schema):
        if method in WRITE_METHODS:
            body = operation.get("requestBody")
            assert body, (path, method)
            ref = body["content"]["application/json"]["schema"]["$ref"]
            assert ref.removeprefix("#/components/schemas/") in components, (path, method)
        else:
            assert "requestBody" not in operation, (path, method)


def test_request_bodies_describe_their_fields(schema):
    components = schema["components"]["schemas"]
    enroll = schema["paths"]["/api/pos/v1/members/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    adjust = schema["paths"]["/api/manage/v1/members/{member_id}/adjustments/"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]

    enroll_input = components[enroll["$ref"].split("/")[-1]]
    adjust_input = components[adjust["$ref"].split("/")[-1]]
    assert {"external_id", "card", "email", "phone", "first_name", "last_name", "birth_date", "referral_code"} <= set(
        enroll_input["properties"]
    )
    assert not {"id", "status", "balances"} & set(enroll_input["properties"])
    assert set(adjust_input["properties"]) == {"points", "reason", "allow_debt"}
    assert set(adjust_input["required"]) == {"points", "reason"}
    assert schema["paths"]["/api/manage/v1/members/{member_id}/adjustments/"]["post"]["requestBody"]["required"] is True
    assert adjust_input["properties"]["points"]["type"] == "integer"
    assert adjust_input["properties"]["points"]["maximum"] == 1_000_000_000


def test_bodies_do_not_inherit_the_input_base_class_docstring(schema):
    """A request body without its own description has none, rather than the input base class's note to developers."""
    inherited = [
        name
        for name, component in schema["components"]["schemas"].items()
        if "request-body serializer" in component.get("description", "")
    ]

    assert inherited == []


def test_every_operation_documents_a_success_response(schema):
    for path, method, operation in schema_operations(schema):
        successes = {status: response for status, response in operation["responses"].items() if status.startswith("2")}
        assert successes, (path, method)
        for status, response in successes.items():
            if status == "204":  # No Content: nothing to describe, and nothing may be described
                assert "content" not in response, (path, method)
                continue
            assert "$ref" in json.dumps(response["content"]), (path, method)


def test_member_output_documents_balances(schema):
    components = schema["components"]["schemas"]
    member = components["MemberOutput"]
    balances = components[member["properties"]["balances"]["allOf"][0]["$ref"].split("/")[-1]]

    assert {"id", "card", "balances"} <= set(member["properties"])
    assert {"available", "pending", "debt", "expiring_soon", "earned", "redeemed", "expired"} <= set(
        balances["properties"]
    )


def test_error_responses_reference_the_problem_schema(schema):
    for path, method, operation in schema_operations(schema):
        errors = {status: response for status, response in operation["responses"].items() if status.startswith("4")}
        assert "401" in errors, (path, method)
        for status, response in errors.items():
            schemas = [media["schema"] for media in response["content"].values()]
            assert schemas and all(s == {"$ref": PROBLEM_REF} for s in schemas), (path, method, status)


def test_problem_schema_lists_the_problem_fields(schema):
    problem = schema["components"]["schemas"]["Problem"]

    assert {"type", "title", "status", "detail", "code", "errors"} <= set(problem["properties"])
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}


def test_surfaces_document_their_authentication(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {**schemes["ApiKeyAuth"], "type": "apiKey", "in": "header", "name": "Authorization"}
    for path, method, operation in schema_operations(schema):
        names = {name for requirement in operation.get("security", []) for name in requirement}
        if path.startswith("/api/pos/"):
            assert names == {"ApiKeyAuth"}, (path, method)
        elif path.startswith("/api/manage/"):
            assert names and "ApiKeyAuth" not in names, (path, method)
            assert "403" in operation["responses"], (path, method)


def test_member_id_path_parameter_is_documented(schema):
    for path, method, operation in schema_operations(schema):
        if "{member_id}" in path:
            params = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}
            assert params[("path", "member_id")]["required"] is True, (path, method)


def test_filters_and_pagination_are_documented(schema):
    def query_params(path):
        return {p["name"] for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}

    assert {"card", "external_id", "email", "phone"} <= query_params("/api/pos/v1/members/lookup/")
    assert {"cursor", "page_size", "kind", "occurred_after", "occurred_before"} <= query_params(
        "/api/pos/v1/members/{member_id}/ledger/"
    )
    assert {
        "page",
        "page_size",
        "program",
        "status",
        "available_min",
        "available_max",
        "enrolled_after",
        "enrolled_before",
        "q",
    } <= query_params("/api/manage/v1/members/")


# --- The schema matches what the API actually sends -------------------------------------------------


def test_error_responses_are_documented_as_problem_json(schema):
    """Errors are sent as application/problem+json (RFC 9457); the schema must say so,
    or generated clients look for application/json and cannot decode them."""
    for path, method, operation in schema_operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                assert "application/problem+json" in response["content"], (path, method, status)


def test_writes_document_the_idempotency_key_header(schema):
    """DESIGN.md section 10: writes accept an Idempotency-Key header; tills are written against the schema."""
    for path, method, operation in schema_operations(schema):
        if method in WRITE_METHODS:
            headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "idempotency-key" in headers, (path, method)


def test_operations_document_the_errors_they_answer(schema):
    """Bad filter values answer 400 validation_error; every POS operation is throttled (429)."""
    for path, method, operation in schema_operations(schema):
        has_filters = any(
            p["in"] == "query" and p["name"] not in {"cursor", "page", "page_size"}
            for p in operation.get("parameters", [])
        )
        if has_filters:
            assert "400" in operation["responses"], (path, method)
        if path.startswith("/api/pos/"):
            assert "429" in operation["responses"], (path, method)


# --- Browsable docs --------------------------------------------------------------------------------------


def test_docs_page_is_served(db):
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    content = response.content.decode()
    assert "swagger" in content.lower()
    # The start-up script, which names the schema, is served apart (no inline script: Content-Security-Policy).
    assert 'src="/api/docs/?script="' in content
    assert "/api/schema/" in APIClient().get("/api/docs/?script=").content.decode()
