"""Bad requests on every write and read: problem+json with a stable code, never a 500, nothing written."""

import pytest

from tests.api.utils import (
    ENROLL_URL,
    LOOKUP_URL,
    adjust_url,
    assert_problem,
    db_state,
    manage_member_url,
    pos_ledger_url,
    pos_member_url,
)


@pytest.fixture
def write(request, pos_client, manage_client, funded):
    """(client, url) of each write endpoint: POS enroll and manager adjustments."""
    if request.param == "enroll":
        return pos_client, ENROLL_URL
    return manage_client, adjust_url(funded.pk)


WRITES = pytest.mark.parametrize("write", ["enroll", "adjust"], indirect=True)


@WRITES
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{bad", id="truncated"),
        pytest.param('{"points": 10, "reason": "x",}', id="trailing comma"),
        pytest.param("{'points': 10}", id="single quotes"),
        pytest.param('{"points": NaN, "reason": "x"}', id="NaN"),
        pytest.param('{"points": Infinity, "reason": "x"}', id="Infinity"),
        pytest.param(b"\xff\xfe{\x00", id="not utf-8"),
    ],
)
def test_malformed_json_is_a_malformed_request(write, raw):
    client, url = write
    before = db_state()

    response = client.post(url, data=raw, content_type="application/json")

    body = assert_problem(response, 400, "malformed_request")
    assert body["title"] == "The request body could not be parsed"
    assert "errors" not in body
    assert db_state() == before


@WRITES
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", '{"points": 10, "reason": "x", "email": "a@example.com"}'),
        ("application/x-www-form-urlencoded", "points=10&reason=x&email=a%40example.com"),
        ("application/xml", "<adjustment><points>10</points></adjustment>"),
        (
            "multipart/form-data; boundary=XyZ",
            '--XyZ\r\nContent-Disposition: form-data; name="points"\r\n\r\n10\r\n--XyZ--',
        ),
    ],
)
def test_other_content_types_are_unsupported(write, content_type, raw):
    client, url = write
    before = db_state()

    response = client.post(url, data=raw, content_type=content_type)

    body = assert_problem(response, 415, "unsupported_media_type")
    assert body["title"] == "Send the body as application/json"
    assert db_state() == before


@WRITES
def test_form_data_is_unsupported(write):
    client, url = write
    before = db_state()

    response = client.post(url, {"points": 10, "reason": "x", "email": "a@example.com"}, format="multipart")

    assert_problem(response, 415, "unsupported_media_type")
    assert db_state() == before


@WRITES
def test_empty_body_is_a_validation_error(write):
    client, url = write
    before = db_state()

    response = client.post(url, data="", content_type="application/json")

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"]
    assert db_state() == before


@WRITES
@pytest.mark.parametrize("raw", ["null", "[]", '"text"', "42", "true"])
def test_body_that_is_not_an_object_is_a_validation_error(write, raw):
    client, url = write
    before = db_state()

    response = client.post(url, data=raw, content_type="application/json")

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"]
    assert db_state() == before


@WRITES
def test_malformed_json_with_an_idempotency_key_leaves_no_record(write):
    client, url = write
    before = db_state()

    response = client.post(url, data="{bad", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert_problem(response, 400, "malformed_request")
    assert db_state() == before


def test_validation_error_document(pos_client):
    response = pos_client.post(ENROLL_URL, {"email": "nope", "birth_date": "soon"}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert body == {
        "type": "urn:loyalty:problem:validation_error",
        "title": "The request is not valid",
        "status": 400,
        "detail": "One or more fields are not valid.",
        "code": "validation_error",
        "errors": {"email": ["Enter a valid email address."], "birth_date": [body["errors"]["birth_date"][0]]},
    }
    assert "format" in body["errors"]["birth_date"][0].lower()


def test_domain_error_document_carries_its_details(manage_client, funded):
    response = manage_client.post(adjust_url(funded.pk), {"points": -101, "reason": "x"}, format="json")

    assert assert_problem(response, 422, "insufficient_points") == {
        "type": "urn:loyalty:problem:insufficient_points",
        "title": "Not enough available points",
        "status": 422,
        "detail": "101 points requested, 100 available.",
        "code": "insufficient_points",
        "available": 100,
        "requested": 101,
    }


POS_WRONG_METHODS = [
    ("get", ENROLL_URL),
    ("put", ENROLL_URL),
    ("patch", ENROLL_URL),
    ("delete", ENROLL_URL),
    ("post", LOOKUP_URL),
    ("delete", LOOKUP_URL),
    ("post", "member"),
    ("put", "member"),
    ("patch", "member"),
    ("delete", "member"),
    ("post", "ledger"),
    ("delete", "ledger"),
]


@pytest.mark.parametrize(("method", "url"), POS_WRONG_METHODS)
def test_pos_wrong_method_is_not_allowed(pos_client, funded, method, url):
    url = {"member": pos_member_url(funded.pk), "ledger": pos_ledger_url(funded.pk)}.get(url, url)
    before = db_state()

    response = getattr(pos_client, method)(url, {"email": "x@example.com"}, format="json")

    body = assert_problem(response, 405, "method_not_allowed")
    assert method.upper() in body["detail"]
    assert db_state() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/manage/v1/members/"),
        ("delete", "/api/manage/v1/members/"),
        ("put", "member"),
        ("delete", "member"),
    ],
)
def test_manage_wrong_method_is_not_allowed(manage_client, funded, method, url):
    url = manage_member_url(funded.pk) if url == "member" else url
    before = db_state()

    response = getattr(manage_client, method)(url, {"status": "closed"}, format="json")

    assert_problem(response, 405, "method_not_allowed")
    assert db_state() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/pos/v1/nothing-here/",
        "/api/pos/v1/members/1/nothing/",
        "/api/manage/v1/nothing-here/",
        "/api/pos/v2/members/",
    ],
)
def test_unknown_api_path_is_a_problem_document(pos_client, path):
    response = pos_client.get(path)

    assert_problem(response, 404, "not_found")


def test_post_to_an_unknown_api_path_is_a_problem_document(pos_client):
    response = pos_client.post("/api/pos/v1/purchases-nope/", {"total": "1.00"}, format="json")

    assert_problem(response, 404, "not_found")


def test_unsatisfiable_accept_header_is_a_problem_document(pos_client, funded):
    response = pos_client.get(pos_member_url(funded.pk), HTTP_ACCEPT="text/html")

    assert_problem(response, 406, "not_acceptable")


def test_accept_header_listing_json_and_problem_json_is_served(pos_client, funded):
    ok = pos_client.get(pos_member_url(funded.pk), HTTP_ACCEPT="application/json, application/problem+json")
    missing = pos_client.get(pos_member_url(999999), HTTP_ACCEPT="application/json, application/problem+json")

    assert ok.status_code == 200
    assert ok["Content-Type"] == "application/json"
    assert_problem(missing, 404, "member_not_found")
