import json
from datetime import UTC, date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from loyalty.models import Account, Entry
from loyalty.services.enrollment import member_enroll
from loyalty.services.ledger import ledger_credit
from members.exceptions import InvalidStatusChange, MemberAlreadyExists, ReferralCodeUnknown
from members.expiry import ExpiryPolicy, expiry_date
from members.exports import member_export
from members.models import ApiKey, MemberStatus, Program
from members.services.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from members.services.gdpr import member_erase
from members.services.members import member_close, member_reactivate, member_suspend, member_update

PRAGUE = ZoneInfo("Europe/Prague")


@pytest.mark.parametrize(
    ("policy", "period", "earned", "expected"),
    [
        (ExpiryPolicy.NEVER, 12, datetime(2026, 3, 15, 10, tzinfo=UTC), None),
        (ExpiryPolicy.DAYS, 90, datetime(2026, 3, 15, 10, tzinfo=UTC), datetime(2026, 6, 13, 10, tzinfo=UTC)),
        (ExpiryPolicy.MONTH_END, 12, datetime(2026, 3, 15, 10, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=PRAGUE)),
        (ExpiryPolicy.MONTH_END, 1, datetime(2026, 12, 31, 22, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=PRAGUE)),
        (ExpiryPolicy.MONTH_END, 1, datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=PRAGUE)),
        (ExpiryPolicy.YEAR_END, 1, datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=PRAGUE)),
        # 31 Dec 23:30 UTC is already 1 Jan in Prague: the local date decides.
        (ExpiryPolicy.YEAR_END, 1, datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=PRAGUE)),
    ],
)
def test_expiry_policies(policy, period, earned, expected):
    assert expiry_date(policy=policy, period=period, earned_at=earned, tz=PRAGUE) == expected


def test_enroll_normalises_and_generates_card_and_referral_code(program):
    member = member_enroll(program=program, external_id=" C-1 ", email=" Jana@Example.COM ", phone="+420 777-123 456")

    assert (member.external_id, member.email, member.phone) == ("C-1", "jana@example.com", "+420777123456")
    assert len(member.card) == 12 and member.card.isdigit()
    assert len(member.referral_code) == 8
    assert Account.objects.get(pk=member.pk).available == 0


def test_enroll_with_referral_links_the_referrer(program):
    referrer = member_enroll(program=program, external_id="A")
    member = member_enroll(program=program, external_id="B", referral_code=referrer.referral_code.lower())
    assert member.referred_by == referrer
    with pytest.raises(ReferralCodeUnknown):
        member_enroll(program=program, external_id="C", referral_code="NOPE1234")


def test_identifiers_are_unique_per_program_only(program, other_program):
    member_enroll(program=program, external_id="X1", email="a@example.com")
    with pytest.raises(MemberAlreadyExists) as error:
        member_enroll(program=program, external_id="X2", email="A@example.com")
    assert error.value.extra == {"fields": ["email"]}
    assert member_enroll(program=other_program, external_id="X1", email="a@example.com").pk


def test_status_changes(member):
    member_suspend(member=member)
    assert member.status == MemberStatus.SUSPENDED
    member_reactivate(member=member)
    member_close(member=member)
    assert member.status == MemberStatus.CLOSED
    with pytest.raises(InvalidStatusChange):
        member_reactivate(member=member)


def test_update_checks_uniqueness(program):
    first = member_enroll(program=program, email="one@example.com")
    second = member_enroll(program=program, email="two@example.com")
    with pytest.raises(MemberAlreadyExists):
        member_update(member=second, email="ONE@example.com")
    member_update(member=second, first_name="Eva", phone="777 000 111")
    second.refresh_from_db()
    assert (second.first_name, second.phone, first.email) == ("Eva", "777000111", "one@example.com")


def test_export_contains_personal_data_and_ledger(member):
    ledger_credit(member=member, amount=42)

    data = member_export(member=member)

    assert data["member"]["email"] == member.email
    assert data["ledger"]["balances"]["available"] == 42
    assert [e["points"] for e in data["ledger"]["entries"]] == [42]
    json.dumps(data)  # the export is plain JSON


