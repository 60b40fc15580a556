"""Property tests of returns: any sequence of partial returns never reverses more than the purchase was
awarded, never less as more is returned, and returning everything reverses exactly everything."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.audit import ledger_audit
from loyalty.models import Account, Purchase, Return
from loyalty.reversals import Returned, points_reversed_in_all
from loyalty.rules import Basket, Line, MemberContext, RuleKind, RuleSpec, evaluate_purchase
from loyalty.ruleset import program_ruleset
from loyalty.services.ledger import ledger_debit
from loyalty.services.returns import ReturnLineInput, return_record
from tests.builders import line, purchase, rule
from tests.factories import MemberFactory, ProgramFactory

CENT = Decimal("0.01")
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
SKUS = ("A", "B", "C", "D", "E", "F")
CATEGORIES = ("books", "food")

money = st.decimals(min_value=0, max_value=5_000, places=2, allow_nan=False, allow_infinity=False)
parts = st.decimals(min_value=Decimal("0.01"), max_value=1, places=2, allow_nan=False, allow_infinity=False)
# ("line", line index, part of what is left of it) or ("amount", part of what is left of the purchase)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("line"), st.integers(min_value=0, max_value=len(SKUS) - 1), parts),
        st.tuples(st.just("amount"), parts),
    ),
    max_size=8,
)


@st.composite
def baskets(draw) -> Basket:
    amounts = draw(st.lists(money, min_size=1, max_size=len(SKUS)))
    lines = tuple(
        Line(sku=sku, category=draw(st.sampled_from(CATEGORIES)), quantity=Decimal(1), unit_price=a, amount=a)
        for sku, a in zip(SKUS, amounts, strict=False)
    )
    total = sum((line.amount for line in lines), Decimal(0))
    return Basket(lines=lines, total=total, channel="pos", store="", occurred_at=NOW, local_weekday=2)


def rule_specs() -> st.SearchStrategy[list[RuleSpec]]:
    """Rules as the admin allows them (rate >= 0, multiplier > 1), with the conditions a return re-checks."""
    rates = st.decimals(min_value=0, max_value=3, places=2, allow_nan=False, allow_infinity=False)
    minimum = st.none() | money
    names = st.frozensets(st.sampled_from(SKUS), max_size=2)
    caps = st.none() | st.integers(min_value=0, max_value=500)
    common = {"id": st.just(0), "name": st.just("rule"), "priority": st.integers(min_value=0, max_value=3)}
    kinds = st.one_of(
        st.builds(
            RuleSpec, kind=st.just(RuleKind.BASE_RATE), rate=rates, min_basket=minimum, cap_per_purchase=caps, **common
        ),
        st.builds(
            RuleSpec,
            kind=st.just(RuleKind.MULTIPLIER),
            multiplier=st.decimals(min_value="1.01", max_value=4, places=2, allow_nan=False, allow_infinity=False),
            categories=st.frozensets(st.sampled_from(CATEGORIES), max_size=1),
            min_basket=minimum,
            cap_per_purchase=caps,
            **common,
        ),
        st.builds(
            RuleSpec,
            kind=st.just(RuleKind.BONUS),
            points=st.integers(min_value=1, max_value=300),
            skus=names,
            min_basket=minimum,
            **common,
        ),
    )
    return st.lists(kinds, min_size=1, max_size=6).map(
        lambda specs: [replace(spec, id=i, name=f"rule {i}") for i, spec in enumerate(specs, start=1)]
    )


def _floor_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_FLOOR)


class Till:
    """What the returns of a purchase add up to, as `return_record` books them."""

    def __init__(self, amounts: tuple[Decimal, ...]):
        self.amounts = amounts
        self.total = sum(amounts, Decimal(0))
        self.by_line = [Decimal(0)] * len(amounts)
        self.returned = Decimal(0)

    def next_return(self, step) -> tuple[int | None, Decimal]:
        """(line index or None for an amount, money) of the step, or money 0 when it returns nothing."""
        left = self.total - self.returned
        if step[0] == "line":
            index = step[1] % len(self.amounts)
            money = min(_floor_cents((self.amounts[index] - self.by_line[index]) * step[2]), left)
            return index, money
        return None, _floor_cents(left * step[1])

    def book(self, index: int | None, money: Decimal) -> None:
        self.returned += money
        if index is not None:
            self.by_line[index] += money

    def state(self) -> Returned:
        return Returned(
            total=self.total,
            returned_total=self.returned,
            line_money=sum(self.by_line, Decimal(0)),
            lines_left=tuple(
                (a - r) / a if a > 0 else Decimal(1) for a, r in zip(self.amounts, self.by_line, strict=True)
            ),
        )


@settings(max_examples=300)
@given(
    basket=baskets(),
    specs=rule_specs(),
    tier=st.decimals(min_value=1, max_value=2, places=1),
    steps=steps,
    nth=st.integers(min_value=0, max_value=3),
)
def test_reversals_grow_with_returns_up_to_exactly_the_award(basket, specs, tier, steps, nth):
    awards = evaluate_purchase(specs, basket, MemberContext(tier_multiplier=tier, purchases_before=nth)).awards
    awarded = sum(award.points for award in awards)
    till = Till(tuple(line.amount for line in basket.lines))
    reversed_so_far = 0

    for step in steps:
        index, money = till.next_return(step)
        if money <= 0:
            continue
        till.book(index, money)
        target = points_reversed_in_all(awards, till.state())
        assert reversed_so_far <= target <= awarded
        reversed_so_far = target

    till.book(None, till.total - till.returned)
    assert points_reversed_in_all(awards, till.state()) == awarded


@settings(max_examples=300)
@given(basket=baskets(), specs=rule_specs())
def test_returning_every_line_reverses_everything_and_a_line_never_more_than_the_rest_keeps(basket, specs):
    awards = evaluate_purchase(specs, basket, MemberContext()).awards
    awarded = sum(award.points for award in awards)
    till = Till(tuple(line.amount for line in basket.lines))

    for index, amount in enumerate(till.amounts):
        till.book(index, amount)
        assert 0 <= points_reversed_in_all(awards, till.state()) <= awarded

    assert points_reversed_in_all(awards, till.state()) == awarded


# --- through the service, on the database ----------------------------------------------------------------------------

SERVICE_LINES = (("A", "books", "500.00"), ("B", "food", "333.33"), ("C", "food", "166.67"), ("D", "books", "0.00"))


def _service_rules(program) -> None:
    for fields in (
        {"name": "Base", "kind": "base_rate", "rate": Decimal("0.1")},
        {"name": "Books x3", "kind": "multiplier", "multiplier": Decimal(3), "categories": "books"},
        {"name": "Big basket", "kind": "bonus", "points": 50, "min_basket": Decimal(700)},
        {"name": "Food in basket", "kind": "bonus", "points": 20, "categories": "food"},
        {"name": "C in basket", "kind": "bonus", "points": 15, "skus": "C"},
    ):
        rule(program, **fields)


ROUNDING = 2  # a reversal rounds down, so each line-based award may leave the member one point more


def _points_of_the_rest(program, lines, till) -> int:
    """What the lines not returned would earn as a purchase of their own."""
    rest = tuple(
        Line(
            sku=line.sku,
            category=line.category,
            quantity=Decimal(1),
            unit_price=line.amount - r,
            amount=line.amount - r,
        )
        for line, r in zip(lines, till.by_line, strict=True)
        if r < line.amount or line.amount == 0
    )
    basket = Basket(
        lines=rest, total=till.total - till.returned, channel="pos", store="", occurred_at=NOW, local_weekday=2
    )
    return evaluate_purchase(program_ruleset(program).rules, basket, MemberContext()).points


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, spent=st.integers(min_value=0, max_value=300))
def test_any_sequence_of_returns_reverses_at_most_the_award_and_all_of_it_in_the_end(steps, spent):
    program = ProgramFactory(currency="CZK")
    _service_rules(program)
    member = MemberFactory(program=program)
    lines = [line(sku, a, category) for sku, category, a in SERVICE_LINES]
    awarded = purchase(member, "P1", 1000, lines=lines, occurred_at=timezone.now() - timedelta(minutes=1)).points
    assert awarded == 100 + 100 + 50 + 20 + 15  # base, books x3 on 50, the three bonuses
    if spent:  # what the member spent before returning comes back as debt
        ledger_debit(member=member, amount=min(spent, awarded))
    till = Till(tuple(line.amount for line in lines))

    for i, step in enumerate(steps):
        index, money = till.next_return(step)
        if money <= 0:
            continue
        till.book(index, money)
        return_record(
            program=program,
            external_id=f"R{i}",
            purchase_external_id="P1",
            lines=(ReturnLineInput(sku=SKUS[index], amount=money),) if index is not None else (),
            amount=money if index is None else None,
        )
        reversed_ = Purchase.objects.get(program=program).points_reversed
        assert reversed_ == sum(Return.objects.filter(program=program).values_list("points_reversed", flat=True))
        assert reversed_ <= awarded
        if till.returned == sum(till.by_line):  # lines only: the member keeps what the rest would earn
            assert awarded - reversed_ <= _points_of_the_rest(program, lines, till) + ROUNDING

    if till.returned < till.total:
        return_record(program=program, external_id="LAST", purchase_external_id="P1", amount=till.total - till.returned)
    assert Purchase.objects.get(program=program).points_reversed == awarded
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.pending, account.debt) == (0, 0, min(spent, awarded))
    assert ledger_audit(program=program) == []
