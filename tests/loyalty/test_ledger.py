import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.exceptions import InsufficientPoints, InvalidAmount, TransferNotAllowed
from loyalty.models import Account, Allocation, Entry, EntryKind, Lot
from loyalty.selectors import member_balances
from loyalty.services.ledger import ledger_adjust, ledger_credit, ledger_debit, ledger_transfer
from members.exceptions import IdempotencyKeyReused, MemberClosed, MemberSuspended
from members.services.members import member_close, member_suspend
from tests.factories import MemberFactory, ProgramFactory, StaffFactory

NOW = timezone.now()


def balances(member):
    account = Account.objects.get(pk=member.pk)
    return {"available": account.available, "pending": account.pending, "debt": account.debt}


def assert_consistent():
    assert [str(m) for m in ledger_audit()] == []


def test_credit_creates_entry_and_lot(member):
    entry = ledger_credit(member=member, amount=120, details={"note": "visit"})

    assert (entry.kind, entry.amount, entry.details) == (EntryKind.EARN, 120, {"note": "visit"})
    lot = Lot.objects.get(entry=entry)
    assert (lot.amount, lot.remaining, lot.pending, lot.expires_at) == (120, 120, False, None)
    assert balances(member) == {"available": 120, "pending": 0, "debt": 0}
    assert Account.objects.get(pk=member.pk).earned == 120
    assert_consistent()


def test_credit_with_future_available_at_is_pending(member):
    ledger_credit(member=member, amount=50, available_at=NOW + timedelta(days=14))

    assert balances(member) == {"available": 0, "pending": 50, "debt": 0}
    with pytest.raises(InsufficientPoints):
        ledger_debit(member=member, amount=1)
    assert_consistent()


def test_credit_expiry_follows_program_policy(db):
    program = ProgramFactory(expiry_policy="days", expiry_period=30)
    member = MemberFactory(program=program)

    entry = ledger_credit(member=member, amount=10, occurred_at=NOW)

    assert Lot.objects.get(entry=entry).expires_at == NOW + timedelta(days=30)


def test_debit_consumes_soonest_expiring_first_never_expiring_last(member):
    never = ledger_credit(member=member, amount=100, expires_at=None, occurred_at=NOW - timedelta(days=9))
    late = ledger_credit(member=member, amount=100, expires_at=NOW + timedelta(days=300))
    soon = ledger_credit(member=member, amount=100, expires_at=NOW + timedelta(days=10))

    debit = ledger_debit(member=member, amount=150)

    taken = {a.lot.entry_id: a.amount for a in Allocation.objects.filter(entry=debit).select_related("lot")}
    assert taken == {soon.pk: 100, late.pk: 50}
    assert Lot.objects.get(entry=never).remaining == 100
    assert balances(member)["available"] == 150
    assert Account.objects.get(pk=member.pk).redeemed == 150
    assert_consistent()


def test_ties_in_expiry_are_broken_by_age(member):
    expiry = NOW + timedelta(days=30)
    newer = ledger_credit(member=member, amount=10, expires_at=expiry, occurred_at=NOW - timedelta(days=1))
    older = ledger_credit(member=member, amount=10, expires_at=expiry, occurred_at=NOW - timedelta(days=5))

    debit = ledger_debit(member=member, amount=10)

    assert [a.lot.entry_id for a in debit.allocations.all()] == [older.pk]
    assert Lot.objects.get(entry=newer).remaining == 10


def test_debit_more_than_available_fails_and_writes_nothing(member):
    ledger_credit(member=member, amount=100)
    entries = Entry.objects.count()

    with pytest.raises(InsufficientPoints) as error:
        ledger_debit(member=member, amount=101)

    assert error.value.extra == {"available": 100, "requested": 101}
    assert Entry.objects.count() == entries
    assert balances(member)["available"] == 100


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", True, None, 10**10])
def test_invalid_amounts_are_refused(member, amount):
    with pytest.raises(InvalidAmount):
        ledger_credit(member=member, amount=amount)
    with pytest.raises(InvalidAmount):
        ledger_debit(member=member, amount=amount)
    assert Entry.objects.count() == 0


