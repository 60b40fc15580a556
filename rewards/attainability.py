"""Reward attainability (DESIGN.md section 7): how close members are to the rewards, and when they get there.

For one member (`member_reward_list`): per reward, the cost, the member's
available points, the gap, the progress, whether redeeming would succeed now,
and, from the member's earning pace (see `loyalty.pace`), the
estimated days and date to close the gap and the points that expire on or
before that date. Answered in a fixed number of queries whatever the number
of rewards.

For a program (`program_report`): over the active members, the share who can
redeem at least one reward now, the share within 20 % of the cheapest reward
open to their tier, the median and 75th percentile of days to it, and per
reward how many members are where. Three set-based queries and NumPy, never a
query per member. A what-if (`WhatIf`) recomputes the same report from the
same recorded pace under a proposed base-rate multiplier or reward costs,
writing nothing.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypedDict, cast

import numpy as np
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from loyalty.models import Account
from loyalty.pace import Eta, ExpiryProfile, Pace, PopulationPace, local_today, points_pace, population_pace
from loyalty.ruleset import ProgramRuleset, program_ruleset
from members.models import Member, MemberStatus, Program
from rewards.models import Reward, Voucher, VoucherStatus

WITHIN_SHARE = Decimal("0.2")  # "within 20 % of the cheapest reward"


def rewards_on_offer(*, program_id: int, now: datetime) -> QuerySet[Reward]:
    """The program's rewards on offer at `now`, cheapest first."""
    return (
        Reward.objects.filter(program_id=program_id, is_active=True)
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=now))
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=now))
        .select_related("min_tier")
        .order_by("points_cost", "id")
    )


def required_rank(reward: Reward, ruleset: ProgramRuleset) -> int | None:
    """The rank of the reward's minimum tier (from the program's cached rule set), None when open to all."""
    if reward.min_tier_id is None:
        return None
    tier = ruleset.tier(reward.min_tier_id) or reward.min_tier
    assert tier is not None  # min_tier_id is set
    return tier.rank


@dataclass(frozen=True)
class MemberStanding:
    """What decides, for any reward, whether the member can redeem it now and when they will: read once."""

    suspended: bool
    available: int
    tier_rank: int | None
    held: dict[int, int]  # reward id -> vouchers held (not cancelled)
    pace: Pace
    expiring: ExpiryProfile
    today: Any

    @classmethod
    def of(cls, member: Member, rewards: list[Reward], now: datetime) -> "MemberStanding":
        account = Account.objects.select_related("tier").filter(pk=member.pk).first()
        ruleset = program_ruleset(member.program)
        tier = (ruleset.tier(account.tier_id) or account.tier) if account and account.tier_id else None
        limited = [reward.pk for reward in rewards if reward.per_member_limit is not None]
        held = (
            Voucher.objects.filter(member_id=member.pk, reward_id__in=limited)
            .exclude(status=VoucherStatus.CANCELLED)
            .values("reward_id")
            .annotate(count=Count("id"))
            if limited
            else []
        )
        return cls(
            suspended=member.status != MemberStatus.ACTIVE,
            available=account.available if account else 0,
            tier_rank=tier.rank if tier else None,
            held={row["reward_id"]: row["count"] for row in held},
            pace=points_pace(member=member, now=now),
            expiring=ExpiryProfile.of(member=member, now=now),
            today=local_today(member.program, now),
        )

    def blocked_by(self, reward: Reward, rank: int | None) -> str | None:
        """The error redeeming would answer, checked in the order reward_redeem checks."""
        if self.suspended:
            return "member_suspended"
        if rank is not None and (self.tier_rank is None or self.tier_rank < rank):
            return "reward_tier_required"
        if reward.stock is not None and reward.stock <= 0:
            return "reward_out_of_stock"
        if reward.per_member_limit is not None and self.held.get(reward.pk, 0) >= reward.per_member_limit:
            return "reward_limit_reached"
        if self.available < reward.points_cost:
            return "insufficient_points"
        return None

    def attainability(self, reward: Reward, blocked_by: str | None) -> dict[str, Any]:
        cost, available = reward.points_cost, self.available
        gap = max(0, cost - available)
        eta = Eta.of(pace=self.pace, gap=gap, today=self.today)
        return {
            "cost": cost,
            "available": available,
            "gap": gap,
            "progress": round(min(1.0, available / cost), 4),
            "redeemable_now": blocked_by is None,
            "pace_per_day": self.pace.per_day,
            "days": eta.days,
            "date": eta.date,
            # Days to go (not 0, not None): the date is set.
            "expiring_before": self.expiring.until(cast(date, eta.date))
            if eta.days
            else (0 if eta.days == 0 else None),
        }


def member_reward_list(*, member: Member, rewards: list[Reward], now: datetime | None = None) -> list[dict]:
    """Each reward with why it cannot be redeemed now (if so) and the member's attainability of it."""
    standing = MemberStanding.of(member, rewards, now or timezone.now())
    ruleset = program_ruleset(member.program)
    items = []
    for reward in rewards:
        blocked_by = standing.blocked_by(reward, required_rank(reward, ruleset))
        items.append(
            {
                "id": reward.pk,
                "name": reward.name,
                "description": reward.description,
                "kind": reward.kind,
                "value": reward.value,
                "points_cost": reward.points_cost,
                "min_tier": {"id": reward.min_tier.pk, "name": reward.min_tier.name} if reward.min_tier else None,
                "min_basket": reward.min_basket,
                "scope": {"skus": reward.scope_skus, "categories": reward.scope_categories},
                "active_until": reward.active_until,
                "stock": reward.stock,
                "voucher_valid_days": reward.voucher_valid_days,
                "blocked_by": blocked_by,
                "attainability": standing.attainability(reward, blocked_by),
            }
        )
    return items


