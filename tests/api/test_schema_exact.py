"""The schema promises what the server does (what Schemathesis found it promising otherwise): nested error maps,
exact decimal patterns, the Idempotency-Key's limits, the errors every write and list may answer, oneOf."""

import re

import pytest

from tests.api.utils import schema_operations

WRITE_METHODS = {"post", "put", "patch", "delete"}


def _decimal_patterns(schema):
    """(component, property, pattern) of every decimal in a request body."""
    for name, component in schema["components"]["schemas"].items():
        for prop, spec in component.get("properties", {}).items():
            if spec.get("format") == "decimal":
                yield name, prop, spec["pattern"]


def test_problem_errors_may_nest(schema):
    components = schema["components"]["schemas"]
    errors = components["Problem"]["properties"]["errors"]
    field_errors = components["FieldErrors"]["anyOf"]

    assert errors["additionalProperties"] == {"$ref": "#/components/schemas/FieldErrors"}
    assert {"type": "array", "items": {"type": "string"}} in field_errors
    assert {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/FieldErrors"}} in field_errors


def test_decimal_patterns_accept_no_empty_sign_or_point(schema):
    patterns = list(_decimal_patterns(schema))

    assert len(patterns) > 10
    for name, prop, pattern in patterns:
        for text in ("", "-", ".", "-.", "1.2.3", "1e3"):
            assert not re.fullmatch(pattern, text), (name, prop, text)
        assert re.fullmatch(pattern, "1") or re.fullmatch(pattern, "1.5"), (name, prop)


def test_decimals_that_refuse_negatives_say_so(schema):
    line = schema["components"]["schemas"]["PurchaseLineInputRequest"]["properties"]

    assert not re.fullmatch(line["amount"]["pattern"], "-1.00")
    assert re.fullmatch(line["amount"]["pattern"], "0")
    assert re.fullmatch(line["amount"]["pattern"], "999999999999.99")
    # Any number of whole digits: past 999999999999.99 the service answers 422 amount_too_large (docs/api.md).
    assert re.fullmatch(line["amount"]["pattern"], "1000000000000")
    assert not re.fullmatch(line["amount"]["pattern"], "1.001")
    assert not re.fullmatch(line["quantity"]["pattern"], "0")  # minimum 0.001
    assert not re.fullmatch(line["quantity"]["pattern"], "0.000")
    assert re.fullmatch(line["quantity"]["pattern"], "0.001")
    assert not re.fullmatch(line["quantity"]["pattern"], "0.0001")


@pytest.mark.parametrize(("text", "accepted"), [("1", True), ("4.9", True), ("5", True), ("5.0", True), ("5.1", False)])
def test_single_digit_bounds_are_spelled_out(schema, text, accepted):
    grid = schema["components"]["schemas"]["SegmentInputRequest"]["properties"]

    assert bool(re.fullmatch(grid["fm_min"]["pattern"], text)) is accepted


def test_the_idempotency_key_has_its_limits(schema):
    for path, method, operation in schema_operations(schema):
        if path.startswith("/api/app/v1/auth/"):
            continue  # sign-in and sign-out store nothing under the key: any value is accepted and ignored
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "Idempotency-Key":
                assert parameter["schema"]["maxLength"] == 255, (path, method)
                assert parameter["schema"]["minLength"] == 1, (path, method)
                assert parameter["schema"]["pattern"] == r"^[!-~]([ -~]{0,253}[!-~])?$", (path, method)


def test_idempotent_writes_document_key_reuse_and_size(schema):
    writes = [
        (path, method, operation)
        for path, method, operation in schema_operations(schema)
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        and not path.startswith("/api/app/v1/auth/")
    ]

    assert len(writes) > 30
    for path, method, operation in writes:
        assert {"400", "413", "422"} <= set(operation["responses"]), (path, method)


def test_paginated_lists_document_bad_and_missing_pages(schema):
    lists = [
        (path, operation)
        for path, method, operation in schema_operations(schema)
        if any(p["name"] == "page_size" for p in operation.get("parameters", []))
    ]

    assert len(lists) > 10
    for path, operation in lists:
        assert {"400", "404"} <= set(operation["responses"]), path
        bounds = {p["name"]: p["schema"] for p in operation["parameters"] if p["name"] in ("page", "page_size")}
        assert bounds["page_size"]["minimum"] == 1, path
        assert bounds["page_size"]["maximum"] in (200, 500), path
        assert bounds.get("page", {"minimum": 1})["minimum"] == 1, path
        assert bounds.get("page", {"maximum": 2**63 - 1})["maximum"] == 2**63 - 1, path  # past it: 400


def test_a_member_is_named_in_exactly_one_way(schema):
    ref = schema["components"]["schemas"]["MemberRefInputRequest"]

    branches = ref["oneOf"]
    assert [branch["required"] for branch in branches] == [["id"], ["card"], ["external_id"], ["email"], ["phone"]]
    assert branches[1]["properties"]["email"] == {"not": {}}
    assert all(branch["additionalProperties"] is False for branch in branches)  # refused: 400 unknown_field


def test_filter_ids_are_bounded(schema):
    parameters = schema["paths"]["/api/manage/v1/purchases/"]["get"]["parameters"]
    member = next(p for p in parameters if p["name"] == "member")

    assert member["schema"]["minimum"] == 1


def test_either_or_bodies_say_which_fields_are_needed(schema):
    components = schema["components"]["schemas"]

    assert [b["required"] for b in components["LoginInputRequest"]["oneOf"]] == [["email"], ["card"]]
    assert [b["required"] for b in components["ReturnInRequest"]["oneOf"]] == [["lines"], ["amount"]]
    assert components["ReturnInRequest"]["oneOf"][0]["properties"]["lines"] == {"minItems": 1}
    enroll = components["MemberEnrollInputRequest"]["anyOf"]
    assert [b["required"] for b in enroll] == [["external_id"], ["email"], ["phone"], ["card"]]
    assert enroll[1]["properties"]["email"] == {"minLength": 1}  # a blank email names nobody
    assert components["PatchedProfileUpdateInputRequest"]["minProperties"] == 1


def test_inputs_that_refuse_unknown_fields_say_so(schema):
    components = schema["components"]["schemas"]

    assert components["PatchedProfileUpdateInputRequest"]["additionalProperties"] is False
    assert components["PatchedTierInputRequest"]["additionalProperties"] is False


def test_text_fields_refuse_nul_characters(schema):
    name = schema["components"]["schemas"]["PatchedTierInputRequest"]["properties"]["name"]

    assert name["pattern"] == "^[^\\x00]*[^\\s\\x00][^\\x00]*$"  # required: not blank either
    assert not re.fullmatch(name["pattern"], "a\x00b")
    assert not re.fullmatch(name["pattern"], "  ")


def test_lists_that_refuse_to_be_empty_say_so(schema):
    segments = schema["components"]["schemas"]["GridInputRequest"]["properties"]["segments"]

    assert segments["minItems"] == 1