def test_return_after_spending_creates_debt_paid_by_later_credits(member):
    earned = ledger_credit(member=member, amount=100)
    ledger_debit(member=member, amount=80)

    reversal = ledger_debit(
        member=member, amount=100, kind=EntryKind.REVERSE, allow_debt=True, prefer_lots=[earned.lot_created.pk]
    )

    assert reversal.uncovered == 80
    assert balances(member) == {"available": 0, "pending": 0, "debt": 80}
    assert_consistent()

    ledger_credit(member=member, amount=50)
    assert balances(member) == {"available": 0, "pending": 0, "debt": 30}
    ledger_credit(member=member, amount=50)
    assert balances(member) == {"available": 20, "pending": 0, "debt": 0}
    reversal.refresh_from_db()
    assert reversal.uncovered == 0
    assert sum(a.amount for a in reversal.allocations.all()) == 100
    assert_consistent()


def test_reversal_takes_its_own_pending_lot_first(member):
    ledger_credit(member=member, amount=40)
    purchase = ledger_credit(member=member, amount=60, available_at=NOW + timedelta(days=14))

    ledger_debit(
        member=member, amount=70, kind=EntryKind.REVERSE, allow_debt=True, prefer_lots=[purchase.lot_created.pk]
    )

    assert balances(member) == {"available": 30, "pending": 0, "debt": 0}
    assert_consistent()


def test_debit_activates_due_pending_lots_and_expires_due_lots(member):
    # given a lot whose return window passes in a moment and one that has expired, neither seen by the jobs
    ledger_credit(member=member, amount=30, available_at=timezone.now() + timedelta(milliseconds=300))
    ledger_credit(member=member, amount=40, occurred_at=NOW - timedelta(days=400), expires_at=NOW - timedelta(days=5))
    assert balances(member) == {"available": 40, "pending": 30, "debt": 0}
    time.sleep(0.35)

    # when
    ledger_debit(member=member, amount=30)

    # then the expired lot is gone with an expiry entry, the due lot was spent
    assert balances(member) == {"available": 0, "pending": 0, "debt": 0}
    assert Entry.objects.get(member=member, kind=EntryKind.EXPIRE).amount == -40
    assert Account.objects.get(pk=member.pk).expired == 40
    assert_consistent()


def test_same_key_posts_once_and_replays(member):
    first = ledger_credit(member=member, amount=25, key="till-7:abc")
    again = ledger_credit(member=member, amount=25, key="till-7:abc")

    assert again.pk == first.pk and again.replayed
    assert Entry.objects.filter(member=member).count() == 1
    assert balances(member)["available"] == 25
    with pytest.raises(IdempotencyKeyReused):
        ledger_credit(member=member, amount=26, key="till-7:abc")
    with pytest.raises(IdempotencyKeyReused):
        ledger_debit(member=member, amount=25, key="till-7:abc")


def test_keys_are_unique_per_program_not_globally(member, other_program):
    other = MemberFactory(program=other_program)
    ledger_credit(member=member, amount=5, key="k1")
    ledger_credit(member=other, amount=5, key="k1")
    assert Entry.objects.filter(key="k1").count() == 2


def test_adjustment_records_actor_and_reason(member):
    manager = StaffFactory()

    added = ledger_adjust(member=member, points=70, reason="Missing points from 12 May", actor=manager)
    removed = ledger_adjust(member=member, points=-20, reason="Duplicate purchase", actor=manager)

    assert (added.kind, added.amount, added.actor, added.reason) == (
        "adjust",
        70,
        manager,
        "Missing points from 12 May",
    )
    assert (removed.amount, removed.reason) == (-20, "Duplicate purchase")
    assert balances(member)["available"] == 50
    assert Account.objects.get(pk=member.pk).earned == 70
    assert_consistent()


def test_adjustment_needs_reason_and_respects_balance(member):
    manager = StaffFactory()
    with pytest.raises(InvalidAmount):
        ledger_adjust(member=member, points=10, reason="  ", actor=manager)
    with pytest.raises(InsufficientPoints):
        ledger_adjust(member=member, points=-10, reason="Fraud", actor=manager)
    entry = ledger_adjust(member=member, points=-10, reason="Fraud", actor=manager, allow_debt=True)
    assert entry.uncovered == 10
    assert balances(member)["debt"] == 10
    assert_consistent()


