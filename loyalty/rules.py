"""Earning rules, evaluated in memory: pure functions on plain dataclasses, no ORM.

The purchase service compiles a program's `EarningRule` rows into `RuleSpec`s
once (cached per program and invalidated when a rule changes), builds a
`Basket` and a `MemberContext`, and calls `evaluate_purchase`. The number of
rules therefore never changes the number of SQL queries of a purchase.

Semantics (DESIGN.md section 4):
- Rules run in order of (priority, id); a rule that applies and has
  `stop_further` ends the evaluation.
- A rule applies when it is active at the purchase time (`active_from <= t <
  active_until`, either bound optional) and every condition it sets holds:
  channels, stores, local weekdays (0 = Monday), tiers, minimum basket (on the
  basket total), first purchase, n-th purchase (the n-th purchase of the
  member, this one included), SKUs/categories in the basket (for bonuses).
- base rate: `rate` points per currency unit of the eligible amount: the sum of
  the amounts of lines not excluded by the rule's `excluded_skus` /
  `excluded_categories`, rounded down.
- multiplier: x`multiplier` on the base points of the matching lines (lines
  whose SKU or category the rule names; all lines when it names none): it adds
  `(multiplier - 1) * base points of those lines`, rounded down.
- bonus: `points` points.
- Limits per rule, applied in this order: `cap_per_purchase`, then what is
  left of `cap_per_member_day` and `cap_per_member_month` after the member's
  earlier awards from that rule (`MemberContext.used_today` /
  `used_this_month`), then what is left of the total `budget_remaining`. An
  award is never negative; an award of 0 is left out.
- The tier's earn multiplier applies on top of the sum of all rule awards, as
  one more award with `rule_id=None`.
- Each purchase award carries its basis: its share of each line, the minimum
  basket and the lines that met its "SKU in basket" condition. They are stored
  with the award, and returns reverse by them (`loyalty.reversals`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal


class RuleKind(enum.StrEnum):
    BASE_RATE = "base_rate"
    MULTIPLIER = "multiplier"
    BONUS = "bonus"
    EVENT = "event"


@dataclass(frozen=True)
class Line:
    sku: str
    category: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Basket:
    lines: tuple[Line, ...]
    total: Decimal
    channel: str
    store: str
    occurred_at: datetime
    local_weekday: int  # 0 = Monday, in the program's time zone


@dataclass(frozen=True)
class MemberContext:
    tier_id: int | None = None
    tier_name: str = ""
    tier_multiplier: Decimal = Decimal(1)
    purchases_before: int = 0  # the member's earlier purchases: 0 means this is the first
    used_today: Mapping[int, int] = field(default_factory=dict)  # rule id -> points already awarded today
    used_this_month: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSpec:
    id: int
    name: str
    kind: RuleKind
    priority: int = 100
    stop_further: bool = False
    active_from: datetime | None = None
    active_until: datetime | None = None
    # conditions
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    excluded_skus: frozenset[str] = frozenset()
    excluded_categories: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    stores: frozenset[str] = frozenset()
    weekdays: frozenset[int] = frozenset()
    tier_ids: frozenset[int] = frozenset()
    min_basket: Decimal | None = None
    first_purchase: bool = False
    nth_purchase: int | None = None
    event: str = ""  # for EVENT rules: signup, birthday, referral, profile_completed, nps_answer, or a custom name
    # effect
    rate: Decimal = Decimal(0)
    multiplier: Decimal = Decimal(1)
    points: int = 0
    # limits
    cap_per_purchase: int | None = None
    cap_per_member_day: int | None = None
    cap_per_member_month: int | None = None
    budget_remaining: int | None = None


@dataclass(frozen=True)
class Award:
    rule_id: int | None  # None: the tier's multiplier on top of the rule awards
    rule: str
    points: int
    # What a return re-checks (loyalty.reversals), recorded with the award because rules change later:
    # the award's unrounded share of each basket line (base rate and multiplier; none for a bonus), the
    # minimum basket the rule required, and the lines that met its "SKU in basket" condition (bonuses).
    line_shares: tuple[Decimal, ...] = field(default=(), compare=False)
    min_basket: Decimal | None = field(default=None, compare=False)
    needs_lines: tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Evaluation:
    awards: tuple[Award, ...]
    eligible_amount: Decimal  # under the first base-rate rule that applied (the basket total if none did)
    eligible_lines: tuple[bool, ...] = ()  # per basket line, on the same terms (stored with the purchase's lines)

    @property
    def points(self) -> int:
        return sum(award.points for award in self.awards)


def floor_points(value: Decimal) -> int:
    """Points are whole; every rule rounds down."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def evaluate_purchase(rules: Sequence[RuleSpec], basket: Basket, member: MemberContext) -> Evaluation:
    """Awards of the purchase rules (base rate, multiplier, bonus) for `basket`, the tier's award on top."""
    applied = _applied_in_order(rules, lambda rule: rule.kind != RuleKind.EVENT and _applies(rule, basket, member))
    base_rules = [rule for rule in applied if rule.kind == RuleKind.BASE_RATE]
    line_base = _line_base_points(base_rules, basket.lines)
    awards = _awards(
        applied,
        member,
        lambda rule: _raw_points(rule, basket, line_base),
        lambda rule, points: _purchase_award(rule, points, basket, line_base),
    )
    awards.extend(_tier_award(awards, member))
    eligible = _eligible_amount(base_rules[0], basket.lines) if base_rules else basket.total
    lines = tuple(not (base_rules and _excluded(base_rules[0], line)) for line in basket.lines)
    return Evaluation(awards=tuple(awards), eligible_amount=eligible, eligible_lines=lines)


