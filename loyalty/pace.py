"""Earning pace and time to a target: how fast a member earns, and when they reach a cost or a threshold.

A member's pace is what they earned over the program's trailing window
(`attainability_window_days`, 180 by default), per day:

    pace = net points earned in (now - window, now] / observed days
    observed days = min(window, max(days since enrolment, 30))

"Net points earned" are the member's `earn` entries (purchases and event
bonuses) less their `reverse` entries (returns): manual adjustments, transfers
and refunds of cancelled vouchers are not earning behaviour. A member who
enrolled recently is measured over the days they have been a member, but never
fewer than 30, so that a sign-up bonus on day one does not promise a reward a
week later. A negative net is a pace of zero.

The time to a target with a gap of G points is ceil(G / pace) days (0 when
nothing is missing, none when the pace is zero), computed with exact
fractions. The same holds for tiers, with the tier metric (qualifying points,
spend or purchases) in place of points.
"""

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import ceil
from typing import Any

import numpy as np
from django.db.models import BigIntegerField, Q, Sum
from django.db.models.functions import Cast, Coalesce, TruncDate

from loyalty.models import Award, Entry, EntryKind, Lot
from loyalty.rules import RuleKind
from loyalty.services.tiers import tier_metric_between
from members.models import Member, MemberStatus, Program

MIN_OBSERVED_DAYS = 30
PACE_KINDS = (EntryKind.EARN, EntryKind.REVERSE)


def observed_days(*, window_days: int, enrolled_at: datetime, now: datetime) -> int:
    """Days the pace is averaged over: the window, or the days since enrolment (at least 30) if fewer."""
    member_days = max(0, (now - enrolled_at).days)
    return min(window_days, max(member_days, MIN_OBSERVED_DAYS))


@dataclass(frozen=True)
class Pace:
    """`amount` earned (points, money or purchases) over `days` days."""

    amount: Decimal
    days: int

    @property
    def per_day(self) -> Decimal:
        return (self.amount / self.days).quantize(Decimal("0.01")) if self.days else Decimal(0)

    def days_to(self, gap: Decimal | int) -> int | None:
        """Whole days until `gap` more has been earned at this pace; 0 if nothing is missing, None if never."""
        if gap <= 0:
            return 0
        if self.amount <= 0:
            return None
        return ceil(Fraction(gap) * self.days / Fraction(self.amount))


_Date = date  # Eta's field `date` hides the type inside the class


@dataclass(frozen=True)
class Eta:
    days: int | None
    date: date | None

    @classmethod
    def of(cls, *, pace: Pace, gap: Decimal | int, today: _Date) -> "Eta":
        days = pace.days_to(gap)
        if days is not None and days > (date.max - today).days:
            return cls(days=None, date=None)  # beyond any calendar date at this pace: as good as never
        return cls(days=days, date=None if days is None else today + timedelta(days=days))


def local_today(program: Program, now: datetime) -> date:
    return now.astimezone(program.tz).date()


def _window(program: Program, member: Member, now: datetime) -> tuple[datetime, int]:
    start = now - timedelta(days=program.attainability_window_days)
    days = observed_days(window_days=program.attainability_window_days, enrolled_at=member.enrolled_at, now=now)
    return start, days


def points_pace(*, member: Member, now: datetime) -> Pace:
    """The member's points per day over the program's window (one indexed aggregate)."""
    start, days = _window(member.program, member, now)
    earned = (
        Entry.objects.filter(
            member_id=member.pk, kind__in=PACE_KINDS, occurred_at__gt=start, occurred_at__lte=now
        ).aggregate(points=Sum("amount"))["points"]
        or 0
    )
    return Pace(amount=Decimal(max(0, earned)), days=days)


def tier_metric_pace(*, member: Member, now: datetime) -> Pace:
    """The member's tier metric per day over the program's attainability window (one aggregate)."""
    program = member.program
    start, days = _window(program, member, now)
    value = tier_metric_between(program=program, member_id=member.pk, start=start, end=now)
    return Pace(amount=max(Decimal(0), value), days=days)