def test_transfer_keeps_each_lots_expiry(member):
    target = MemberFactory(program=member.program)
    soon, late = NOW + timedelta(days=10), NOW + timedelta(days=200)
    ledger_credit(member=member, amount=30, expires_at=soon)
    ledger_credit(member=member, amount=100, expires_at=late)

    out, received = ledger_transfer(source=member, target=target, amount=50, key="gift-1")

    assert out.amount == -50
    assert sorted((e.amount, e.lot.expires_at) for e in received) == [(20, late), (30, soon)]
    assert balances(member)["available"] == 80
    assert balances(target)["available"] == 50
    again, _ = ledger_transfer(source=member, target=target, amount=50, key="gift-1")
    assert again.pk == out.pk and balances(target)["available"] == 50
    assert_consistent()


def test_transfer_only_within_one_program_and_between_two_members(member, other_program):
    ledger_credit(member=member, amount=10)
    with pytest.raises(TransferNotAllowed):
        ledger_transfer(source=member, target=member, amount=5)
    with pytest.raises(TransferNotAllowed):
        ledger_transfer(source=member, target=MemberFactory(program=other_program), amount=5)


def test_suspended_and_closed_members_cannot_earn_or_spend(member):
    ledger_credit(member=member, amount=10)
    member_suspend(member=member)
    with pytest.raises(MemberSuspended):
        ledger_credit(member=member, amount=10)
    with pytest.raises(MemberSuspended):
        ledger_debit(member=member, amount=5)
    # a return still reverses points, and a manager can still correct
    ledger_debit(member=member, amount=5, kind=EntryKind.REVERSE, allow_debt=True)
    member_close(member=member)
    with pytest.raises(MemberClosed):
        ledger_credit(member=member, amount=10)
    assert balances(member)["available"] == 5


def test_balance_read_is_constant_queries_for_long_history(member, django_assert_max_num_queries):
    entries = [
        Entry(program=member.program, member=member, kind=EntryKind.EARN, amount=1, occurred_at=NOW)
        for _ in range(10_000)
    ]
    # Bulk setup for speed; the balance read below is what is measured.
    created = Entry.objects.bulk_create(entries)
    Lot.objects.bulk_create(
        Lot(
            program=member.program,
            member=member,
            entry=e,
            amount=1,
            remaining=1,
            pending=False,
            occurred_at=NOW,
            available_at=NOW,
            expires_at=NOW + timedelta(days=10),
        )
        for e in created
    )
    Account.objects.create(member=member, program=member.program, available=10_000, earned=10_000)

    with django_assert_max_num_queries(2):
        result = member_balances(member=member)

    assert (result.available, result.expiring_soon, result.earned) == (10_000, 10_000, 10_000)


def test_database_refuses_negative_balances(member):
    ledger_credit(member=member, amount=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=member.pk).update(available=-1)


def test_database_refuses_lot_remaining_above_amount(member):
    entry = ledger_credit(member=member, amount=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        Lot.objects.filter(entry=entry).update(remaining=11)


def test_database_refuses_adjustment_without_reason(member):
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(program=member.program, member=member, kind=EntryKind.ADJUST, amount=5, occurred_at=NOW)


@pytest.mark.postgres
def test_postgres_refuses_editing_or_deleting_posted_entries(member):
    entry = ledger_credit(member=member, amount=10)
    debit = ledger_debit(member=member, amount=4)
    statements = [
        f"UPDATE loyalty_entry SET amount = 99 WHERE id = {entry.pk}",
        f"DELETE FROM loyalty_entry WHERE id = {entry.pk}",
        f"UPDATE loyalty_lot SET remaining = 10 WHERE entry_id = {entry.pk}",
        f"DELETE FROM loyalty_lot WHERE entry_id = {entry.pk}",
        f"UPDATE loyalty_allocation SET amount = 1 WHERE entry_id = {debit.pk}",
        f"DELETE FROM loyalty_allocation WHERE entry_id = {debit.pk}",
    ]
    for sql in statements:
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert Entry.objects.get(pk=entry.pk).amount == 10
    assert_consistent()
