"""The ledger's one amount guard, and balances that move exactly past 2^31 and 2^32.

On PostgreSQL with server-side binding (DB_PREPARED_STATEMENTS, the default) a bare int in `F(field) + delta`
went out as a 4-byte parameter: one move of more than 2^31 - 1 points (pending lots becoming available
together, several lots expiring together) wrapped.
"""

import io
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.exceptions import AmountTooLarge, InvalidAmount
from loyalty.imports.run import purchases_import
from loyalty.models import MAX_POINTS_PER_ENTRY, Account, Entry, EntryKind, Purchase
from loyalty.services.accounts import lock_accounts
from loyalty.services.ledger import (
    credit_locked,
    debit_locked,
    ledger_adjust,
    ledger_credit,
    ledger_debit,
    ledger_transfer,
)
from rewards.models import Hold
from rewards.services.holds import hold_create
from tests.builders import rule
from tests.factories import MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db
BILLION = 1_000_000_000


def balances(member) -> tuple[int, ...] | None:
    account = Account.objects.filter(pk=member.pk).first()
    if account is None:
        return None
    return account.available, account.pending, account.debt, account.earned, account.redeemed, account.expired


def _credit_locked(member, amount):
    now = timezone.now()
    account = lock_accounts([member])[member.pk]
    return credit_locked(
        account=account, kind=EntryKind.EARN, amount=amount, occurred_at=now, available_at=now, expires_at=None
    )


def _debit_locked(member, amount):
    return debit_locked(
        account=lock_accounts([member])[member.pk], kind=EntryKind.REVERSE, amount=amount, allow_debt=True
    )


WRITES = {
    "credit": lambda member, other, amount: ledger_credit(member=member, amount=amount),
    "debit": lambda member, other, amount: ledger_debit(
        member=member, amount=amount, kind=EntryKind.REVERSE, allow_debt=True
    ),
    "adjust-up": lambda member, other, amount: ledger_adjust(
        member=member, points=amount, reason="test", actor=StaffFactory()
    ),
    "adjust-down": lambda member, other, amount: ledger_adjust(
        member=member, points=-amount, reason="test", actor=StaffFactory(), allow_debt=True
    ),
    "transfer": lambda member, other, amount: ledger_transfer(source=member, target=other, amount=amount),
    "credit-locked": lambda member, other, amount: _credit_locked(member, amount),
    "debit-locked": lambda member, other, amount: _debit_locked(member, amount),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize("amount", [BILLION + 1, 2**31, 2**32 + 100, 10**12])
def test_every_ledger_write_refuses_more_than_one_entry_may_hold(program, write, amount):
    member, other = MemberFactory(program=program), MemberFactory(program=program)
    ledger_credit(member=member, amount=BILLION)
    before = (list(Entry.objects.values_list("pk", "amount")), balances(member), balances(other))

    with pytest.raises(AmountTooLarge) as error:
        write(member, other, amount)

    assert error.value.status == 422
    assert error.value.extra == {"field": "points", "maximum": MAX_POINTS_PER_ENTRY}
    assert (list(Entry.objects.values_list("pk", "amount")), balances(member), balances(other)) == before


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_ledger_write_takes_the_maximum(program, write):
    member, other = MemberFactory(program=program), MemberFactory(program=program)
    ledger_credit(member=member, amount=BILLION)

    write(member, other, BILLION)

    assert ledger_audit() == []


@pytest.mark.parametrize("amount", [BILLION + 1, 2**32 + 100])
def test_a_hold_of_more_points_than_one_entry_may_hold_is_refused_by_the_same_guard(member, amount):
    ledger_credit(member=member, amount=BILLION)

    with pytest.raises(AmountTooLarge) as error:
        hold_create(member=member, basket_reference="B-1", basket_amount=Decimal(amount), points=amount)

    assert error.value.extra == {"field": "points", "maximum": MAX_POINTS_PER_ENTRY}
    assert Entry.objects.count() == 1 and not Hold.objects.exists()


@pytest.mark.parametrize("write", [WRITES["credit-locked"], WRITES["debit-locked"]], ids=["credit", "debit"])
@pytest.mark.parametrize("amount", [0, -1, 1.5, True])
def test_the_locked_writes_refuse_amounts_that_are_not_points(member, write, amount):
    with pytest.raises(InvalidAmount) as error:
        write(member, None, amount)

    assert error.value.status == 400
    assert Entry.objects.count() == 0


@pytest.mark.postgres
def test_pending_lots_becoming_available_together_past_2_to_the_31(member):
    soon = timezone.now() + timedelta(milliseconds=300)
    for _ in range(3):
        ledger_credit(member=member, amount=BILLION, available_at=soon)
    assert balances(member)[:2] == (0, 3 * BILLION)
    time.sleep(0.4)  # the return window passes

    ledger_debit(member=member, amount=1)  # a debit first makes due lots spendable: one move of 3 billion

    assert balances(member) == (3 * BILLION - 1, 0, 0, 3 * BILLION, 1, 0)
    assert ledger_audit() == []


@pytest.mark.postgres
def test_lots_expiring_together_past_2_to_the_32(member):
    now = timezone.now()
    for _ in range(5):
        ledger_credit(member=member, amount=BILLION, occurred_at=now - timedelta(days=400), expires_at=now)

    # A debit first expires what is past its date: one expiry entry of 5 billion, then debt of the 1.
    ledger_debit(member=member, amount=1, kind=EntryKind.REVERSE, allow_debt=True)

    assert balances(member) == (0, 0, 1, 5 * BILLION, 0, 5 * BILLION)
    assert Entry.objects.get(kind=EntryKind.EXPIRE).amount == -5 * BILLION
    assert ledger_audit() == []


def test_an_imported_purchase_worth_too_many_points_is_refused_as_its_row(program):
    rule(program, name="Base", kind="base_rate", rate=Decimal(1))
    in_debt = MemberFactory(program=program, external_id="DEBT")  # goes through purchase_record itself
    ledger_adjust(member=in_debt, points=-5, reason="test", actor=StaffFactory(), allow_debt=True)
    day = (timezone.now() - timedelta(days=1)).replace(microsecond=0).isoformat()
    rows = [
        ["C-1", day, "1000000000.00", "OK-1"],  # line 2: the most points one entry holds
        ["C-1", day, "1000000001.00", "BIG-1"],  # 3
        ["DEBT", day, "4294967396.00", "BIG-2"],  # 4
        ["DEBT", day, "10.00", "OK-2"],  # 5
        ["C-1", day, "999999999999.99", "BIG-3"],  # 6
    ]
    lines = ["external_id,occurred_at,total,purchase_id", *(",".join(row) for row in rows)]
    errors = []

    report = purchases_import(program=program, file=io.StringIO("\n".join(lines)), on_error=errors.append)

    assert (report.imported, report.rejected, report.points) == (2, 3, BILLION + 10)
    assert [(error.line, error.reason) for error in errors] == [
        (3, f"1000000001 points is more than the {BILLION} one ledger entry may hold."),
        (4, f"4294967396 points is more than the {BILLION} one ledger entry may hold."),
        (6, f"999999999999 points is more than the {BILLION} one ledger entry may hold."),
    ]
    assert sorted(Purchase.objects.values_list("external_id", flat=True)) == ["OK-1", "OK-2"]
    assert balances(in_debt)[:3] == (5, 0, 0)
    assert ledger_audit() == []
