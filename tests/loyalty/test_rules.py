"""The earning-rules engine (loyalty.rules): pure functions, no database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loyalty.rules import (
    Award,
    Basket,
    Evaluation,
    Line,
    MemberContext,
    RuleKind,
    RuleSpec,
    evaluate_event,
    evaluate_purchase,
)

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # a Wednesday
WEDNESDAY = 2
HOUR = timedelta(hours=1)
GOLD = 7


def line(sku: str = "A", category: str = "food", amount: str = "100.00") -> Line:
    return Line(sku=sku, category=category, quantity=Decimal(1), unit_price=Decimal(amount), amount=Decimal(amount))


def basket(*lines: Line, total: str | None = None, channel: str = "pos", store: str = "S1", at=NOW) -> Basket:
    lines = lines or (line(),)
    amount = Decimal(total) if total is not None else sum((ln.amount for ln in lines), Decimal(0))
    return Basket(lines=lines, total=amount, channel=channel, store=store, occurred_at=at, local_weekday=WEDNESDAY)


# A food line of 100 and a drinks line of 50, on the POS of store S1, on a Wednesday.
MIXED = basket(line("A", "food", "100.00"), line("B", "drinks", "50.00"))


def rule(id: int, kind: RuleKind, **fields) -> RuleSpec:
    return RuleSpec(id=id, name=f"rule {id}", kind=kind, **fields)


def base(id: int = 1, rate: str = "1", **fields) -> RuleSpec:
    return rule(id, RuleKind.BASE_RATE, rate=Decimal(rate), **fields)


def multiplier(id: int = 2, times: str = "2", **fields) -> RuleSpec:
    return rule(id, RuleKind.MULTIPLIER, multiplier=Decimal(times), **fields)


def bonus(id: int = 3, points: int = 50, **fields) -> RuleSpec:
    return rule(id, RuleKind.BONUS, points=points, **fields)


def event_rule(id: int = 4, event: str = "signup", points: int = 200, **fields) -> RuleSpec:
    return rule(id, RuleKind.EVENT, event=event, points=points, **fields)


def member(**fields) -> MemberContext:
    return MemberContext(**fields)


def points_by_rule(evaluation: Evaluation) -> dict[int | None, int]:
    return {award.rule_id: award.points for award in evaluation.awards}


# -- base rate --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "spec", "expected_points", "expected_eligible"),
    [
        pytest.param([line(amount="100.00")], base(rate="1"), 100, "100.00", id="one-point-per-unit"),
        pytest.param([line(amount="1234.50")], base(rate="0.1"), 123, "1234.50", id="rounds-down-1234.50-x0.1"),
        pytest.param([line(amount="99.99")], base(rate="1"), 99, "99.99", id="rounds-down-cents"),
        pytest.param([line(amount="10.00")], base(rate="2.5"), 25, "10.00", id="fractional-rate"),
        pytest.param(
            [line("A", amount="100.00"), line("GIFT", "cards", "50.00")],
            base(excluded_skus=frozenset({"GIFT"})),
            100,
            "100.00",
            id="excluded-sku",
        ),
        pytest.param(
            [line("A", "food", "100.00"), line("CIG", "tobacco", "30.00")],
            base(excluded_categories=frozenset({"tobacco"})),
            100,
            "100.00",
            id="excluded-category",
        ),
        pytest.param(
            [line("A", "food", "100.00"), line("GIFT", "cards", "50.00"), line("CIG", "tobacco", "30.00")],
            base(excluded_skus=frozenset({"GIFT"}), excluded_categories=frozenset({"tobacco"})),
            100,
            "100.00",
            id="excluded-sku-and-category",
        ),
        pytest.param(
            [line("GIFT", "cards", "50.00")], base(excluded_skus=frozenset({"GIFT"})), 0, "0", id="everything-excluded"
        ),
        pytest.param(
            [line("A", "food", "100.00"), line("B", "drinks", "50.00")],
            base(skus=frozenset({"A"}), categories=frozenset({"food"})),
            150,
            "150.00",
            id="skus-and-categories-not-used",
        ),
        pytest.param([line(amount="100.00")], base(rate="0"), 0, "100.00", id="zero-rate"),
        pytest.param([line(amount="100.00")], base(rate="-1"), 0, "100.00", id="negative-rate-left-out"),
        pytest.param([line(amount="-40.00")], base(rate="1"), 0, "-40.00", id="negative-amount-left-out"),
        pytest.param([line(amount="0.00")], base(rate="1"), 0, "0.00", id="zero-amount"),
    ],
)
def test_base_rate(lines, spec, expected_points, expected_eligible):
    evaluation = evaluate_purchase([spec], basket(*lines), member())

    assert evaluation.points == expected_points
    assert evaluation.eligible_amount == Decimal(expected_eligible)
    expected_awards = (Award(rule_id=1, rule="rule 1", points=expected_points),) if expected_points else ()
    assert evaluation.awards == expected_awards


def test_base_rate_of_an_empty_basket_gives_nothing():
    empty = Basket(lines=(), total=Decimal(0), channel="pos", store="S1", occurred_at=NOW, local_weekday=WEDNESDAY)

    evaluation = evaluate_purchase([base()], empty, member())

    assert evaluation == Evaluation(awards=(), eligible_amount=Decimal(0))


# -- multipliers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "context", "expected_extra"),
    [
        pytest.param(multiplier(times="2"), member(), 150, id="all-lines"),
        pytest.param(multiplier(skus=frozenset({"A"})), member(), 100, id="by-sku"),
        pytest.param(multiplier(times="3", categories=frozenset({"drinks"})), member(), 100, id="by-category"),
        pytest.param(
            multiplier(skus=frozenset({"A"}), categories=frozenset({"drinks"})), member(), 150, id="sku-or-category"
        ),
        pytest.param(multiplier(skus=frozenset({"Z"})), member(), 0, id="no-matching-line"),
        pytest.param(multiplier(excluded_skus=frozenset({"A"})), member(), 50, id="excluded-sku"),
        pytest.param(multiplier(excluded_categories=frozenset({"drinks"})), member(), 100, id="excluded-category"),
        pytest.param(
            multiplier(skus=frozenset({"A"}), excluded_categories=frozenset({"food"})),
            member(),
            0,
            id="matching-but-excluded",
        ),
        pytest.param(multiplier(channels=frozenset({"pos"})), member(), 150, id="channel-matches"),
        pytest.param(multiplier(channels=frozenset({"app", "eshop"})), member(), 0, id="channel-differs"),
        pytest.param(multiplier(stores=frozenset({"S1"})), member(), 150, id="store-matches"),
        pytest.param(multiplier(stores=frozenset({"S2"})), member(), 0, id="store-differs"),
        pytest.param(multiplier(weekdays=frozenset({WEDNESDAY})), member(), 150, id="weekday-matches"),
        pytest.param(multiplier(weekdays=frozenset({0, 6})), member(), 0, id="weekday-differs"),
        pytest.param(multiplier(tier_ids=frozenset({GOLD})), member(tier_id=GOLD), 150, id="tier-matches"),
        pytest.param(multiplier(tier_ids=frozenset({GOLD})), member(tier_id=3), 0, id="tier-differs"),
        pytest.param(multiplier(tier_ids=frozenset({GOLD})), member(), 0, id="tier-required-member-without-tier"),
        pytest.param(
            multiplier(skus=frozenset({"B"}), channels=frozenset({"pos"}), weekdays=frozenset({WEDNESDAY})),
            member(),
            50,
            id="sku-and-channel-and-weekday",
        ),
        pytest.param(
            multiplier(skus=frozenset({"B"}), channels=frozenset({"pos"}), stores=frozenset({"S9"})),
            member(),
            0,
            id="sku-and-channel-but-store-differs",
        ),
        pytest.param(multiplier(times="1.5"), member(), 75, id="x1.5"),
        pytest.param(multiplier(times="1.33"), member(), 49, id="x1.33-rounds-down"),
        pytest.param(multiplier(times="1"), member(), 0, id="x1-adds-nothing"),
        pytest.param(multiplier(times="0.5"), member(), 0, id="below-1-never-negative"),
        pytest.param(multiplier(times="0"), member(), 0, id="x0-never-negative"),
    ],
)
def test_multiplier(spec, context, expected_extra):
    evaluation = evaluate_purchase([base(id=1, rate="1"), spec], MIXED, context)

    assert points_by_rule(evaluation).get(1) == 150
    assert points_by_rule(evaluation).get(2, 0) == expected_extra
    assert evaluation.points == 150 + expected_extra


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param([multiplier()], {}, id="without-base-rate-nothing"),
        pytest.param(
            [multiplier(id=2, priority=1), base(id=5, priority=50)], {5: 150, 2: 150}, id="ordered-before-base-rate"
        ),
        pytest.param(
            [base(id=1, rate="1"), base(id=5, rate="0.5"), multiplier()],
            {1: 150, 5: 75, 2: 225},
            id="two-base-rates-summed",
        ),
        pytest.param(
            [base(id=1, excluded_categories=frozenset({"drinks"})), multiplier()],
            {1: 100, 2: 100},
            id="line-excluded-from-base-has-no-base-points",
        ),
        pytest.param(
            [base(id=1, channels=frozenset({"app"})), base(id=5, rate="0.5"), multiplier()],
            {5: 75, 2: 75},
            id="only-base-rates-that-applied",
        ),
        pytest.param(
            [base(id=1), multiplier(id=2, times="2"), multiplier(id=6, times="3", skus=frozenset({"A"}))],
            {1: 150, 2: 150, 6: 200},
            id="multipliers-add-up-on-base-points",
        ),
        pytest.param([base(rate="-1"), multiplier(times="2")], {}, id="negative-base-points-give-nothing"),
        pytest.param(
            [base(rate="-1"), multiplier(times="0.5")], {}, id="below-1-on-negative-base-points-gives-nothing"
        ),
    ],
)
def test_multiplier_base_points(rules, expected):
    evaluation = evaluate_purchase(rules, MIXED, member())

    assert points_by_rule(evaluation) == expected


def test_multiplier_uses_unrounded_base_points_of_lines():
    # given two lines worth 1.5 base points each: rounding per line would give 1 + 1
    two_lines = basket(line("A", amount="15.00"), line("B", amount="15.00"))

    # when
    evaluation = evaluate_purchase([base(rate="0.1"), multiplier(times="2")], two_lines, member())

    # then
    assert points_by_rule(evaluation) == {1: 3, 2: 3}


def test_multiplier_rounds_its_own_award_down():
    evaluation = evaluate_purchase([base(rate="0.1"), multiplier(times="1.5")], basket(line(amount="33.00")), member())

    assert points_by_rule(evaluation) == {1: 3, 2: 1}  # 3.3 -> 3 and 0.5 x 3.3 = 1.65 -> 1


# -- fixed bonuses ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "purchase", "context", "applies"),
    [
        pytest.param(bonus(), MIXED, member(), True, id="unconditional"),
        pytest.param(bonus(min_basket=Decimal("100")), MIXED, member(), True, id="min-basket-exceeded"),
        pytest.param(bonus(min_basket=Decimal("150.00")), MIXED, member(), True, id="min-basket-equal"),
        pytest.param(bonus(min_basket=Decimal("150.01")), MIXED, member(), False, id="min-basket-missed"),
        pytest.param(
            bonus(min_basket=Decimal("150"), excluded_skus=frozenset({"A"})),
            MIXED,
            member(),
            True,
            id="min-basket-on-total-not-eligible-amount",
        ),
        pytest.param(
            bonus(min_basket=Decimal("150")),
            basket(line(amount="200.00"), total="120.00"),
            member(),
            False,
            id="min-basket-on-basket-total",
        ),
        pytest.param(bonus(first_purchase=True), MIXED, member(purchases_before=0), True, id="first-purchase"),
        pytest.param(bonus(first_purchase=True), MIXED, member(purchases_before=1), False, id="second-purchase"),
        pytest.param(bonus(nth_purchase=3), MIXED, member(purchases_before=2), True, id="third-purchase"),
        pytest.param(bonus(nth_purchase=3), MIXED, member(purchases_before=1), False, id="nth-purchase-too-early"),
        pytest.param(bonus(nth_purchase=3), MIXED, member(purchases_before=3), False, id="nth-purchase-too-late"),
        pytest.param(bonus(nth_purchase=1), MIXED, member(purchases_before=0), True, id="nth-purchase-1-is-first"),
        pytest.param(bonus(skus=frozenset({"B"})), MIXED, member(), True, id="sku-in-basket"),
        pytest.param(bonus(skus=frozenset({"Z"})), MIXED, member(), False, id="sku-not-in-basket"),
        pytest.param(bonus(categories=frozenset({"drinks"})), MIXED, member(), True, id="category-in-basket"),
        pytest.param(bonus(categories=frozenset({"toys"})), MIXED, member(), False, id="category-not-in-basket"),
        pytest.param(
            bonus(skus=frozenset({"Z"}), categories=frozenset({"food"})), MIXED, member(), True, id="sku-or-category"
        ),
        pytest.param(bonus(channels=frozenset({"pos"})), MIXED, member(), True, id="channel-matches"),
        pytest.param(bonus(channels=frozenset({"eshop"})), MIXED, member(), False, id="channel-differs"),
        pytest.param(bonus(stores=frozenset({"S1", "S2"})), MIXED, member(), True, id="store-matches"),
        pytest.param(bonus(stores=frozenset({"S2"})), MIXED, member(), False, id="store-differs"),
        pytest.param(bonus(weekdays=frozenset({WEDNESDAY})), MIXED, member(), True, id="weekday-matches"),
        pytest.param(bonus(weekdays=frozenset({5})), MIXED, member(), False, id="weekday-differs"),
        pytest.param(bonus(tier_ids=frozenset({GOLD})), MIXED, member(tier_id=GOLD), True, id="tier-matches"),
        pytest.param(bonus(tier_ids=frozenset({GOLD})), MIXED, member(tier_id=1), False, id="tier-differs"),
        pytest.param(
            bonus(min_basket=Decimal("100"), channels=frozenset({"pos"}), first_purchase=True),
            MIXED,
            member(),
            True,
            id="min-basket-and-channel-and-first-purchase",
        ),
        pytest.param(
            bonus(min_basket=Decimal("100"), channels=frozenset({"pos"}), first_purchase=True),
            MIXED,
            member(purchases_before=4),
            False,
            id="min-basket-and-channel-but-not-first-purchase",
        ),
        pytest.param(
            bonus(skus=frozenset({"A"}), stores=frozenset({"S2"})), MIXED, member(), False, id="sku-but-store-differs"
        ),
    ],
)
def test_bonus(spec, purchase, context, applies):
    evaluation = evaluate_purchase([spec], purchase, context)

    assert evaluation.awards == ((Award(rule_id=3, rule="rule 3", points=50),) if applies else ())


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(bonus(points=0), id="zero-points"),
        pytest.param(bonus(points=-10), id="negative-points"),
    ],
)
def test_bonus_without_positive_points_is_left_out(spec):
    evaluation = evaluate_purchase([base(), spec], MIXED, member())

    assert points_by_rule(evaluation) == {1: 150}


# -- active window ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active_from", "active_until", "applies"),
    [
        pytest.param(None, None, True, id="no-window"),
        pytest.param(NOW, None, True, id="starts-now-inclusive"),
        pytest.param(NOW + timedelta(microseconds=1), None, False, id="starts-just-after"),
        pytest.param(NOW - HOUR, None, True, id="started"),
        pytest.param(None, NOW, False, id="ends-now-exclusive"),
        pytest.param(None, NOW + timedelta(microseconds=1), True, id="ends-just-after"),
        pytest.param(None, NOW - HOUR, False, id="ended"),
        pytest.param(NOW - HOUR, NOW + HOUR, True, id="inside"),
        pytest.param(NOW + HOUR, NOW + 2 * HOUR, False, id="before"),
        pytest.param(NOW - 2 * HOUR, NOW - HOUR, False, id="after"),
    ],
)
@pytest.mark.parametrize("make", [base, multiplier, bonus], ids=["base-rate", "multiplier", "bonus"])
def test_active_window(make, active_from, active_until, applies):
    # given a base rate that always applies so that a windowed multiplier has base points to multiply
    spec = make(id=9, active_from=active_from, active_until=active_until)
    rules = [spec] if make is base else [base(id=1), spec]

    evaluation = evaluate_purchase(rules, MIXED, member())

    assert (9 in points_by_rule(evaluation)) is applies


def test_active_window_compares_instants_across_time_zones():
    prague_noon = datetime(2025, 3, 5, 13, 0, tzinfo=ZoneInfo("Europe/Prague"))  # = NOW (12:00 UTC)

    starts = evaluate_purchase([bonus(active_from=prague_noon)], MIXED, member())
    ends = evaluate_purchase([bonus(active_until=prague_noon)], MIXED, member())

    assert starts.points == 50
    assert ends.points == 0


# -- priority and stop further ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected_ids"),
    [
        pytest.param(
            [bonus(id=3, priority=30), bonus(id=4, priority=10), bonus(id=5, priority=20)],
            [4, 5, 3],
            id="by-priority",
        ),
        pytest.param([bonus(id=8), bonus(id=3), bonus(id=5)], [3, 5, 8], id="same-priority-by-id"),
        pytest.param(
            [bonus(id=3, priority=10, stop_further=True), bonus(id=4, priority=20), base(id=1, priority=30)],
            [3],
            id="stop-further-ends-the-evaluation",
        ),
        pytest.param(
            [bonus(id=3, priority=20, stop_further=True), base(id=1, priority=10), bonus(id=4, priority=30)],
            [1, 3],
            id="earlier-rules-kept",
        ),
        pytest.param(
            [bonus(id=3, priority=10, stop_further=True, channels=frozenset({"app"})), bonus(id=4, priority=20)],
            [4],
            id="stop-further-of-a-rule-that-does-not-apply",
        ),
        pytest.param(
            [bonus(id=3, priority=10, stop_further=True, active_until=NOW), bonus(id=4, priority=20)],
            [4],
            id="stop-further-of-an-inactive-rule",
        ),
        pytest.param(
            [bonus(id=3, priority=10, stop_further=True, budget_remaining=0), bonus(id=4, priority=20)],
            [],
            id="stop-further-of-a-rule-limited-to-zero",
        ),
        pytest.param(
            [bonus(id=3, priority=10, stop_further=True, points=0), bonus(id=4, priority=20)],
            [],
            id="stop-further-of-a-zero-bonus",
        ),
        pytest.param(
            [bonus(id=3, priority=5, stop_further=True), base(id=1, priority=10), multiplier(id=2, priority=1)],
            [3],
            id="base-rate-stopped-so-multiplier-has-nothing",
        ),
        pytest.param(
            [bonus(id=3, priority=10, stop_further=True), bonus(id=2, priority=10)],
            [2, 3],
            id="stop-on-equal-priority-after-lower-id",
        ),
    ],
)
def test_priority_and_stop_further(rules, expected_ids):
    evaluation = evaluate_purchase(rules, MIXED, member())

    assert [award.rule_id for award in evaluation.awards] == expected_ids
    assert evaluate_purchase(list(reversed(rules)), MIXED, member()) == evaluation


def test_stop_further_on_a_multiplier_keeps_base_rate_that_ran_before():
    rules = [base(id=1, priority=10), multiplier(id=2, priority=20, stop_further=True), bonus(id=3, priority=30)]

    evaluation = evaluate_purchase(rules, MIXED, member())

    assert points_by_rule(evaluation) == {1: 150, 2: 150}


# -- limits -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "context", "expected"),
    [
        pytest.param({}, member(), 100, id="no-limit"),
        pytest.param({"cap_per_purchase": 30}, member(), 30, id="per-purchase"),
        pytest.param({"cap_per_purchase": 500}, member(), 100, id="per-purchase-not-reached"),
        pytest.param({"cap_per_purchase": 0}, member(), 0, id="per-purchase-zero"),
        pytest.param({"cap_per_member_day": 150}, member(used_today={3: 100}), 50, id="day-with-earlier-awards"),
        pytest.param({"cap_per_member_day": 150}, member(), 100, id="day-without-earlier-awards"),
        pytest.param({"cap_per_member_day": 100}, member(used_today={3: 100}), 0, id="day-used-up"),
        pytest.param({"cap_per_member_day": 100}, member(used_today={3: 120}), 0, id="day-overused-never-negative"),
        pytest.param({"cap_per_member_day": 150}, member(used_today={9: 100}), 100, id="day-other-rule-usage-ignored"),
        pytest.param(
            {"cap_per_member_day": 150}, member(used_this_month={3: 140}), 100, id="day-cap-ignores-month-usage"
        ),
        pytest.param({"cap_per_member_month": 500}, member(used_this_month={3: 450}), 50, id="month-with-earlier"),
        pytest.param({"cap_per_member_month": 500}, member(used_this_month={3: 500}), 0, id="month-used-up"),
        pytest.param({"cap_per_member_month": 500}, member(used_today={3: 450}), 100, id="month-ignores-day-usage"),
        pytest.param({"budget_remaining": 20}, member(), 20, id="budget"),
        pytest.param({"budget_remaining": 0}, member(), 0, id="budget-exhausted"),
        pytest.param({"budget_remaining": -5}, member(), 0, id="budget-overdrawn-never-negative"),
        pytest.param({"budget_remaining": 1000}, member(), 100, id="budget-ample"),
        pytest.param(
            {"cap_per_purchase": 80, "cap_per_member_day": 200, "cap_per_member_month": 1000, "budget_remaining": 65},
            member(used_today={3: 130}, used_this_month={3: 940}),
            60,
            id="combined-month-smallest",
        ),
        pytest.param(
            {"cap_per_purchase": 40, "cap_per_member_day": 200, "cap_per_member_month": 1000, "budget_remaining": 65},
            member(used_today={3: 130}, used_this_month={3: 940}),
            40,
            id="combined-per-purchase-smallest",
        ),
        pytest.param(
            {"cap_per_purchase": 80, "cap_per_member_day": 200, "cap_per_member_month": 1000, "budget_remaining": 65},
            member(used_today={3: 170}, used_this_month={3: 940}),
            30,
            id="combined-day-smallest",
        ),
        pytest.param(
            {"cap_per_purchase": 80, "cap_per_member_day": 200, "cap_per_member_month": 1000, "budget_remaining": 25},
            member(used_today={3: 130}, used_this_month={3: 940}),
            25,
            id="combined-budget-smallest",
        ),
    ],
)
def test_limits(limits, context, expected):
    evaluation = evaluate_purchase([bonus(id=3, points=100, **limits)], MIXED, context)

    assert evaluation.awards == ((Award(rule_id=3, rule="rule 3", points=expected),) if expected else ())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(base(cap_per_purchase=100), 100, id="base-rate"),
        pytest.param(multiplier(budget_remaining=7), 7, id="multiplier"),
    ],
)
def test_limits_apply_to_computed_points(spec, expected):
    rules = [spec] if spec.kind == RuleKind.BASE_RATE else [base(id=1), spec]

    evaluation = evaluate_purchase(rules, MIXED, member())

    assert points_by_rule(evaluation)[spec.id] == expected


def test_limits_are_per_rule():
    rules = [bonus(id=3, points=100, budget_remaining=10), bonus(id=4, points=100, budget_remaining=90)]

    evaluation = evaluate_purchase(rules, MIXED, member())

    assert points_by_rule(evaluation) == {3: 10, 4: 90}


def test_multiplier_uses_base_points_before_the_base_rate_limits():
    # The base rate's cap limits its own award, not the base points a multiplier scales.
    evaluation = evaluate_purchase([base(cap_per_purchase=10), multiplier()], MIXED, member())

    assert points_by_rule(evaluation) == {1: 10, 2: 150}


# -- tier multiplier --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "rules", "expected"),
    [
        pytest.param(
            member(tier_name="Gold", tier_multiplier=Decimal("1.5")),
            [base(), bonus()],
            Award(rule_id=None, rule="Gold tier x1.5", points=100),
            id="x1.5-on-the-sum",
        ),
        pytest.param(
            member(tier_name="Gold", tier_multiplier=Decimal("1.50")),
            [base()],
            Award(rule_id=None, rule="Gold tier x1.5", points=75),
            id="trailing-zero-dropped",
        ),
        pytest.param(
            member(tier_name="Silver", tier_multiplier=Decimal("2.0")),
            [base()],
            Award(rule_id=None, rule="Silver tier x2", points=150),
            id="whole-multiplier",
        ),
        pytest.param(
            member(tier_name="Platinum", tier_multiplier=Decimal("10")),
            [base()],
            Award(rule_id=None, rule="Platinum tier x10", points=1350),
            id="x10-not-exponent",
        ),
        pytest.param(
            member(tier_name="Gold", tier_multiplier=Decimal("1.25")),
            [bonus(points=3)],
            None,
            id="rounds-down-to-zero-left-out",
        ),
        pytest.param(
            member(tier_name="Gold", tier_multiplier=Decimal("1.1")),
            [bonus(points=19)],
            Award(rule_id=None, rule="Gold tier x1.1", points=1),
            id="rounds-down",
        ),
        pytest.param(member(tier_name="Basic", tier_multiplier=Decimal("1")), [base()], None, id="x1-nothing"),
        pytest.param(member(tier_name="Odd", tier_multiplier=Decimal("0.5")), [base()], None, id="below-1-nothing"),
        pytest.param(
            member(tier_name="Gold", tier_multiplier=Decimal("2")),
            [bonus(points=100, cap_per_purchase=30)],
            Award(rule_id=None, rule="Gold tier x2", points=30),
            id="after-the-limits",
        ),
        pytest.param(
            member(tier_name="Gold", tier_multiplier=Decimal("2")),
            [bonus(channels=frozenset({"app"}))],
            None,
            id="no-rule-awards",
        ),
    ],
)
def test_tier_multiplier(context, rules, expected):
    evaluation = evaluate_purchase(rules, MIXED, context)

    rule_awards = [award for award in evaluation.awards if award.rule_id is not None]
    tier_awards = [award for award in evaluation.awards if award.rule_id is None]
    assert tier_awards == ([expected] if expected else [])
    assert evaluation.awards[-1:] == ((expected,) if expected else tuple(rule_awards[-1:]))


# -- eligible amount --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param([], "150.00", id="no-rules-basket-total"),
        pytest.param([bonus()], "150.00", id="no-base-rate-basket-total"),
        pytest.param([base(excluded_skus=frozenset({"B"}))], "100.00", id="base-rate-exclusions"),
        pytest.param(
            [base(id=1, priority=20, excluded_skus=frozenset({"B"})), base(id=5, priority=10, rate="0")],
            "150.00",
            id="first-applying-base-rate-by-priority",
        ),
        pytest.param(
            [base(id=1, channels=frozenset({"app"})), base(id=5, excluded_skus=frozenset({"A"}))],
            "50.00",
            id="base-rate-that-did-not-apply-skipped",
        ),
        pytest.param([base(id=1, excluded_skus=frozenset({"A", "B"}))], "0", id="everything-excluded-zero-not-total"),
    ],
)
def test_eligible_amount(rules, expected):
    evaluation = evaluate_purchase(rules, basket(*MIXED.lines, total="150.00"), member())

    assert evaluation.eligible_amount == Decimal(expected)


def test_eligible_amount_is_the_basket_total_when_no_base_rate_applies():
    evaluation = evaluate_purchase([], basket(line(amount="100.00"), total="97.50"), member())

    assert evaluation.eligible_amount == Decimal("97.50")


# -- events -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "event", "context", "expected"),
    [
        pytest.param([event_rule(event="signup")], "signup", member(), {4: 200}, id="signup"),
        pytest.param([event_rule(event="birthday", points=500)], "birthday", member(), {4: 500}, id="birthday"),
        pytest.param([event_rule(event="app_review", points=30)], "app_review", member(), {4: 30}, id="custom-name"),
        pytest.param([event_rule(event="signup")], "birthday", member(), {}, id="other-event"),
        pytest.param([event_rule(event="signup")], "Signup", member(), {}, id="name-is-case-sensitive"),
        pytest.param(
            [event_rule(id=4, event="signup"), event_rule(id=5, event="birthday"), event_rule(id=6, event="signup")],
            "signup",
            member(),
            {4: 200, 6: 200},
            id="only-rules-of-the-event",
        ),
        pytest.param(
            [bonus(id=3, event="signup"), base(id=1, event="signup"), multiplier(id=2)],
            "signup",
            member(),
            {},
            id="purchase-rules-ignored",
        ),
        pytest.param(
            [event_rule(tier_ids=frozenset({GOLD}))], "signup", member(tier_id=GOLD), {4: 200}, id="tier-matches"
        ),
        pytest.param([event_rule(tier_ids=frozenset({GOLD}))], "signup", member(tier_id=1), {}, id="tier-differs"),
        pytest.param(
            [event_rule(first_purchase=True, nth_purchase=3)],
            "signup",
            member(purchases_before=5),
            {4: 200},
            id="purchase-counts-ignored",
        ),
        pytest.param(
            [event_rule(channels=frozenset({"app"}), min_basket=Decimal("100"), weekdays=frozenset({6}))],
            "signup",
            member(),
            {4: 200},
            id="basket-conditions-ignored",
        ),
        pytest.param([event_rule(active_from=NOW)], "signup", member(), {4: 200}, id="window-starts-now"),
        pytest.param([event_rule(active_until=NOW)], "signup", member(), {}, id="window-ended-now"),
        pytest.param([event_rule(active_from=NOW + HOUR)], "signup", member(), {}, id="window-not-started"),
        pytest.param([event_rule(cap_per_purchase=50)], "signup", member(), {4: 50}, id="cap"),
        pytest.param(
            [event_rule(event="birthday", cap_per_member_month=300)],
            "birthday",
            member(used_this_month={4: 250}),
            {4: 50},
            id="month-allowance",
        ),
        pytest.param(
            [event_rule(cap_per_member_day=200)], "signup", member(used_today={4: 200}), {}, id="day-allowance-used"
        ),
        pytest.param([event_rule(budget_remaining=120)], "signup", member(), {4: 120}, id="budget"),
        pytest.param(
            [event_rule(id=4, priority=20), event_rule(id=5, priority=10, stop_further=True)],
            "signup",
            member(),
            {5: 200},
            id="stop-further",
        ),
        pytest.param(
            [event_rule(id=4, priority=20), event_rule(id=5, priority=10, stop_further=True, event="birthday")],
            "signup",
            member(),
            {4: 200},
            id="stop-further-of-another-event",
        ),
        pytest.param(
            [event_rule(id=4, priority=10, stop_further=True, budget_remaining=0), event_rule(id=5, priority=20)],
            "signup",
            member(),
            {},
            id="stop-further-limited-to-zero",
        ),
        pytest.param([event_rule(points=0)], "signup", member(), {}, id="zero-left-out"),
        pytest.param([event_rule(points=-100)], "signup", member(), {}, id="negative-left-out"),
        pytest.param(
            [event_rule()],
            "signup",
            member(tier_name="Gold", tier_multiplier=Decimal("2")),
            {4: 200},
            id="no-tier-multiplier",
        ),
    ],
)
def test_event(rules, event, context, expected):
    evaluation = evaluate_event(rules, event, NOW, context)

    assert points_by_rule(evaluation) == expected
    assert evaluation.eligible_amount == Decimal(0)


def test_event_awards_in_priority_order_with_names():
    rules = [event_rule(id=6, priority=30), event_rule(id=4, priority=10, points=10), event_rule(id=5, priority=20)]

    evaluation = evaluate_event(rules, "signup", NOW, member())

    assert evaluation.awards == (
        Award(rule_id=4, rule="rule 4", points=10),
        Award(rule_id=5, rule="rule 5", points=200),
        Award(rule_id=6, rule="rule 6", points=200),
    )
    assert evaluation.points == 410


def test_event_rules_do_not_apply_to_purchases():
    evaluation = evaluate_purchase([event_rule(event="signup"), base()], MIXED, member())

    assert points_by_rule(evaluation) == {1: 150}


def test_event_rule_with_stop_further_does_not_stop_a_purchase():
    rules = [event_rule(priority=1, stop_further=True), base(priority=50)]

    evaluation = evaluate_purchase(rules, MIXED, member())

    assert points_by_rule(evaluation) == {1: 150}


# -- a whole purchase -------------------------------------------------------------------------------------------------


def test_a_purchase_with_every_kind_of_rule():
    # given a Gold member's second purchase of food, drinks and a gift card
    purchase = basket(
        line("A", "food", "120.40"), line("B", "drinks", "30.00"), line("GIFT", "cards", "50.00"), channel="app"
    )
    rules = [
        base(id=1, rate="1", excluded_categories=frozenset({"cards"})),
        multiplier(id=2, times="2", categories=frozenset({"drinks"})),
        multiplier(id=3, times="3", channels=frozenset({"pos"})),  # not on the app
        bonus(id=4, points=100, min_basket=Decimal("200")),
        bonus(id=5, points=500, first_purchase=True),  # not the first purchase
        bonus(id=6, points=40, skus=frozenset({"GIFT"}), cap_per_member_day=50),
        event_rule(id=7, event="signup"),
    ]
    context = member(
        tier_id=GOLD, tier_name="Gold", tier_multiplier=Decimal("1.25"), purchases_before=1, used_today={6: 20}
    )

    # when
    evaluation = evaluate_purchase(rules, purchase, context)

    # then
    assert evaluation.awards == (
        Award(rule_id=1, rule="rule 1", points=150),  # 150.40 rounded down
        Award(rule_id=2, rule="rule 2", points=30),
        Award(rule_id=4, rule="rule 4", points=100),
        Award(rule_id=6, rule="rule 6", points=30),  # 50 a day, 20 already earned today
        Award(rule_id=None, rule="Gold tier x1.25", points=77),  # 0.25 x 310 = 77.5
    )
    assert evaluation.points == 387
    assert evaluation.eligible_amount == Decimal("150.40")


def test_evaluation_does_not_depend_on_the_order_of_the_rules():
    rules = [base(id=1), multiplier(id=2, priority=5), bonus(id=3, priority=5, stop_further=True), bonus(id=4)]

    forward = evaluate_purchase(rules, MIXED, member())
    backward = evaluate_purchase(tuple(reversed(rules)), MIXED, member())

    assert forward == backward


def test_eligible_lines_follow_the_first_base_rate_rule():
    base = RuleSpec(
        id=1, name="Base", kind=RuleKind.BASE_RATE, rate=Decimal("0.1"), excluded_categories=frozenset({"gift"})
    )
    basket = Basket(
        lines=(
            Line(sku="A", category="books", quantity=Decimal(1), unit_price=Decimal(100), amount=Decimal(100)),
            Line(sku="G", category="gift", quantity=Decimal(1), unit_price=Decimal(50), amount=Decimal(50)),
        ),
        total=Decimal(150),
        channel="pos",
        store="S1",
        occurred_at=datetime(2026, 11, 23, 10, tzinfo=UTC),
        local_weekday=0,
    )

    with_rule = evaluate_purchase([base], basket, MemberContext())
    without_rules = evaluate_purchase([], basket, MemberContext())

    assert (with_rule.eligible_amount, with_rule.eligible_lines) == (Decimal(100), (True, False))
    assert (without_rules.eligible_amount, without_rules.eligible_lines) == (Decimal(150), (True, True))
