"""Integration API: the largest purchase and the most points one purchase may carry (docs/api.md, "Limits").

Amounts past 2^31 and 2^32 once wrapped in 4-byte query parameters (PostgreSQL with server-side binding):
the answer said one number and the balance moved by another. These tests run with the settings' default
binding, so on PostgreSQL with prepared statements on.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.audit import ledger_audit
from loyalty.models import Account, EarningRule, Purchase
from tests.api.utils import POS, assert_problem, db_state
from tests.builders import rule
from tests.factories import MemberFactory

PURCHASES_URL = f"{POS}/purchases/"
SIMULATE_URL = f"{POS}/purchases/simulate/"
OCCURRED = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
# The limits docs/api.md gives.
MAX_POINTS_PER_ENTRY = 1_000_000_000
MAX_PURCHASE_TOTAL = Decimal("999999999999.99")
BOTH_URLS = pytest.mark.parametrize("url", [PURCHASES_URL, SIMULATE_URL], ids=["record", "simulate"])


@pytest.fixture
def buyer(program):
    """A member of a program that gives 1 point per unit spent."""
    rule(program, name="Base rate", kind="base_rate", rate=Decimal(1))
    return MemberFactory(program=program)


def body(member, total: str, external_id: str = "TILL-1", lines=None) -> dict:
    data = {
        "external_id": external_id,
        "member": {"id": member.pk},
        "occurred_at": OCCURRED.isoformat(),
        "currency": "EUR",
        "total": total,
    }
    return data | ({"lines": lines} if lines is not None else {})


def state() -> dict:
    return {**db_state(), "purchases": list(Purchase.objects.values_list("pk", "points_awarded"))}


def test_the_code_has_the_documented_limits():
    from loyalty.services import ledger, purchases

    assert ledger.MAX_POINTS_PER_ENTRY == MAX_POINTS_PER_ENTRY
    assert purchases.MAX_PURCHASE_TOTAL == MAX_PURCHASE_TOTAL


@BOTH_URLS
@pytest.mark.parametrize(
    "total",
    [
        pytest.param("1000000000.01", id="a-cent-over-the-points-limit-still-floors-to-it"),
        pytest.param("1000000001.00", id="one-point-over"),
        pytest.param("3000000000.00", id="between-2^31-and-2^32"),
        pytest.param("4294967396.00", id="2^32-plus-100"),
        pytest.param(str(MAX_PURCHASE_TOTAL), id="the-largest-total"),
    ],
)
def test_a_purchase_worth_more_points_than_one_entry_may_hold_is_refused(pos_client, buyer, url, total):
    before = state()

    response = pos_client.post(url, body(buyer, total), format="json")

    if total == "1000000000.01":
        assert response.status_code == 200 if url == SIMULATE_URL else 201, response.content
        assert response.json()["points_awarded"] == MAX_POINTS_PER_ENTRY
        return
    problem = assert_problem(response, 422, "amount_too_large")
    assert problem["field"] == "points"
    assert problem["maximum"] == MAX_POINTS_PER_ENTRY
    assert state() == before


@BOTH_URLS
@pytest.mark.parametrize(
    ("total", "lines"),
    [
        pytest.param("1000000000000.00", None, id="total-a-cent-over"),
        pytest.param("1e20", None, id="total-in-exponent-form"),
        pytest.param(
            "1000000000000.00",
            [{"sku": "A", "quantity": "1", "unit_price": "1000000000000.00", "amount": "1000000000000.00"}],
            id="with-lines",
        ),
    ],
)
def test_a_purchase_over_the_largest_total_is_refused(pos_client, buyer, url, total, lines):
    EarningRule.objects.update(rate=Decimal(0))  # no points at all: the total alone is refused
    before = state()

    response = pos_client.post(url, body(buyer, total, lines=lines), format="json")

    problem = assert_problem(response, 422, "amount_too_large")
    assert problem["field"] == "total"
    assert problem["maximum"] == str(MAX_PURCHASE_TOTAL)
    assert state() == before


@pytest.mark.postgres
def test_purchases_up_to_the_limit_move_balances_exactly_past_2_to_the_32(pos_client, program, buyer):
    totals = ["1000000000.00", "999999999.99", "1000000000.00", "1000000000.00", "1000000000.00"]

    answers = [
        pos_client.post(PURCHASES_URL, body(buyer, total, external_id=f"TILL-{i}"), format="json")
        for i, total in enumerate(totals)
    ]

    assert [a.status_code for a in answers] == [201] * 5
    assert [a.json()["points_awarded"] for a in answers] == [10**9, 10**9 - 1, 10**9, 10**9, 10**9]
    assert answers[-1].json()["balances"]["available"] == 5 * 10**9 - 1
    account = Account.objects.get(pk=buyer.pk)
    assert (account.available, account.earned, account.purchases) == (5 * 10**9 - 1, 5 * 10**9 - 1, 5)
    assert ledger_audit() == []


@pytest.mark.postgres
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    totals=st.lists(
        st.one_of(
            st.decimals(min_value=0, max_value=MAX_POINTS_PER_ENTRY + 1, places=2),
            st.decimals(min_value=0, max_value=MAX_PURCHASE_TOTAL, places=2),
            st.sampled_from([Decimal(MAX_POINTS_PER_ENTRY), Decimal(2**31), Decimal(2**32 + 100)]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_purchases_up_to_the_limits_move_the_balance_exactly(pos_client, program, buyer, totals):
    """At 1 point per unit: a purchase worth at most the largest entry credits exactly its points; any
    other is refused and changes nothing. The balance is the sum of the accepted ones, past 2^32 too."""
    member = MemberFactory(program=program)
    expected = 0

    for i, total in enumerate(totals):
        response = pos_client.post(PURCHASES_URL, body(member, f"{total:.2f}", f"H-{member.pk}-{i}"), format="json")

        points = int(total)
        if points <= MAX_POINTS_PER_ENTRY:
            assert response.status_code == 201, response.content
            assert response.json()["points_awarded"] == points
            expected += points
        else:
            assert_problem(response, 422, "amount_too_large")
        balances = Account.objects.filter(pk=member.pk).values_list("available", "pending", "earned").first()
        assert (balances or (0, 0, 0)) == (expected, 0, expected)
    assert ledger_audit(program=program) == []
