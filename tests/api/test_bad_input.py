"""Bad input that once answered 500 (or a wrong 4xx): every one is now a problem document with a stable code,
whoever sends it, and nothing is written."""

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.api.utils import ENROLL_URL, MANAGE, POS, assert_problem, db_state
from tests.factories import MemberFactory, StaffFactory, SuperuserFactory

API_PREFIXES = ("api/pos/", "api/manage/", "api/app/")


def _api_routes():
    """Every route of the three surfaces, with its path parameters filled in."""
    routes = []

    def walk(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith(API_PREFIXES):
                routes.append("/" + re.sub(r"<(?:\w+:)?\w+>", "1", route))

    walk(get_resolver().url_patterns, "")
    return sorted(routes)


@pytest.mark.parametrize("url", _api_routes())
def test_options_without_credentials_never_fails(db, url):
    # DRF's metadata built each write's serializer: an AssertionError on the views that parse with parse().
    response = APIClient().options(url)

    assert response.status_code in (200, 401), response.content
    if response.status_code == 401:
        assert_problem(response, 401, "not_authenticated")
    else:
        assert set(response.json()) == {"name", "description", "renders", "parses"}
        assert "OPTIONS" in response["Allow"]


@pytest.mark.parametrize("url", [url for url in _api_routes() if not url.startswith("/api/app/")])
def test_options_with_credentials_never_fails(pos_client, url, django_user_model):
    # The 29 write-only views of the POS and manager surfaces answered 500 to a signed-in OPTIONS.
    client = pos_client
    if url.startswith("/api/manage/"):
        client = APIClient()
        client.force_authenticate(SuperuserFactory())

    response = client.options(url)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"name", "description", "renders", "parses"}


def test_options_describes_a_write_only_view(pos_client):
    response = pos_client.options(f"{POS}/purchases/")

    assert response.status_code == 200, response.content
    assert response.json()["name"]
    assert response["Allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("endpoint", ["retention", "cohorts", "nps"])
@pytest.mark.parametrize("month", ["0000-01", "1969-12", "3000-01", "٢٠٢٦-01"])
def test_a_month_outside_the_supported_years_is_a_validation_error(program, endpoint, month):
    analyst = StaffFactory(permissions=["view_memberanalytics"], programs=[program])
    client = APIClient()
    client.force_authenticate(analyst)

    response = client.get(f"{MANAGE}/analytics/{endpoint}/", {"program": program.slug, "through": month})

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["through"]


def test_a_260_character_email_is_refused_before_the_database(pos_client):
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"email": "a" * 248 + "@example.com"}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["email"]
    assert db_state() == before


def _deep(depth: int) -> str:
    return '{"email": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_malformed(pos_client, depth):
    before = db_state()

    response = pos_client.post(ENROLL_URL, _deep(depth), content_type="application/json")

    body = assert_problem(response, 400, "malformed_request")
    assert "nested deeper than 32 levels" in body["detail"]
    assert db_state() == before


def test_json_nested_32_levels_is_parsed(pos_client):
    response = pos_client.post(ENROLL_URL, _deep(31), content_type="application/json")

    body = assert_problem(response, 400, "validation_error")  # parsed: the serializer refuses the list
    assert list(body["errors"]) == ["email"]


def test_a_body_over_the_limit_is_413(pos_client):
    before = db_state()
    body = json.dumps({"first_name": "x" * (10 * 1024 * 1024)})

    response = pos_client.post(ENROLL_URL, body, content_type="application/json")

    problem = assert_problem(response, 413, "request_too_large")
    assert problem["detail"] == "Send at most 1048576 bytes."
    assert db_state() == before


def test_the_body_limit_is_configurable(pos_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    too_large = pos_client.post(ENROLL_URL, {"first_name": "x" * 100}, format="json")
    small = pos_client.post(ENROLL_URL, {"email": "jana@example.com"}, format="json")

    assert_problem(too_large, 413, "request_too_large")
    assert small.status_code == 201, small.content


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_method_the_view_lacks_is_405_whatever_its_idempotency_key(pos_client, method):
    before = db_state()

    response = getattr(pos_client, method)(ENROLL_URL, {}, format="json", HTTP_IDEMPOTENCY_KEY="")

    assert_problem(response, 405, "method_not_allowed")
    assert db_state() == before


@pytest.mark.parametrize("key", ["", " leading", "trailing ", "é" * 10, "k" * 256])
def test_an_idempotency_key_outside_the_documented_pattern_is_refused(pos_client, key):
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"email": "jana@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert_problem(response, 400, "idempotency_key_invalid")
    assert db_state() == before


# --- Pagination parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": "one"},
        {"page_size": "null"},
        {"page_size": "0"},
        {"page_size": ""},
        {"page_size": "501"},
        {"page_size": "1.5"},
    ],
)
def test_page_parameters_outside_their_bounds_are_validation_errors(manage_client, program, params):
    MemberFactory(program=program)

    response = manage_client.get(f"{MANAGE}/members/", {"program": program.slug, **params})

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == list(params)


