"""Manager API: manual point adjustments (POST members/{id}/adjustments/)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.models import Account, Allocation, Entry, EntryKind, Lot
from loyalty.services.ledger import ledger_credit
from members.services.members import member_suspend
from tests.api.utils import adjust_url, assert_problem, db_state
from tests.clients import staff_client
from tests.factories import MemberFactory, SuperuserFactory


def _account(member):
    account = Account.objects.get(pk=member.pk)
    return {
        "available": account.available,
        "pending": account.pending,
        "debt": account.debt,
        "earned": account.earned,
        "redeemed": account.redeemed,
        "expired": account.expired,
    }


def test_adding_points(manage_client, manager, funded):
    # when
    response = manage_client.post(adjust_url(funded.pk), {"points": 40, "reason": "  Goodwill  "}, format="json")

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    entry = Entry.objects.get(member=funded, kind=EntryKind.ADJUST)
    assert (entry.amount, entry.actor, entry.reason, entry.uncovered) == (40, manager, "Goodwill", 0)
    assert entry.key is None
    assert Lot.objects.get(entry=entry).remaining == 40
    assert body["entry"]["id"] == entry.pk
    assert body["entry"]["kind"] == "adjust"
    assert body["entry"]["kind_label"] == "Manual adjustment"
    assert body["entry"]["points"] == 40
    assert body["entry"]["reason"] == "Goodwill"
    assert body["entry"]["remaining"] == 40
    assert body["entry"]["allocations"] == []
    assert {name: body["balances"][name] for name in ("available", "pending", "debt", "earned")} == {
        "available": 140,
        "pending": 0,
        "debt": 0,
        "earned": 140,
    }
    assert _account(funded) == {"available": 140, "pending": 0, "debt": 0, "earned": 140, "redeemed": 0, "expired": 0}


def test_removing_points(manage_client, manager, funded):
    credit_lot = Lot.objects.get(member=funded)

    response = manage_client.post(adjust_url(funded.pk), {"points": -30, "reason": "Duplicate purchase"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    entry = Entry.objects.get(member=funded, kind=EntryKind.ADJUST)
    assert (entry.amount, entry.actor, entry.reason, entry.uncovered) == (-30, manager, "Duplicate purchase", 0)
    assert body["entry"]["points"] == -30
    assert body["entry"]["allocations"] == [{"lot": credit_lot.pk, "amount": 30, "lot_expires_at": None}]
    assert (body["balances"]["available"], body["balances"]["debt"]) == (70, 0)
    assert _account(funded) == {"available": 70, "pending": 0, "debt": 0, "earned": 100, "redeemed": 0, "expired": 0}
    assert Lot.objects.get(pk=credit_lot.pk).remaining == 70


def test_removing_the_whole_balance(manage_client, funded):
    response = manage_client.post(adjust_url(funded.pk), {"points": -100, "reason": "Fraud"}, format="json")

    assert response.status_code == 201, response.content
    assert _account(funded)["available"] == 0
    assert _account(funded)["debt"] == 0


def test_adjusting_a_member_without_account_creates_it(manage_client, member):
    response = manage_client.post(adjust_url(member.pk), {"points": 5, "reason": "Welcome"}, format="json")

    assert response.status_code == 201, response.content
    assert _account(member)["available"] == 5


def test_adjusting_a_suspended_member_is_allowed(manage_client, funded):
    member_suspend(member=funded)

    response = manage_client.post(adjust_url(funded.pk), {"points": -10, "reason": "Correction"}, format="json")

    assert response.status_code == 201, response.content
    assert _account(funded)["available"] == 90


def test_removing_more_than_available_is_refused(manage_client, funded):
    before = db_state()

    response = manage_client.post(adjust_url(funded.pk), {"points": -150, "reason": "Correction"}, format="json")

    body = assert_problem(response, 422, "insufficient_points")
    assert (body["available"], body["requested"]) == (100, 150)
    assert "150" in body["detail"] and "100" in body["detail"]
    assert db_state() == before
    assert _account(funded)["available"] == 100


def test_removing_from_an_empty_account_is_refused(manage_client, member):
    before = db_state()

    response = manage_client.post(adjust_url(member.pk), {"points": -1, "reason": "Correction"}, format="json")

    body = assert_problem(response, 422, "insufficient_points")
    assert (body["available"], body["requested"]) == (0, 1)
    assert db_state() == before


def test_pending_points_cannot_be_removed_without_debt(manage_client, member):
    ledger_credit(member=member, amount=80, available_at=timezone.now() + timedelta(days=14))
    before = db_state()

    response = manage_client.post(adjust_url(member.pk), {"points": -50, "reason": "Correction"}, format="json")

    assert_problem(response, 422, "insufficient_points")
    assert db_state() == before


def test_removing_more_than_available_with_allow_debt_records_debt(manage_client, manager, funded):
    response = manage_client.post(
        adjust_url(funded.pk), {"points": -150, "reason": "Chargeback", "allow_debt": True}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    entry = Entry.objects.get(member=funded, kind=EntryKind.ADJUST)
    assert (entry.amount, entry.uncovered, entry.actor, entry.reason) == (-150, 50, manager, "Chargeback")
    assert (body["entry"]["points"], body["entry"]["uncovered"]) == (-150, 50)
    assert (body["balances"]["available"], body["balances"]["debt"]) == (0, 50)
    assert _account(funded) == {"available": 0, "pending": 0, "debt": 50, "earned": 100, "redeemed": 0, "expired": 0}


def test_allow_debt_does_not_matter_when_the_balance_suffices(manage_client, funded):
    response = manage_client.post(
        adjust_url(funded.pk), {"points": -60, "reason": "Correction", "allow_debt": True}, format="json"
    )

    assert response.status_code == 201, response.content
    assert (_account(funded)["available"], _account(funded)["debt"]) == (40, 0)
    assert Entry.objects.get(kind=EntryKind.ADJUST).uncovered == 0


def test_adding_points_pays_debt_first(manage_client, funded):
    manage_client.post(adjust_url(funded.pk), {"points": -150, "reason": "Chargeback", "allow_debt": True})

    response = manage_client.post(adjust_url(funded.pk), {"points": 80, "reason": "Goodwill"}, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["balances"]["available"], response.json()["balances"]["debt"]) == (30, 0)
    assert (_account(funded)["available"], _account(funded)["debt"]) == (30, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": 10}, "reason"),
        ({"points": 10, "reason": ""}, "reason"),
        ({"points": 10, "reason": "   "}, "reason"),
        ({"points": 10, "reason": None}, "reason"),
        ({"points": 10, "reason": "x" * 1001}, "reason"),
        ({"reason": "Goodwill"}, "points"),
        ({"points": None, "reason": "Goodwill"}, "points"),
        ({"points": 0, "reason": "Goodwill"}, "points"),
        ({"points": 1.5, "reason": "Goodwill"}, "points"),
        ({"points": 10.0, "reason": "Goodwill"}, "points"),
        ({"points": "10", "reason": "Goodwill"}, "points"),
        ({"points": True, "reason": "Goodwill"}, "points"),
        ({"points": [10], "reason": "Goodwill"}, "points"),
        ({"points": {"value": 10}, "reason": "Goodwill"}, "points"),
        ({"points": 10**12, "reason": "Goodwill"}, "points"),
        ({"points": -(10**12), "reason": "Goodwill", "allow_debt": True}, "points"),
        ({"points": 10**30, "reason": "Goodwill"}, "points"),
        ({"points": 1_000_000_001, "reason": "Goodwill"}, "points"),
        ({"points": 10, "reason": "Goodwill", "allow_debt": "maybe"}, "allow_debt"),
    ],
)
def test_invalid_adjustment_is_a_validation_error(manage_client, funded, body, field):
    before = db_state()

    response = manage_client.post(adjust_url(funded.pk), body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"], problem
    assert all(isinstance(message, str) and message for message in problem["errors"][field])
    assert db_state() == before


def test_zero_points_message(manage_client, funded):
    response = manage_client.post(adjust_url(funded.pk), {"points": 0, "reason": "Nothing"}, format="json")

    assert assert_problem(response, 400, "validation_error")["errors"] == {"points": ["Points must not be zero."]}


@pytest.mark.parametrize("body", [[], [{"points": 10, "reason": "x"}], "points", 10, None])
def test_adjustment_body_must_be_an_object(manage_client, funded, body):
    before = db_state()

    response = manage_client.post(adjust_url(funded.pk), body, format="json")

    assert_problem(response, 400, "validation_error")
    assert db_state() == before


def test_the_largest_allowed_adjustment_is_accepted(manage_client, member):
    response = manage_client.post(adjust_url(member.pk), {"points": 1_000_000_000, "reason": "Jackpot"}, format="json")

    assert response.status_code == 201, response.content
    assert _account(member)["available"] == 1_000_000_000


def test_adjusting_an_unknown_member_is_not_found(manage_client, funded):
    before = db_state()

    response = manage_client.post(adjust_url(999999), {"points": 10, "reason": "Goodwill"}, format="json")

    assert_problem(response, 404, "member_not_found")
    assert db_state() == before


def test_adjusting_another_programs_member_is_not_found(manage_client, other_program):
    outsider = MemberFactory(program=other_program)
    ledger_credit(member=outsider, amount=100)
    before = db_state()

    for points in (10, -10):
        response = manage_client.post(adjust_url(outsider.pk), {"points": points, "reason": "Sneaky"}, format="json")
        assert_problem(response, 404, "member_not_found")

    assert db_state() == before
    assert not Allocation.objects.filter(member=outsider, entry__kind=EntryKind.ADJUST).exists()


def test_adjusting_with_a_non_numeric_id_is_not_found(manage_client, funded):
    """A malformed id names no member: 404, never a 500."""
    before = db_state()

    response = manage_client.post(adjust_url("abc"), {"points": 10, "reason": "Goodwill"}, format="json")

    assert_problem(response, 404, "member_not_found")
    assert db_state() == before


def test_superuser_can_adjust_any_program(other_program):
    admin = SuperuserFactory(password="pw")
    outsider = MemberFactory(program=other_program)

    response = staff_client(admin).post(adjust_url(outsider.pk), {"points": 10, "reason": "Support"}, format="json")

    assert response.status_code == 201, response.content
    assert Entry.objects.get(member=outsider).actor == admin


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_adjustments_only_accept_post(manage_client, funded, method):
    before = db_state()

    response = getattr(manage_client, method)(adjust_url(funded.pk))

    assert_problem(response, 405, "method_not_allowed")
    assert db_state() == before
