"""Purchases and returns under real concurrency on PostgreSQL: threads with their own connections, released together."""

from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from loyalty.exceptions import InsufficientPoints
from loyalty.models import Account, Award, Entry, EntryKind, Purchase, Return
from loyalty.services.ledger import ledger_debit
from loyalty.services.purchases import PurchaseResult, purchase_record
from loyalty.services.returns import ReturnResult, return_record
from tests.builders import line, purchase, purchase_data, rule
from tests.clients import key_client
from tests.concurrency import run_at_once
from tests.factories import ApiKeyFactory, MemberFactory, ProgramFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = timezone.now()


@pytest.fixture
def shop():
    """EUR, points available at once, 0.1 point per euro (gift cards excluded)."""
    program = ProgramFactory(currency="EUR")
    rule(program, excluded_categories="gift-cards")
    return program


def _account(member) -> Account:
    return Account.objects.get(pk=member.pk)


def _award_points(**filters) -> int:
    return Award.objects.filter(**filters).aggregate(points=Sum("points"))["points"] or 0


def test_fifty_different_purchases_of_one_member_add_up_exactly(shop):
    member = MemberFactory(program=shop)  # no account yet: the first writers race to create it
    welcome = rule(shop, name="Welcome", kind="bonus", points=50, first_purchase=True, rate=Decimal(0))
    visits = rule(shop, name="Visit bonus", kind="bonus", points=10, cap_per_member_day=100, rate=Decimal(0))

    def buy(i: int) -> PurchaseResult:
        data = purchase_data(f"TILL-{i}", lines=[line("BK-1", f"{100 + 7 * i}.00", "books")])
        return purchase_record(program=shop, member=member, data=data)

    results = run_at_once(50, buy)

    assert all(isinstance(r, PurchaseResult) and not r.replayed for r in results), results
    account = _account(member)
    expected_base = sum((100 + 7 * i) // 10 for i in range(50))
    assert sum(r.points for r in results) == expected_base + 50 + 100
    assert account.available == account.earned == _award_points(member=member) == sum(r.points for r in results)
    assert account.available == Purchase.objects.filter(member=member).aggregate(p=Sum("points_awarded"))["p"]
    assert (account.pending, account.debt, account.purchases) == (0, 0, 50)
    assert Purchase.objects.filter(member=member).count() == 50
    assert Award.objects.filter(rule=welcome).count() == 1  # exactly one purchase was the first
    assert _award_points(rule=visits) == 100  # the daily cap held
    call_command("check_ledger")


def test_twenty_copies_of_one_purchase_are_recorded_once(shop):
    member = MemberFactory(program=shop, card="400012345678", email="jana@example.com")
    key = ApiKeyFactory(program=shop, name="Till 7").plain
    refs = [{"card": "4000-1234-5678"}, {"email": "jana@example.com"}, {"id": member.pk}]
    body = {
        "external_id": "TILL7-000123",
        "occurred_at": NOW.isoformat(),
        "currency": "EUR",
        "total": "1234.50",
        "lines": [
            {"sku": "BK-991", "category": "books", "quantity": "2", "unit_price": "300.00", "amount": "600.00"},
            {"sku": "GC-1", "category": "gift-cards", "quantity": "1", "unit_price": "500.00", "amount": "500.00"},
            {"sku": "TO-1", "category": "toys", "quantity": "1", "unit_price": "134.50", "amount": "134.50"},
        ],
    }

    def send(i: int):
        return key_client(key).post("/api/pos/v1/purchases/", {**body, "member": refs[i % 3]}, format="json")

    responses = run_at_once(20, send)

    assert not [r for r in responses if isinstance(r, Exception)], responses
    statuses = Counter(r.status_code for r in responses)
    print(f"20 copies of one purchase answered {dict(statuses)}")
    assert statuses[201] == 1, statuses
    assert set(statuses) <= {200, 201, 409} and statuses[409] <= 3, statuses
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "conflict"
    answers = [r.json() for r in responses if r.status_code in (200, 201)]
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["points_awarded"] == 73
    assert Purchase.objects.count() == 1
    assert Entry.objects.filter(member=member).count() == 1
    assert list(Award.objects.values_list("points", flat=True)) == [73]
    account = _account(member)
    assert (account.available, account.purchases) == (73, 1)
    call_command("check_ledger")


def test_a_bonus_budget_is_never_overspent_by_simultaneous_purchases(shop):
    launch = rule(shop, name="Launch bonus", kind="bonus", points=30, budget_total=100, rate=Decimal(0))
    members = [MemberFactory(program=shop) for _ in range(20)]

    def buy(i: int) -> PurchaseResult:
        data = purchase_data(f"L-{i}", lines=[line("BK-1", "1000.00", "books")])
        return purchase_record(program=shop, member=members[i], data=data)

    results = run_at_once(20, buy)

    assert all(isinstance(r, PurchaseResult) for r in results), results
    launch.refresh_from_db()
    assert launch.budget_used <= 100
    assert _award_points(rule=launch) == launch.budget_used == 100
    assert sorted(Award.objects.filter(rule=launch).values_list("points", flat=True)) == [10, 30, 30, 30]
    # every member got the base points; the bonus only while the budget lasted
    assert sorted(r.points for r in results) == sorted([100] * 16 + [110] + [130] * 3)
    call_command("check_ledger")


def test_a_return_racing_a_spend_never_leaves_negative_balances(shop):
    members = [MemberFactory(program=shop) for _ in range(10)]
    for k, member in enumerate(members):
        purchase(member, f"P-{k}", lines=[line("BK-1", "1000.00", "books")])  # 100 points each

    def work(i: int):
        k, spend = divmod(i, 2)
        if spend:
            return ledger_debit(member=members[k], amount=80, kind=EntryKind.REDEEM)
        return return_record(
            program=shop, external_id=f"R-{k}", purchase_external_id=f"P-{k}", amount=Decimal("1000.00")
        )

    results = run_at_once(20, work)

    call_command("check_ledger")
    for k, member in enumerate(members):
        returned, spent = results[2 * k], results[2 * k + 1]
        assert isinstance(returned, ReturnResult) and returned.record.points_reversed == 100, returned
        account = _account(member)
        assert min(account.available, account.pending, account.debt) >= 0
        if isinstance(spent, InsufficientPoints):  # the return came first
            assert (account.available, account.debt, account.redeemed) == (0, 0, 0)
        else:  # the spend came first: the return took the 20 left and 80 became debt
            assert isinstance(spent, Entry), spent
            assert (account.available, account.debt, account.redeemed) == (0, 80, 80)
    assert Return.objects.count() == 10