# --- The program report -------------------------------------------------------


@dataclass(frozen=True)
class WhatIf:
    """A proposal to try: earn `base_rate_multiplier` times the base rate, or rewards at other costs."""

    base_rate_multiplier: Decimal | None = None
    reward_costs: dict[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.base_rate_multiplier is None and not self.reward_costs


def _days_to(gap: np.ndarray, earned: np.ndarray, days: np.ndarray) -> np.ndarray:
    """ceil(gap / (earned / days)) per member as floats: 0 when nothing is missing, inf at zero pace."""
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.ceil(gap * days / earned)
    return np.where(gap <= 0, 0.0, np.where(earned > 0, needed, np.inf))


def _percentile(values: np.ndarray, q: float) -> int | None:
    """The q-th percentile as one member's value (no interpolation); None when it is 'never' or empty."""
    if not len(values):
        return None
    value = np.percentile(values, q, method="inverted_cdf")
    return None if np.isinf(value) else int(value)


class RewardRow(TypedDict):
    """A reward as `_report` weighs it."""

    id: int
    name: str
    cost: int
    min_rank: int | None


def _report(
    *, population: PopulationPace, rewards: list[RewardRow], earned: np.ndarray, target_days: int
) -> dict[str, Any]:
    count = len(population)
    available, rank, days = population.available, population.tier_rank, population.days
    # The cheapest reward open to each member's tier (inf: none is).
    cheapest = np.full(count, np.inf)
    for reward in rewards:
        open_to = rank >= reward["min_rank"] if reward["min_rank"] is not None else np.ones(count, dtype=bool)
        cheapest = np.where(open_to, np.minimum(cheapest, reward["cost"]), cheapest)
    gap = cheapest - available
    to_first = _days_to(gap, earned, days)
    redeemable = gap <= 0
    within = ~redeemable & (5 * available >= 4 * cheapest)  # gap <= 20 % of the cost, in integers
    median, p75 = _percentile(to_first, 50), _percentile(to_first, 75)
    per_reward = []
    for reward in rewards:
        open_to = rank >= reward["min_rank"] if reward["min_rank"] is not None else np.ones(count, dtype=bool)
        eta = _days_to(reward["cost"] - available, earned, days)
        counts = {
            "now": open_to & (eta == 0),
            "days_1_30": open_to & (eta > 0) & (eta <= 30),
            "days_31_365": open_to & (eta > 30) & (eta <= 365),
            "over_a_year": open_to & (eta > 365) & np.isfinite(eta),
            "never": open_to & np.isinf(eta),
            "tier_locked": ~open_to,
        }
        per_reward.append(
            {"id": reward["id"], "name": reward["name"], "points_cost": reward["cost"]}
            | {bucket: int(mask.sum()) for bucket, mask in counts.items()}
        )
    warning = None
    if count and rewards and (median is None or median > target_days):
        shown = "never at their pace" if median is None else f"{median} days"
        warning = (
            f"The median member needs {shown} to reach a first reward, more than the program's target of "
            f"{target_days} days: members give up on rewards that feel out of reach."
        )
    return {
        "active_members": count,
        "share_redeemable_now": round(float(redeemable.mean()), 4) if count else 0.0,
        "share_within_20_percent": round(float(within.mean()), 4) if count else 0.0,
        "days_to_first_reward_median": median,
        "days_to_first_reward_p75": p75,
        "members_never_at_pace": int(np.isinf(to_first).sum()),
        "target_days": target_days,
        "warning": warning,
        "rewards": per_reward,
    }


def program_report(*, program: Program, what_if: WhatIf | None = None, now: datetime | None = None) -> dict:
    """The program's attainability report; with `what_if`, also the report under the proposal.

    Sold-out rewards (stock 0) are left out: nobody can redeem them. The what-if scales each member's
    rate-proportional earnings (base-rate and multiplier awards, see
    `population_pace`) by the multiplier and replaces the costs of the named rewards; fixed bonuses, the
    members' balances and their tiers stay as recorded. Nothing is written.
    """
    now = now or timezone.now()
    what_if = what_if or WhatIf()
    rewards = [reward for reward in rewards_on_offer(program_id=program.pk, now=now) if reward.stock != 0]
    population = population_pace(program=program, now=now, with_rate_share=what_if.base_rate_multiplier is not None)
    ruleset = program_ruleset(program)
    current: list[RewardRow] = [
        {"id": reward.pk, "name": reward.name, "cost": reward.points_cost, "min_rank": required_rank(reward, ruleset)}
        for reward in rewards
    ]
    target = program.attainability_target_days
    result = {
        "program": program.slug,
        "as_of": now,
        "window_days": program.attainability_window_days,
        "current": _report(population=population, rewards=current, earned=population.earned, target_days=target),
        "proposed": None,
    }
    if not what_if.empty:
        proposed: list[RewardRow] = [
            reward | {"cost": what_if.reward_costs.get(reward["id"], reward["cost"])} for reward in current
        ]
        earned = population.earned
        if what_if.base_rate_multiplier is not None:
            factor = float(what_if.base_rate_multiplier) - 1.0
            assert population.rate_share is not None  # asked for with the multiplier
            earned = earned * (1.0 + factor * population.rate_share)
        result["proposed"] = _report(population=population, rewards=proposed, earned=earned, target_days=target)
    return result
