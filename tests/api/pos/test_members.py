"""Integration API: member lookup and member detail with balances."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from loyalty.models import EntryKind
from loyalty.services.ledger import ledger_credit, ledger_debit
from tests.api.utils import (
    ENROLL_URL,
    LOOKUP_URL,
    ZERO_BALANCES,
    assert_problem,
    balances_without_until,
    pos_member_url,
)
from tests.clients import pos_client_for
from tests.factories import MemberFactory

# --- Lookup ----------------------------------------------------------------------------


@pytest.fixture
def known_member(program):
    return MemberFactory(
        program=program,
        card="400012345678",
        external_id="CUST-77",
        email="jana@example.com",
        phone="+420601234567",
        first_name="Jana",
        last_name="Novak",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card", "4000-1234-5678"),
        ("card", "400012345678"),
        ("card", "4000 1234 5678"),
        ("external_id", "CUST-77"),
        ("email", "jana@example.com"),
        ("email", "JANA@Example.COM"),
        ("email", " jana@example.com "),
        ("phone", "+420601234567"),
        ("phone", "+420 601 234 567"),
    ],
)
def test_lookup_finds_the_member(pos_client, known_member, field, value):
    MemberFactory(program=known_member.program)  # a decoy

    response = pos_client.get(LOOKUP_URL, {field: value})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == known_member.pk
    assert body["card"] == "4000-1234-5678"
    assert body["external_id"] == "CUST-77"
    assert body["email"] == "jana@example.com"
    assert body["phone"] == "+420601234567"
    assert (body["first_name"], body["last_name"]) == ("Jana", "Novak")
    assert set(body["balances"]) >= {"available", "pending", "debt", "expiring_soon"}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"card": "400012345678", "email": "jana@example.com"},
        {"external_id": "CUST-77", "phone": "+420601234567"},
        {"name": "Jana"},
    ],
)
def test_lookup_needs_exactly_one_identifier(pos_client, known_member, params):
    response = pos_client.get(LOOKUP_URL, params)

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {
        "non_field_errors": ["Give exactly one of card, external_id, email or phone."],
    }


@pytest.mark.parametrize("field", ["card", "external_id", "email", "phone"])
def test_lookup_blank_value_is_a_validation_error(pos_client, known_member, field):
    response = pos_client.get(LOOKUP_URL, {field: ""})

    # DRF drops blank optional query parameters, so this reads as "no identifier given"
    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {
        "non_field_errors": ["Give exactly one of card, external_id, email or phone."],
    }


def test_lookup_ignores_a_blank_second_parameter(pos_client, known_member):
    response = pos_client.get(LOOKUP_URL, {"card": "", "email": "jana@example.com"})

    assert response.status_code == 200, response.content
    assert response.json()["id"] == known_member.pk


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card", "9999-9999-9999"),
        ("card", "----"),
        ("external_id", "CUST-78"),
        ("external_id", "cust-77x"),
        ("email", "nobody@example.com"),
        ("phone", "+420601234568"),
    ],
)
def test_lookup_unknown_member_is_not_found(pos_client, known_member, field, value):
    response = pos_client.get(LOOKUP_URL, {field: value})

    body = assert_problem(response, 404, "member_not_found")
    assert "jana" not in response.content.decode().lower()
    assert body["detail"] == "No such member in this program"


# --- Detail and balances ------------------------------------------------------------------


def test_member_detail_of_a_new_member(pos_client, program):
    member_id = pos_client.post(ENROLL_URL, {"email": "a@example.com", "first_name": "Jana"}, format="json").json()[
        "id"
    ]

    response = pos_client.get(pos_member_url(member_id))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == member_id
    assert body["email"] == "a@example.com"
    assert body["first_name"] == "Jana"
    assert body["status"] == "active"
    assert balances_without_until(body) == ZERO_BALANCES


def test_member_detail_without_an_account_shows_zero_balances(pos_client, member):
    response = pos_client.get(pos_member_url(member.pk))

    assert response.status_code == 200, response.content
    assert balances_without_until(response.json()) == ZERO_BALANCES


def test_member_detail_balances_after_credits_debits_and_expiry(expiring_program):
    # given: a program whose points expire 10 days after earning, warned 30 days ahead
    member = MemberFactory(program=expiring_program)
    now = timezone.now()
    ledger_credit(member=member, amount=100, occurred_at=now - timedelta(days=20), expires_at=now - timedelta(days=1))
    ledger_credit(member=member, amount=50)  # expires in 10 days: within the warning window
    ledger_credit(member=member, amount=30, expires_at=None)  # never expires
    ledger_credit(member=member, amount=40, available_at=now + timedelta(days=14), expires_at=None)  # pending
    # a redemption expires the overdue lot first, then spends the soonest-expiring points
    ledger_debit(member=member, amount=20, kind=EntryKind.REDEEM)
    client = pos_client_for(expiring_program)

    # when
    response = client.get(pos_member_url(member.pk))

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert balances_without_until(body) == {
        "available": 60,
        "pending": 40,
        "debt": 0,
        "expiring_soon": 30,
        "earned": 220,
        "redeemed": 20,
        "expired": 100,
    }
    until = body["balances"]["expiring_soon_until"]
    assert until is not None
    window = datetime.fromisoformat(until.replace("Z", "+00:00")) - timezone.now()
    assert timedelta(days=29, hours=23) < window <= timedelta(days=30)


def test_member_detail_shows_debt(pos_client, member):
    ledger_credit(member=member, amount=30)
    ledger_debit(member=member, amount=50, kind=EntryKind.REVERSE, allow_debt=True)

    response = pos_client.get(pos_member_url(member.pk))

    assert response.status_code == 200, response.content
    balances = response.json()["balances"]
    assert (balances["available"], balances["pending"], balances["debt"]) == (0, 0, 20)
    assert (balances["earned"], balances["redeemed"], balances["expired"]) == (30, 0, 0)


def test_member_detail_expiring_soon_is_zero_without_expiry_policy(pos_client, member):
    ledger_credit(member=member, amount=70)

    balances = pos_client.get(pos_member_url(member.pk)).json()["balances"]

    assert (balances["available"], balances["expiring_soon"], balances["earned"]) == (70, 0, 70)


@pytest.mark.parametrize("member_id", ["999999", "0", "abc", "1.0", "-1", "99999999999999999999999"])
def test_member_detail_unknown_id_is_not_found(pos_client, member, member_id):
    response = pos_client.get(pos_member_url(member_id))

    assert_problem(response, 404, "member_not_found")


@pytest.mark.parametrize("member_id", ["%C2%B2", "%C2%B9%C2%B2"])
def test_member_detail_unicode_digit_id_is_not_found(pos_client, member, member_id):
    """'²'.isdigit() is true but int('²') raises: the id check in member_get must not crash."""
    response = pos_client.get(pos_member_url(member_id))

    assert_problem(response, 404, "member_not_found")
