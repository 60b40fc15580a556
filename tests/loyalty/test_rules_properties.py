"""Property tests of the earning-rules engine: random baskets, members and rule sets."""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.rules import (
    Basket,
    Line,
    MemberContext,
    RuleKind,
    RuleSpec,
    evaluate_event,
    evaluate_purchase,
    floor_points,
)

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
SKUS = ("A", "B", "C", "GIFT")
CATEGORIES = ("food", "drinks", "cards", "tobacco")
CHANNELS = ("pos", "eshop", "app", "other")
STORES = ("S1", "S2")
TIERS = (1, 2, 3)
EVENTS = ("signup", "birthday", "referral", "app_review")
MAX_RULES = 20

amounts = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
limits = st.integers(min_value=0, max_value=5_000)
some = st.integers(min_value=-3, max_value=3)  # hours around NOW, for active windows


@st.composite
def lines(draw) -> Line:
    quantity = Decimal(draw(st.integers(min_value=1, max_value=5)))
    amount = draw(amounts)
    return Line(
        sku=draw(st.sampled_from(SKUS)),
        category=draw(st.sampled_from(CATEGORIES)),
        quantity=quantity,
        unit_price=amount / quantity,
        amount=amount,
    )


@st.composite
def baskets(draw) -> Basket:
    items = tuple(draw(st.lists(lines(), max_size=10)))
    return Basket(
        lines=items,
        total=sum((item.amount for item in items), Decimal(0)),
        channel=draw(st.sampled_from(CHANNELS)),
        store=draw(st.sampled_from(STORES)),
        occurred_at=NOW,
        local_weekday=draw(st.integers(min_value=0, max_value=6)),
    )


def subsets(values):
    return st.frozensets(st.sampled_from(values), min_size=1, max_size=2)


def moments():
    return some.map(lambda hours: NOW + timedelta(hours=hours))


@st.composite
def rules(draw, kind=None) -> RuleSpec:
    def rarely(strategy, default):
        """A condition or limit set on about one rule in six, so that most rules still apply."""
        return draw(strategy) if draw(st.integers(min_value=0, max_value=5)) == 5 else default

    return RuleSpec(
        id=0,  # set by rule_sets, unique
        name="rule",
        kind=kind or draw(st.sampled_from(RuleKind)),
        priority=draw(st.integers(min_value=0, max_value=5)),
        stop_further=rarely(st.booleans(), False),
        active_from=rarely(moments(), None),
        active_until=rarely(moments(), None),
        skus=rarely(subsets(SKUS), frozenset()),
        categories=rarely(subsets(CATEGORIES), frozenset()),
        excluded_skus=rarely(subsets(SKUS), frozenset()),
        excluded_categories=rarely(subsets(CATEGORIES), frozenset()),
        channels=rarely(subsets(CHANNELS), frozenset()),
        stores=rarely(subsets(STORES), frozenset()),
        weekdays=rarely(st.frozensets(st.integers(min_value=0, max_value=6), min_size=1, max_size=3), frozenset()),
        tier_ids=rarely(subsets(TIERS), frozenset()),
        min_basket=rarely(amounts, None),
        first_purchase=rarely(st.booleans(), False),
        nth_purchase=rarely(st.integers(min_value=1, max_value=4), None),
        event=draw(st.sampled_from(EVENTS)),
        rate=draw(st.decimals(min_value=-1, max_value=10, places=2, allow_nan=False, allow_infinity=False)),
        multiplier=draw(st.decimals(min_value=0, max_value=5, places=2, allow_nan=False, allow_infinity=False)),
        points=draw(st.integers(min_value=-100, max_value=10_000)),
        cap_per_purchase=rarely(limits, None),
        cap_per_member_day=rarely(limits, None),
        cap_per_member_month=rarely(limits, None),
        budget_remaining=rarely(st.integers(min_value=-100, max_value=5_000), None),
    )


@st.composite
def rule_sets(draw) -> list[RuleSpec]:
    specs = draw(st.lists(rules(), min_size=1, max_size=MAX_RULES))
    ids = draw(st.permutations(range(1, MAX_RULES + 1)))
    return [dataclasses.replace(spec, id=id, name=f"rule {id}") for spec, id in zip(specs, ids, strict=False)]


usage = st.dictionaries(st.integers(min_value=1, max_value=MAX_RULES), st.integers(min_value=0, max_value=6_000))
members = st.builds(
    MemberContext,
    tier_id=st.none() | st.sampled_from(TIERS),
    tier_name=st.sampled_from(("Silver", "Gold")),
    tier_multiplier=st.decimals(min_value=0, max_value=3, places=2, allow_nan=False, allow_infinity=False),
    purchases_before=st.integers(min_value=0, max_value=5),
    used_today=usage,
    used_this_month=usage,
)


