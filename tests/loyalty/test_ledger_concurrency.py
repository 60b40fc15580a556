"""Real concurrency on PostgreSQL: threads with their own connections hit the same members at once."""

import random
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty.exceptions import InsufficientPoints
from loyalty.models import Account, Entry, EntryKind
from loyalty.services.ledger import ledger_adjust, ledger_credit, ledger_debit, ledger_transfer
from loyalty.services.lots import lots_activate, lots_expire
from tests.concurrency import run_at_once
from tests.factories import MemberFactory, ProgramFactory, StaffFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_spends_of_a_balance_that_covers_one_succeed_once():
    member = MemberFactory(program=ProgramFactory())
    ledger_credit(member=member, amount=100)

    results = run_at_once(20, lambda i: ledger_debit(member=member, amount=100))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"Entry": 1, "InsufficientPoints": 19}
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.redeemed) == (0, 100)
    assert Entry.objects.filter(member=member, kind=EntryKind.REDEEM).count() == 1
    call_command("check_ledger")


def test_twenty_posts_with_one_idempotency_key_post_once():
    member = MemberFactory(program=ProgramFactory())

    results = run_at_once(20, lambda i: ledger_credit(member=member, amount=40, key="till-3:sale-991"))

    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert sum(bool(getattr(r, "replayed", False)) for r in results) == 19
    assert Entry.objects.filter(member=member).count() == 1
    assert Account.objects.get(pk=member.pk).available == 40


def test_concurrent_earns_sum_exactly():
    member = MemberFactory(program=ProgramFactory())

    results = run_at_once(30, lambda i: ledger_credit(member=member, amount=i + 1))

    assert all(not isinstance(r, Exception) for r in results), results
    assert Account.objects.get(pk=member.pk).available == sum(range(1, 31))


def test_mixed_writers_on_a_few_members_keep_the_ledger_consistent():
    program = ProgramFactory(expiry_policy="days", expiry_period=30)
    members = [MemberFactory(program=program) for _ in range(3)]
    manager = StaffFactory()
    past = timezone.now() - timedelta(days=60)
    for member in members:
        ledger_credit(member=member, amount=500)
        ledger_credit(member=member, amount=200, occurred_at=past, expires_at=past + timedelta(days=30))

    def random_operation(rng: random.Random) -> None:
        member, other = rng.sample(members, 2)
        operations = {
            "earn": lambda: ledger_credit(
                member=member,
                amount=rng.randint(1, 50),
                available_at=timezone.now() + timedelta(seconds=rng.choice([0, 1])),
            ),
            "spend": lambda: ledger_debit(member=member, amount=rng.randint(1, 80)),
            "reverse": lambda: ledger_debit(
                member=member, amount=rng.randint(1, 60), kind=EntryKind.REVERSE, allow_debt=True
            ),
            "adjust": lambda: ledger_adjust(member=member, points=rng.choice([25, -25]), reason="test", actor=manager),
            "transfer": lambda: ledger_transfer(source=member, target=other, amount=rng.randint(1, 40)),
            "expire": lambda: lots_expire(batch_size=2),
            "activate": lambda: lots_activate(batch_size=2),
        }
        try:
            operations[rng.choice(sorted(operations))]()
        except InsufficientPoints:
            pass

    def work(i: int) -> bool:
        rng = random.Random(i)
        for _ in range(15):
            random_operation(rng)
        return True

    results = run_at_once(8, work)

    assert results == [True] * 8, results
    call_command("check_ledger")
    for member in members:
        account = Account.objects.get(pk=member.pk)
        assert min(account.available, account.pending, account.debt) >= 0
