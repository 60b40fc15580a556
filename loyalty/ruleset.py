"""A program's earning rules and tiers, compiled once and kept in memory.

The compiled ruleset is cached per process and keyed by the program's
`config_version`, which every change to a rule or tier bumps (see
`loyalty.services.rules`). The program row is read with the member's account
on every purchase anyway, so checking the version costs no query, and the
number of rules never changes the number of queries of a purchase.
"""

import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from loyalty.models import EarningRule, Tier, split_list
from loyalty.rules import RuleKind, RuleSpec
from members.models import Program

# (program id, config version, program created at): a reused id never matches
RulesetVersion = tuple[int, int, datetime]


@dataclass(frozen=True)
class TierSpec:
    id: int
    name: str
    rank: int
    threshold: Decimal
    earn_multiplier: Decimal


@dataclass(frozen=True)
class ProgramRuleset:
    version: RulesetVersion
    rules: tuple[RuleSpec, ...]  # purchase rules, by priority
    event_rules: tuple[RuleSpec, ...]
    tiers: tuple[TierSpec, ...]  # lowest rank first
    budgeted_rule_ids: frozenset[int]  # rules with a total budget, read live under a lock

    @property
    def capped_rule_ids(self) -> frozenset[int]:
        return frozenset(r.id for r in self.rules + self.event_rules if r.cap_per_member_day or r.cap_per_member_month)

    def tier(self, tier_id: int | None) -> TierSpec | None:
        return next((t for t in self.tiers if t.id == tier_id), None)


_cache: dict[int, ProgramRuleset] = {}
_cache_lock = threading.Lock()


def rule_spec(rule: EarningRule, tier_ids: frozenset[int]) -> RuleSpec:
    """The pure form of a rule, without its budget: that changes with every award, so the
    purchase reads it live under a lock (see `ProgramRuleset.budgeted_rule_ids`)."""
    return RuleSpec(
        id=rule.pk,
        name=rule.name,
        kind=RuleKind(rule.kind),
        priority=rule.priority,
        stop_further=rule.stop_further,
        active_from=rule.active_from,
        active_until=rule.active_until,
        skus=frozenset(split_list(rule.skus)),
        categories=frozenset(split_list(rule.categories)),
        excluded_skus=frozenset(split_list(rule.excluded_skus)),
        excluded_categories=frozenset(split_list(rule.excluded_categories)),
        channels=frozenset(split_list(rule.channels)),
        stores=frozenset(split_list(rule.stores)),
        weekdays=frozenset(int(day) - 1 for day in split_list(rule.weekdays)),
        tier_ids=tier_ids,
        min_basket=rule.min_basket,
        first_purchase=rule.first_purchase,
        nth_purchase=rule.nth_purchase,
        event=rule.event,
        rate=rule.rate,
        multiplier=rule.multiplier,
        points=rule.points,
        cap_per_purchase=rule.cap_per_purchase,
        cap_per_member_day=rule.cap_per_member_day,
        cap_per_member_month=rule.cap_per_member_month,
    )


def _compile(program: Program, version: RulesetVersion) -> ProgramRuleset:
    rules = list(EarningRule.objects.filter(program=program, is_active=True).prefetch_related("tiers"))
    specs = [rule_spec(rule, frozenset(t.pk for t in rule.tiers.all())) for rule in rules]
    specs.sort(key=lambda spec: (spec.priority, spec.id))
    tiers = tuple(
        TierSpec(id=t.pk, name=t.name, rank=t.rank, threshold=t.threshold, earn_multiplier=t.earn_multiplier)
        for t in Tier.objects.filter(program=program).order_by("rank")
    )
    return ProgramRuleset(
        version=version,
        rules=tuple(s for s in specs if s.kind != RuleKind.EVENT),
        event_rules=tuple(s for s in specs if s.kind == RuleKind.EVENT),
        tiers=tiers,
        budgeted_rule_ids=frozenset(rule.pk for rule in rules if rule.budget_total is not None),
    )


def program_ruleset(program: Program) -> ProgramRuleset:
    """The compiled rules and tiers of `program` as of its `config_version`."""
    version = (program.pk, program.config_version, program.created_at)
    cached = _cache.get(program.pk)
    if cached is not None and cached.version == version:
        return cached
    ruleset = _compile(program, version)
    with _cache_lock:
        _cache[program.pk] = ruleset
    return ruleset
