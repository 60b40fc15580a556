"""Integration API: enroll a member (POST members/)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.models import Account
from members.identifiers import CODE_ALPHABET
from members.models import Member
from tests.api.utils import ENROLL_URL, ZERO_BALANCES, assert_problem, balances_without_until, db_state
from tests.factories import MemberFactory


def test_enroll_creates_member_and_empty_account(pos_client, program):
    # when
    response = pos_client.post(
        ENROLL_URL,
        {
            "external_id": "  SHOP-991 ",
            "card": "1234-5678-9012",
            "email": "Jana.Novak@Example.COM",
            "phone": "+420 601 234 567",
            "first_name": " Jana ",
            "last_name": "Nováková",
            "birth_date": "1990-04-01",
            "acquisition_channel": "store",
            "consent_email": True,
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    member = Member.objects.get()
    assert body["id"] == member.pk
    assert body["card"] == "1234-5678-9012"
    assert body["external_id"] == "SHOP-991"
    assert body["email"] == "jana.novak@example.com"
    assert body["phone"] == "+420601234567"
    assert body["first_name"] == "Jana"
    assert body["last_name"] == "Nováková"
    assert body["birth_date"] == "1990-04-01"
    assert body["status"] == "active"
    assert body["acquisition_channel"] == "store"
    assert (body["consent_email"], body["consent_sms"], body["consent_push"]) == (True, False, False)
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{8}}", body["referral_code"])
    assert balances_without_until(body) == ZERO_BALANCES
    # the database holds the normalised member and an empty account
    assert member.program == program
    assert (member.card, member.external_id, member.email, member.phone) == (
        "123456789012",
        "SHOP-991",
        "jana.novak@example.com",
        "+420601234567",
    )
    assert member.referral_code == body["referral_code"]
    assert member.referred_by is None
    account = Account.objects.get(pk=member.pk)
    assert account.program == program
    assert (account.available, account.pending, account.debt, account.earned) == (0, 0, 0, 0)


def test_enroll_generates_a_card_when_none_is_given(pos_client):
    response = pos_client.post(ENROLL_URL, {"email": "new@example.com"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", body["card"])
    member = Member.objects.get(pk=body["id"])
    assert member.card == body["card"].replace("-", "")
    assert len(member.card) == 12


def test_enroll_generates_distinct_cards(pos_client):
    cards = {pos_client.post(ENROLL_URL, {"external_id": f"C-{n}"}, format="json").json()["card"] for n in range(5)}

    assert len(cards) == 5
    assert Member.objects.count() == 5


def test_enroll_accepts_each_identifier_alone(pos_client):
    for body in ({"external_id": "E-1"}, {"email": "a@example.com"}, {"phone": "+420777000111"}, {"card": "ABCD1234"}):
        response = pos_client.post(ENROLL_URL, body, format="json")
        assert response.status_code == 201, (body, response.content)

    assert Member.objects.count() == 4
    assert Member.objects.filter(card="ABCD1234").exists()


def test_enroll_with_referral_code_links_the_referrer(pos_client, program):
    referrer = MemberFactory(program=program, referral_code="QRV7QY37")

    response = pos_client.post(
        ENROLL_URL, {"email": "friend@example.com", "referral_code": " qrv7qy37 "}, format="json"
    )

    assert response.status_code == 201, response.content
    member = Member.objects.get(pk=response.json()["id"])
    assert member.referred_by == referrer
    # the new member gets a referral code of their own
    assert member.referral_code != referrer.referral_code


@pytest.mark.parametrize("whose", ["nobody", "other_program"])
def test_enroll_with_unknown_referral_code_is_rejected(pos_client, other_program, whose):
    code = "QRV7QY37"
    if whose == "other_program":
        MemberFactory(program=other_program, referral_code=code)
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"email": "friend@example.com", "referral_code": code}, format="json")

    assert_problem(response, 400, "referral_code_unknown")
    assert db_state() == before


@pytest.mark.parametrize(
    ("field", "existing", "given"),
    [
        ("external_id", "SHOP-1", "SHOP-1"),
        ("email", "jana@example.com", "JANA@Example.com"),
        ("card", "400012345678", "4000-1234-5678"),
        ("phone", "+420601234567", "+420 601 234 567"),
    ],
)
def test_enroll_duplicate_identifier_is_a_conflict(pos_client, program, field, existing, given):
    MemberFactory(program=program, **{field: existing})
    before = db_state()

    response = pos_client.post(ENROLL_URL, {field: given, "first_name": "Second"}, format="json")

    body = assert_problem(response, 409, "member_already_exists")
    assert body["fields"] == [field]
    assert db_state() == before


def test_enroll_duplicate_reports_every_clashing_field(pos_client, program):
    MemberFactory(program=program, external_id="SHOP-1", email="jana@example.com")
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"external_id": "SHOP-1", "email": "jana@example.com"}, format="json")

    body = assert_problem(response, 409, "member_already_exists")
    assert sorted(body["fields"]) == ["email", "external_id"]
    assert db_state() == before


def test_enroll_same_details_in_another_program_is_fine(pos_client, other_program):
    MemberFactory(program=other_program, external_id="SHOP-1", email="jana@example.com", card="400012345678")

    response = pos_client.post(
        ENROLL_URL, {"external_id": "SHOP-1", "email": "jana@example.com", "card": "400012345678"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert Member.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"first_name": "Jana", "last_name": "Novak"}, "non_field_errors"),
        ({"external_id": "   "}, "non_field_errors"),
        ({"email": ""}, "non_field_errors"),
        ({"email": "not-an-email"}, "email"),
        ({"email": 42}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"card": "12"}, "card"),
        ({"card": "1234_5678"}, "card"),
        ({"card": "1" * 33}, "card"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"email": "a@example.com", "first_name": "x" * 101}, "first_name"),
        ({"email": "a@example.com", "birth_date": "1990-02-30"}, "birth_date"),
        ({"email": "a@example.com", "birth_date": "yesterday"}, "birth_date"),
        ({"email": "a@example.com", "referral_code": "X" * 17}, "referral_code"),
        ({"email": "a@example.com", "consent_email": "maybe"}, "consent_email"),
        ({"email": "a@example.com", "acquisition_channel": "x" * 65}, "acquisition_channel"),
    ],
)
def test_enroll_invalid_input_is_a_validation_error(pos_client, body, field):
    before = db_state()

    response = pos_client.post(ENROLL_URL, body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"], problem
    assert all(isinstance(message, str) and message for message in problem["errors"][field])
    assert db_state() == before


def test_enroll_without_identifier_explains_what_is_missing(pos_client):
    response = pos_client.post(ENROLL_URL, {"first_name": "Jana"}, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {
        "non_field_errors": ["Give at least one of external_id, email, phone or card."],
    }
    assert Member.objects.count() == 0


def test_enroll_birth_date_in_the_future_is_rejected(pos_client):
    tomorrow = timezone.localdate() + timedelta(days=1)

    response = pos_client.post(
        ENROLL_URL, {"email": "a@example.com", "birth_date": tomorrow.isoformat()}, format="json"
    )

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {"birth_date": ["The birth date cannot be in the future."]}
    assert Member.objects.count() == 0


def test_enroll_birth_date_today_is_accepted(pos_client):
    today = timezone.localdate().isoformat()

    response = pos_client.post(ENROLL_URL, {"email": "a@example.com", "birth_date": today}, format="json")

    assert response.status_code == 201, response.content
    assert Member.objects.get().birth_date.isoformat() == today


def test_enroll_refuses_server_owned_fields(pos_client, program, other_program):
    other = MemberFactory(program=program)
    before = Member.objects.count()

    response = pos_client.post(
        ENROLL_URL,
        {
            "email": "a@example.com",
            "id": 99999,
            "status": "closed",
            "program": other_program.pk,
            "referred_by": other.pk,
            "balances": {"available": 1000},
            "referral_code_own": "ZZZZ",
        },
        format="json",
    )

    problem = assert_problem(response, 400, "unknown_field")
    assert set(problem["errors"]) == {"id", "status", "program", "referred_by", "balances", "referral_code_own"}
    assert Member.objects.count() == before


@pytest.mark.parametrize("card", ["----", "- - -"])
def test_enroll_card_without_any_letter_or_digit_is_rejected(pos_client, card):
    """A card of only separators normalises to "": such a member could never be found by card,
    and the next one would collide with it on the unique (program, card) constraint."""
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"card": card}, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert "card" in problem["errors"]
    assert db_state() == before


@pytest.mark.parametrize("phone", ["-----", "(((())))", "+ . / -"])
def test_enroll_phone_without_digits_is_rejected(pos_client, phone):
    """A phone without digits normalises to "": the member is stored with phone "" and the
    next such enrollment fails with a misleading 409."""
    before = db_state()

    response = pos_client.post(ENROLL_URL, {"phone": phone}, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert "phone" in problem["errors"]
    assert db_state() == before