def test_erase_anonymises_and_keeps_the_books(member):
    ledger_credit(member=member, amount=42)

    member_erase(member=member)
    member.refresh_from_db()

    assert (member.email, member.phone, member.first_name, member.external_id, member.birth_date) == (
        None,
        None,
        "",
        None,
        None,
    )
    assert member.status == MemberStatus.CLOSED and member.erased_at is not None
    assert Entry.objects.get(member=member).amount == 42
    assert Account.objects.get(pk=member.pk).available == 42


def test_api_keys_are_hashed_and_revocable(program):
    api_key, plain = api_key_create(program=program, name="Till")

    assert plain not in api_key.key_hash and api_key.key_hash == ApiKey.objects.get().key_hash
    assert api_key_authenticate(plain) == api_key
    assert api_key_authenticate(plain + "x") is None
    assert api_key_authenticate("garbage") is None
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(plain) is None


def test_an_authenticated_api_key_is_cached_until_revoked(program, django_assert_num_queries):
    api_key, plain = api_key_create(program=program, name="Till")
    with django_assert_num_queries(2):  # the key and its program; last_used_at
        assert api_key_authenticate(plain) == api_key

    with django_assert_num_queries(0):
        cached = api_key_authenticate(plain)

    assert (cached, cached.program, cached.last_used_at) == (api_key, program, ApiKey.objects.get().last_used_at)
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(plain) is None


def test_a_cached_api_key_is_still_touched_once_a_minute(program):
    api_key, plain = api_key_create(program=program, name="Till")
    api_key_authenticate(plain)
    first = ApiKey.objects.get().last_used_at

    api_key_authenticate(plain)  # cached, used less than a minute ago: nothing to write
    assert ApiKey.objects.get().last_used_at == first
    later = first + timedelta(minutes=2)
    with mock.patch("django.utils.timezone.now", return_value=later):
        api_key_authenticate(plain)

    assert ApiKey.objects.get().last_used_at == later


def test_api_key_cache_can_be_turned_off(program, settings, django_assert_num_queries):
    settings.API_KEY_CACHE_SECONDS = 0
    api_key, plain = api_key_create(program=program, name="Till")
    api_key_authenticate(plain)

    with django_assert_num_queries(1):
        assert api_key_authenticate(plain) == api_key


def test_create_program_and_api_key_commands(db, capsys):
    call_command(
        "create_program",
        "acme",
        "--name",
        "Acme",
        "--currency",
        "czk",
        "--timezone",
        "Europe/Prague",
        "--expiry-policy",
        "month_end",
        "--expiry-period",
        "6",
        "--pending-days",
        "14",
    )
    program = Program.objects.get(slug="acme")
    assert (program.currency, program.expiry_policy, program.expiry_period, program.pending_days) == (
        "CZK",
        "month_end",
        6,
        14,
    )
    capsys.readouterr()

    call_command("create_api_key", "--program", "acme", "--name", "Tills")
    plain = capsys.readouterr().out.strip()
    assert api_key_authenticate(plain).program == program

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_program", "acme", "--name", "Again", "--currency", "EUR")
    with pytest.raises(CommandError, match="currency"):
        call_command("create_program", "bad", "--name", "Bad", "--currency", "EURO")
    with pytest.raises(CommandError, match="No program"):
        call_command("create_api_key", "--program", "missing")


def test_birth_date_and_enrolled_at_are_kept(program):
    member = member_enroll(
        program=program,
        email="b@example.com",
        birth_date=date(1990, 5, 17),
        enrolled_at=datetime(2025, 1, 2, tzinfo=UTC),
    )
    assert (member.birth_date, member.enrolled_at) == (date(1990, 5, 17), datetime(2025, 1, 2, tzinfo=UTC))
    assert member.enrolled_at + timedelta(days=1) > member.enrolled_at
