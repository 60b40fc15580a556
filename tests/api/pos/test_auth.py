"""Integration API: API-key authentication, tenant isolation and throttling on every endpoint."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from config.api.pos import ApiKeyThrottle
from loyalty.services.ledger import ledger_credit
from members.models import ApiKey
from members.services.api_keys import api_key_revoke
from tests.api.utils import ENROLL_URL, LOOKUP_URL, assert_problem, db_state, pos_ledger_url, pos_member_url
from tests.clients import key_client
from tests.factories import ApiKeyFactory, MemberFactory

ENDPOINTS = [
    pytest.param("post", lambda member: ENROLL_URL, {"email": "new@example.com"}, id="enroll"),
    pytest.param("get", lambda member: LOOKUP_URL, {"card": "400012345678"}, id="lookup"),
    pytest.param("get", lambda member: pos_member_url(member.pk), None, id="detail"),
    pytest.param("get", lambda member: pos_ledger_url(member.pk), None, id="ledger"),
]


@pytest.fixture
def target(program):
    member = MemberFactory(
        program=program,
        card="400012345678",
        external_id="SECRET-EXT-1",
        email="secret.person@example.com",
        phone="+420601234567",
        first_name="Secretfirst",
        last_name="Secretlast",
    )
    ledger_credit(member=member, amount=100)
    return member


def _call(client, method, url, data):
    if method == "post":
        return client.post(url, data, format="json")
    return client.get(url, data)


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
def test_without_credentials_is_not_authenticated(target, method, url, data):
    before = db_state()

    response = _call(APIClient(), method, url(target), data)

    body = assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert "secret" not in response.content.decode().lower()
    assert body["detail"]
    assert db_state() == before


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    [
        "Api-Key lk_deadbeef_notarealkey",
        "Api-Key not-even-the-format",
        "Api-Key ",
        "api-key lk_deadbeef_notarealkey",
    ],
)
def test_wrong_key_is_rejected(target, method, url, data, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    before = db_state()

    response = _call(client, method, url(target), data)

    assert_problem(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert db_state() == before


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
def test_other_scheme_is_not_authenticated(target, method, url, data):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer abc.def.ghi")

    response = _call(client, method, url(target), data)

    assert_problem(response, 401, "not_authenticated")


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
def test_key_with_a_tampered_secret_is_rejected(program, target, method, url, data):
    key = ApiKeyFactory(program=program, name="Till").plain
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key[:-2]}xx")
    before = db_state()

    response = _call(client, method, url(target), data)

    assert_problem(response, 401, "authentication_failed")
    assert db_state() == before


@pytest.mark.parametrize(("method", "url", "data"), ENDPOINTS)
def test_revoked_key_is_rejected(program, target, method, url, data):
    api_key = ApiKeyFactory(program=program, name="Till")
    key = api_key.plain
    client = key_client(key)
    assert client.get(pos_member_url(target.pk)).status_code == 200
    api_key_revoke(api_key=api_key)
    before = db_state()

    response = _call(client, method, url(target), data)

    assert_problem(response, 401, "authentication_failed")
    assert db_state() == before


def test_a_key_is_read_once_and_refused_as_soon_as_it_is_revoked(program, target):
    api_key = ApiKeyFactory(program=program, name="Till")
    key = api_key.plain
    client = key_client(key)
    assert client.get(pos_member_url(target.pk)).status_code == 200

    with CaptureQueriesContext(connection) as cached:
        assert client.get(pos_member_url(target.pk)).status_code == 200
    api_key_revoke(api_key=api_key)
    response = client.get(pos_member_url(target.pk))

    assert not [q for q in cached.captured_queries if "members_apikey" in q["sql"]]
    assert_problem(response, 401, "authentication_failed")


def test_a_valid_key_is_marked_as_used(program, target):
    api_key = ApiKeyFactory(program=program, name="Till")
    key = api_key.plain
    client = key_client(key)

    response = client.get(pos_member_url(target.pk))

    assert response.status_code == 200
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


# --- Tenant isolation --------------------------------------------------------------------


def _assert_no_leak(response, member):
    assert_problem(response, 404, "member_not_found")
    text = response.content.decode().lower()
    for secret in ("secret.person@example.com", "secretfirst", "secretlast", "secret-ext-1", "400012345678"):
        assert secret not in text
    assert '"balances"' not in text


def test_other_programs_key_cannot_read_member_by_id(other_pos_client, target):
    _assert_no_leak(other_pos_client.get(pos_member_url(target.pk)), target)


def test_other_programs_key_cannot_read_member_ledger(other_pos_client, target):
    _assert_no_leak(other_pos_client.get(pos_ledger_url(target.pk)), target)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card", "4000-1234-5678"),
        ("external_id", "SECRET-EXT-1"),
        ("email", "secret.person@example.com"),
        ("phone", "+420601234567"),
    ],
)
def test_other_programs_key_cannot_look_member_up(other_pos_client, target, field, value):
    _assert_no_leak(other_pos_client.get(LOOKUP_URL, {field: value}), target)


def test_other_programs_key_sees_its_own_member_with_the_same_card(other_pos_client, other_program, target):
    own = MemberFactory(program=other_program, card=target.card, email=target.email)

    response = other_pos_client.get(LOOKUP_URL, {"card": "4000-1234-5678"})

    assert response.status_code == 200
    assert response.json()["id"] == own.pk
    assert response.json()["balances"]["available"] == 0


def test_enrollment_goes_to_the_keys_program(other_pos_client, other_program, target):
    response = other_pos_client.post(ENROLL_URL, {"email": target.email}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["id"] != target.pk
    assert other_program.members.filter(email=target.email).count() == 1


# --- Throttling -----------------------------------------------------------------------------


def test_too_many_requests_are_throttled(monkeypatch, pos_client, target):
    monkeypatch.setattr(ApiKeyThrottle, "rate", "2/min", raising=False)
    for _ in range(2):
        assert pos_client.get(pos_member_url(target.pk)).status_code == 200
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"email": "late@example.com"}, format="json")

    assert_problem(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert db_state() == before


def test_throttling_counts_per_key(monkeypatch, pos_client, program, target):
    monkeypatch.setattr(ApiKeyThrottle, "rate", "1/min", raising=False)
    key = ApiKeyFactory(program=program, name="Till 2").plain
    second_till = key_client(key)
    assert pos_client.get(pos_member_url(target.pk)).status_code == 200
    assert pos_client.get(pos_member_url(target.pk)).status_code == 429

    assert second_till.get(pos_member_url(target.pk)).status_code == 200
