"""Holds under real concurrency (PostgreSQL row locks): no double spend, no double refund."""

from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.models import Account, Entry, EntryKind
from rewards.models import Hold, HoldStatus
from rewards.services import hold_create, hold_release, holds_expire
from tests.builders import fund
from tests.concurrency import run_at_once
from tests.factories import MemberFactory, ProgramFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_ten_simultaneous_holds_of_a_balance_covering_two_hold_twice():
    member = MemberFactory(program=ProgramFactory())
    fund(member, 200)

    results = run_at_once(
        10,
        lambda i: hold_create(member=member, basket_reference=f"cart-{i}", basket_amount=Decimal("10.00"), points=100),
    )

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"HoldResult": 2, "InsufficientPoints": 8}, results
    assert Hold.objects.filter(member=member, status=HoldStatus.HELD).count() == 2
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.redeemed) == (0, 200)
    assert ledger_audit() == []
    call_command("check_ledger")


@pytest.mark.parametrize("round_", range(3))
def test_a_release_racing_the_expiry_job_gives_the_points_back_once(round_):
    member = MemberFactory(program=ProgramFactory())
    fund(member, 500)
    hold = hold_create(member=member, basket_reference="cart", basket_amount=Decimal("100.00"), points=300).hold
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now())

    results = run_at_once(2, lambda i: hold_release(hold=hold) if i == 0 else holds_expire())

    released, expired = results
    hold.refresh_from_db()
    if hold.status == HoldStatus.RELEASED:
        assert type(released).__name__ == "HoldResult" and expired == 0, results
    else:
        assert hold.status == HoldStatus.EXPIRED, results
        assert type(released).__name__ == "HoldNotActive" and expired == 1, results
    refunded = sum(Entry.objects.filter(member=member, kind=EntryKind.REFUND).values_list("amount", flat=True))
    assert refunded == 300
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.redeemed) == (500, 0)
    assert ledger_audit() == []


def test_ten_simultaneous_holds_on_one_basket_pay_at_most_its_share():
    member = MemberFactory(program=ProgramFactory())
    fund(member, 10_000)

    results = run_at_once(
        10,
        lambda i: hold_create(member=member, basket_reference="cart", basket_amount=Decimal("100.00"), points=1000),
    )

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"HoldResult": 3, "HoldExceedsShare": 7}, results
    held = Hold.objects.filter(basket_reference="cart", status=HoldStatus.HELD)
    assert sorted(held.values_list("money_value", flat=True)) == [Decimal("10.00")] * 3
    assert Account.objects.get(pk=member.pk).available == 7000
    assert ledger_audit() == []


def test_two_members_holding_one_new_basket_at_once_get_it_once():
    program = ProgramFactory()
    members = [MemberFactory(program=program) for _ in range(2)]
    for member in members:
        fund(member, 5000)

    results = run_at_once(
        2,
        lambda i: hold_create(member=members[i], basket_reference="cart", basket_amount=Decimal("100.00"), points=3000),
    )

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"HoldResult": 1, "HoldBasketMismatch": 1}, results
    assert Hold.objects.filter(basket_reference="cart").count() == 1
    assert sorted(Account.objects.filter(pk__in=[m.pk for m in members]).values_list("available", flat=True)) == [
        2000,
        5000,
    ]
    assert ledger_audit() == []