def _assert_within_limits(evaluation, specs, member):
    by_id = {spec.id: spec for spec in specs}
    rule_ids = [award.rule_id for award in evaluation.awards if award.rule_id is not None]
    assert len(rule_ids) == len(set(rule_ids))  # one award per rule at most
    for award in evaluation.awards:
        assert award.points > 0
        if award.rule_id is None:
            continue
        spec = by_id[award.rule_id]
        assert spec.cap_per_purchase is None or award.points <= spec.cap_per_purchase
        assert spec.budget_remaining is None or award.points <= spec.budget_remaining
        if spec.cap_per_member_day is not None:
            assert award.points <= spec.cap_per_member_day - member.used_today.get(spec.id, 0)
        if spec.cap_per_member_month is not None:
            assert award.points <= spec.cap_per_member_month - member.used_this_month.get(spec.id, 0)


@settings(max_examples=200, deadline=None)
@given(specs=rule_sets(), basket=baskets(), member=members)
def test_purchase_awards_are_positive_within_every_limit_and_the_tier_award_on_top(specs, basket, member):
    evaluation = evaluate_purchase(specs, basket, member)

    _assert_within_limits(evaluation, specs, member)
    by_id = {spec.id: spec for spec in specs}
    rule_awards = [award for award in evaluation.awards if award.rule_id is not None]
    tier_awards = [award for award in evaluation.awards if award.rule_id is None]
    assert all(by_id[award.rule_id].kind != RuleKind.EVENT for award in rule_awards)
    expected_tier = floor_points((member.tier_multiplier - 1) * sum(award.points for award in rule_awards))
    assert sum(award.points for award in tier_awards) == (expected_tier if member.tier_multiplier > 1 else 0)
    assert evaluation.awards[len(rule_awards) :] == tuple(tier_awards)  # the tier award, if any, comes last
    assert evaluation.points == sum(award.points for award in evaluation.awards)


@settings(max_examples=200, deadline=None)
@given(specs=rule_sets(), basket=baskets(), member=members, data=st.data())
def test_purchase_is_deterministic_and_independent_of_the_order_of_the_rules(specs, basket, member, data):
    shuffled = data.draw(st.permutations(specs))

    evaluation = evaluate_purchase(specs, basket, member)

    assert evaluate_purchase(specs, basket, member) == evaluation
    assert evaluate_purchase(shuffled, basket, member) == evaluation
    assert evaluate_purchase(tuple(shuffled), basket, member) == evaluation


@settings(max_examples=200, deadline=None)
@given(spec=rules(kind=RuleKind.BASE_RATE), basket=baskets(), member=members)
def test_a_single_base_rate_gives_the_eligible_amount_times_the_rate_rounded_down(spec, basket, member):
    # given one base-rate rule that applies, without limits, and a member without a tier bonus
    spec = dataclasses.replace(
        spec,
        id=1,
        active_from=None,
        active_until=None,
        channels=frozenset(),
        stores=frozenset(),
        weekdays=frozenset(),
        tier_ids=frozenset(),
        min_basket=None,
        first_purchase=False,
        nth_purchase=None,
        rate=abs(spec.rate),
        cap_per_purchase=None,
        cap_per_member_day=None,
        cap_per_member_month=None,
        budget_remaining=None,
    )
    member = dataclasses.replace(member, tier_multiplier=Decimal(1))
    eligible = sum(
        (
            line.amount
            for line in basket.lines
            if line.sku not in spec.excluded_skus and line.category not in spec.excluded_categories
        ),
        Decimal(0),
    )

    # when
    evaluation = evaluate_purchase([spec], basket, member)

    # then
    assert evaluation.eligible_amount == eligible
    assert evaluation.points == floor_points(eligible * spec.rate)
    assert evaluation.points <= eligible * spec.rate < evaluation.points + 1


@settings(max_examples=200, deadline=None)
@given(
    specs=rule_sets(),
    event=st.sampled_from(EVENTS),
    member=members,
    at=some.map(lambda hours: NOW + timedelta(hours=hours)),
    data=st.data(),
)
def test_event_awards_are_positive_within_limits_and_independent_of_order(specs, event, member, at, data):
    evaluation = evaluate_event(specs, event, at, member)

    by_id = {spec.id: spec for spec in specs}
    _assert_within_limits(evaluation, specs, member)
    for award in evaluation.awards:
        spec = by_id[award.rule_id]  # never a tier award: rule_id is set
        assert spec.kind == RuleKind.EVENT
        assert spec.event == event
        assert award.points <= spec.points
    assert evaluation.eligible_amount == Decimal(0)
    assert evaluate_event(data.draw(st.permutations(specs)), event, at, member) == evaluation