class ExpiryProfile:
    """The member's points that will expire, by local day: read once, asked for many dates."""

    def __init__(self, days: list[date], points: list[int]):
        self._days = days
        self._cumulative = []
        total = 0
        for amount in points:
            total += amount
            self._cumulative.append(total)

    @classmethod
    def of(cls, *, member: Member, now: datetime) -> "ExpiryProfile":
        """One query: the remaining points of the member's lots that have not expired yet, summed by day."""
        rows = list(
            Lot.objects.filter(member_id=member.pk, remaining__gt=0, expires_at__gt=now)
            .annotate(day=TruncDate("expires_at", tzinfo=member.program.tz))
            .values("day")
            .annotate(points=Sum("remaining"))
            .order_by("day")
        )
        return cls([row["day"] for row in rows], [row["points"] for row in rows])

    def until(self, day: date) -> int:
        """Points that expire on or before `day` (local)."""
        index = bisect_right(self._days, day)
        return self._cumulative[index - 1] if index else 0


@dataclass(frozen=True)
class PopulationPace:
    """The program's active members as parallel arrays, ordered by member id (for the program report).

    `rate_share` is the part of each member's earned points that grew with the base rate (base-rate and
    multiplier awards, as opposed to fixed bonuses), or None when not asked for.
    """

    member_ids: np.ndarray
    available: np.ndarray
    tier_rank: np.ndarray  # -1: no tier
    earned: np.ndarray  # net points earned in the window, >= 0
    days: np.ndarray  # observed days
    rate_share: np.ndarray | None

    def __len__(self) -> int:
        return len(self.member_ids)


def _aligned(ids: np.ndarray, rows: list[tuple[int, Any]], dtype: type = np.int64) -> np.ndarray:
    """Values of (member id, value) rows placed at each member's index in `ids`; 0 where absent."""
    values: np.ndarray = np.zeros(len(ids), dtype=dtype)
    if rows and len(ids):
        row_ids, row_values = (np.array(column) for column in zip(*rows, strict=True))
        index = np.minimum(np.searchsorted(ids, row_ids), len(ids) - 1)
        found = ids[index] == row_ids
        values[index[found]] = row_values[found].astype(dtype)
    return values


def population_pace(*, program: Program, now: datetime, with_rate_share: bool = False) -> PopulationPace:
    """Set-based queries whatever the number of members: the members with their account, the enrolment
    times of the members who joined within the window (the only ones whose observed days are not the whole
    window), the net points each member earned in the window (one GROUP BY), and, for what-if, each one's
    awards split by rule kind."""
    window = program.attainability_window_days
    start = now - timedelta(days=window)
    active = Member.objects.filter(program=program, status=MemberStatus.ACTIVE)
    rows = list(
        active.order_by("pk").values_list("pk", Coalesce("account__available", 0), Coalesce("account__tier__rank", -1))
    )
    data = np.array(rows, dtype=np.int64).reshape(-1, 3)
    ids, available, tier_rank = (np.ascontiguousarray(data[:, column]) for column in range(3))
    recent = [
        (pk, (now - enrolled_at).days)
        for pk, enrolled_at in active.filter(enrolled_at__gt=start).values_list("pk", "enrolled_at")
    ]
    member_days = np.full(len(ids), window, dtype=np.int64)
    if recent:
        member_days = np.where(np.isin(ids, [pk for pk, _ in recent]), _aligned(ids, recent), window)
    days = np.minimum(window, np.maximum(member_days, MIN_OBSERVED_DAYS))
    earned_rows = list(
        Entry.objects.filter(program=program, kind__in=PACE_KINDS, occurred_at__gt=start, occurred_at__lte=now)
        .values("member_id")
        .annotate(points=Cast(Sum("amount"), BigIntegerField()))
        .order_by()
        .values_list("member_id", "points")
    )
    earned = np.maximum(_aligned(ids, earned_rows), 0)
    rate_share = None
    if with_rate_share:
        rate_share = _rate_share(program=program, ids=ids, start=start, now=now)
    return PopulationPace(ids, available, tier_rank, earned, days, rate_share)


RATE_KINDS = (RuleKind.BASE_RATE, RuleKind.MULTIPLIER)


def _rate_share(*, program: Program, ids: np.ndarray, start: datetime, now: datetime) -> np.ndarray:
    awards = list(
        Award.objects.filter(program=program, entry__occurred_at__gt=start, entry__occurred_at__lte=now)
        .values("member_id")
        .annotate(rate=Sum("points", filter=Q(rule__kind__in=RATE_KINDS), default=0), total=Sum("points"))
        .order_by()
        .values_list("member_id", "rate", "total")
    )
    rate = _aligned(ids, [(row[0], row[1]) for row in awards])
    total = _aligned(ids, [(row[0], row[2]) for row in awards])
    share: np.ndarray = np.divide(rate, total, out=np.zeros(len(ids)), where=total > 0)
    return share