def evaluate_event(rules: Sequence[RuleSpec], event: str, occurred_at: datetime, member: MemberContext) -> Evaluation:
    """Awards of the EVENT rules named `event` active at `occurred_at` (limits apply as for purchases)."""

    def applies(rule: RuleSpec) -> bool:
        # An event has no basket and is not a purchase: only the window and the tier are checked.
        return (
            rule.kind == RuleKind.EVENT
            and rule.event == event
            and _active(rule, occurred_at)
            and _tier_holds(rule, member)
        )

    awards = _awards(_applied_in_order(rules, applies), member, lambda rule: rule.points)
    return Evaluation(awards=tuple(awards), eligible_amount=Decimal(0))


# -- which rules apply ------------------------------------------------------------------------------------------------


def _applied_in_order(rules: Sequence[RuleSpec], applies: Callable[[RuleSpec], bool]) -> list[RuleSpec]:
    """The rules that apply, in (priority, id) order, up to and including the first applying one that stops."""
    applied = []
    for rule in sorted(rules, key=lambda rule: (rule.priority, rule.id)):
        if not applies(rule):
            continue
        applied.append(rule)
        if rule.stop_further:
            break
    return applied


def _applies(rule: RuleSpec, basket: Basket, member: MemberContext) -> bool:
    return (
        _active(rule, basket.occurred_at)
        and _basket_holds(rule, basket)
        and _tier_holds(rule, member)
        and _purchase_count_holds(rule, member)
    )


def _active(rule: RuleSpec, at: datetime) -> bool:
    """`active_from` inclusive, `active_until` exclusive, either optional."""
    starts_ok = rule.active_from is None or rule.active_from <= at
    return starts_ok and (rule.active_until is None or at < rule.active_until)


def _basket_holds(rule: RuleSpec, basket: Basket) -> bool:
    return (
        (not rule.channels or basket.channel in rule.channels)
        and (not rule.stores or basket.store in rule.stores)
        and (not rule.weekdays or basket.local_weekday in rule.weekdays)
        and (rule.min_basket is None or basket.total >= rule.min_basket)
        and (rule.kind != RuleKind.BONUS or not _names_lines(rule) or any(_selects(rule, ln) for ln in basket.lines))
    )


def _tier_holds(rule: RuleSpec, member: MemberContext) -> bool:
    return not rule.tier_ids or member.tier_id in rule.tier_ids


def _purchase_count_holds(rule: RuleSpec, member: MemberContext) -> bool:
    number = member.purchases_before + 1  # this purchase included
    return (not rule.first_purchase or number == 1) and (rule.nth_purchase is None or number == rule.nth_purchase)


# -- lines ------------------------------------------------------------------------------------------------------------


def _names_lines(rule: RuleSpec) -> bool:
    return bool(rule.skus or rule.categories)


def _selects(rule: RuleSpec, line: Line) -> bool:
    """The line is one the rule names (every line when it names none); exclusions are not considered."""
    return not _names_lines(rule) or line.sku in rule.skus or line.category in rule.categories