def test_page_parameters_within_bounds_page_the_list(manage_client, program):
    MemberFactory.create_batch(3, program=program)

    response = manage_client.get(f"{MANAGE}/members/", {"program": program.slug, "page": "2", "page_size": "2"})

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 3
    assert len(response.json()["results"]) == 1


def test_a_page_past_the_last_is_not_found(manage_client, program):
    response = manage_client.get(f"{MANAGE}/members/", {"program": program.slug, "page": "2"})

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("params", [{"page_size": "null"}, {"page_size": "0"}, {"page_size": "201"}])
def test_ledger_cursor_parameters_are_validated(pos_client, member, params):
    response = pos_client.get(f"{POS}/members/{member.pk}/ledger/", params)

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == list(params)


# --- Boolean filters ---------------------------------------------------------------------------------------


@pytest.fixture
def root_client(django_user_model):
    client = APIClient()
    client.force_authenticate(SuperuserFactory())
    return client


@pytest.mark.parametrize("url", [f"{MANAGE}/rules/", f"{MANAGE}/rewards/"])
@pytest.mark.parametrize("value", ["1", "yes", "True", "null"])
def test_a_boolean_filter_takes_only_true_or_false(root_client, program, url, value):
    # django-filter ignored anything else: the list came back unfiltered, as if the filter were not sent.
    response = root_client.get(url, {"program": program.slug, "is_active": value})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"is_active": ["Give true or false."]}


@pytest.mark.parametrize("value", ["true", "false"])
def test_a_boolean_filter_filters(root_client, program, value):
    response = root_client.get(f"{MANAGE}/rules/", {"program": program.slug, "is_active": value})

    assert response.status_code == 200, response.content


def test_the_schema_keeps_boolean_filters_boolean(db):
    schema = json.loads(APIClient().get("/api/schema/", {"format": "json"}).content)
    parameters = schema["paths"]["/api/manage/v1/webhooks/"]["get"]["parameters"]

    assert next(p for p in parameters if p["name"] == "active")["schema"] == {"type": "boolean"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"occurred_before": ""}, "occurred_before"),
        ({"member": ""}, "member"),
        ({"member": "1.5"}, "member"),
        ({"member": "9223372036854775808"}, "member"),
    ],
)
def test_empty_or_fractional_filter_values_are_validation_errors(root_client, program, params, field):
    # django-filter took an empty value for "no filter", and an id filter took 1.5.
    response = root_client.get(f"{MANAGE}/purchases/", {"program": program.slug, **params})

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == [field]


def test_an_empty_text_filter_is_no_filter(root_client, program):
    response = root_client.get(f"{MANAGE}/purchases/", {"program": program.slug, "external_id": ""})

    assert response.status_code == 200, response.content


def test_a_nul_in_the_query_string_is_a_validation_error(root_client, program):
    # The database refused it: DataError, a 500.
    response = root_client.get(f"{MANAGE}/rewards/?program=de%00mo")

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"non_field_errors": ["Null characters are not allowed."]}


def test_a_text_filter_over_100_characters_is_a_validation_error(root_client, program):
    response = root_client.get(f"{MANAGE}/purchases/", {"program": program.slug, "external_id": "x" * 101})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"external_id": ["Give at most 100 characters."]}


@pytest.mark.parametrize("name", ["page", "page_size"])
def test_a_page_number_of_thousands_of_digits_is_a_validation_error(db, name):
    # int() refuses more than 4,300 digits with a ValueError (a 500): the length is checked first.
    client = APIClient()
    client.force_authenticate(StaffFactory(is_superuser=True))

    response = client.get(f"{MANAGE}/rules/", {name: "9" * 5000})

    expected = "Give a whole number from 1 up to 500." if name == "page_size" else "Give a whole number from 1."
    assert assert_problem(response, 400, "validation_error")["errors"] == {name: [expected]}


@pytest.mark.parametrize(("method", "path"), [("get", "/members/{}/"), ("post", "/holds/{}/release/")])
def test_an_id_of_thousands_of_digits_is_not_found(pos_client, method, path):
    response = getattr(pos_client, method)(POS + path.format("9" * 5000))

    assert response.status_code == 404