def _excluded(rule: RuleSpec, line: Line) -> bool:
    return line.sku in rule.excluded_skus or line.category in rule.excluded_categories


def _eligible_amount(rule: RuleSpec, lines: Sequence[Line]) -> Decimal:
    return sum((line.amount for line in lines if not _excluded(rule, line)), Decimal(0))


def _line_base_points(base_rules: Sequence[RuleSpec], lines: Sequence[Line]) -> list[Decimal]:
    """Unrounded base points of each line, summed over every base-rate rule that applied, whatever its position.

    Multipliers scale these, so a multiplier ordered before the base rate still multiplies it; rounding happens
    once per award, not per line.
    """
    return [
        sum((line.amount * rule.rate for rule in base_rules if not _excluded(rule, line)), Decimal(0)) for line in lines
    ]


# -- points and limits ------------------------------------------------------------------------------------------------


def _raw_points(rule: RuleSpec, basket: Basket, line_base: Sequence[Decimal]) -> int:
    """The rule's points before its limits (possibly negative: the limits clamp them)."""
    if rule.kind == RuleKind.BASE_RATE:
        return floor_points(_eligible_amount(rule, basket.lines) * rule.rate)
    if rule.kind == RuleKind.MULTIPLIER:
        if rule.multiplier <= 1:
            return 0
        matching = (base for line, base in zip(basket.lines, line_base, strict=True) if _multiplied(rule, line))
        return floor_points((rule.multiplier - 1) * sum(matching, Decimal(0)))
    return rule.points


def _multiplied(rule: RuleSpec, line: Line) -> bool:
    return _selects(rule, line) and not _excluded(rule, line)


def _line_shares(rule: RuleSpec, lines: Sequence[Line], line_base: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Each line's unrounded part of the rule's raw points (what the line earned, before rounding and limits)."""
    if rule.kind == RuleKind.BASE_RATE:
        return tuple(Decimal(0) if _excluded(rule, line) else line.amount * rule.rate for line in lines)
    if rule.kind == RuleKind.MULTIPLIER:
        return tuple(
            (rule.multiplier - 1) * base if _multiplied(rule, line) else Decimal(0)
            for line, base in zip(lines, line_base, strict=True)
        )
    return ()


def _purchase_award(rule: RuleSpec, points: int, basket: Basket, line_base: Sequence[Decimal]) -> Award:
    """The award with its basis: what a return re-checks (see `Award`)."""
    needs: tuple[int, ...] = ()
    if rule.kind == RuleKind.BONUS and _names_lines(rule):
        needs = tuple(i for i, line in enumerate(basket.lines) if _selects(rule, line))
    return Award(
        rule_id=rule.id,
        rule=rule.name,
        points=points,
        line_shares=_line_shares(rule, basket.lines, line_base),
        min_basket=rule.min_basket,
        needs_lines=needs,
    )


def _limited(rule: RuleSpec, points: int, member: MemberContext) -> int:
    """Cut `points` to the rule's limits, in the documented order; never below 0."""
    if rule.cap_per_purchase is not None:
        points = min(points, rule.cap_per_purchase)
    if rule.cap_per_member_day is not None:
        points = min(points, rule.cap_per_member_day - member.used_today.get(rule.id, 0))
    if rule.cap_per_member_month is not None:
        points = min(points, rule.cap_per_member_month - member.used_this_month.get(rule.id, 0))
    if rule.budget_remaining is not None:
        points = min(points, rule.budget_remaining)
    return max(points, 0)


def _plain_award(rule: RuleSpec, points: int) -> Award:
    return Award(rule_id=rule.id, rule=rule.name, points=points)


def _awards(
    applied: Sequence[RuleSpec],
    member: MemberContext,
    raw: Callable[[RuleSpec], int],
    award: Callable[[RuleSpec, int], Award] = _plain_award,
) -> list[Award]:
    awards = []
    for rule in applied:
        points = _limited(rule, raw(rule), member)
        if points > 0:
            awards.append(award(rule, points))
    return awards


def _tier_award(awards: Sequence[Award], member: MemberContext) -> list[Award]:
    multiplier = member.tier_multiplier
    if multiplier <= 1:
        return []
    points = floor_points((multiplier - 1) * sum(award.points for award in awards))
    if points <= 0:
        return []
    label = f"{member.tier_name} tier x{format(multiplier.normalize(), 'f')}"
    return [Award(rule_id=None, rule=label, points=points)]
