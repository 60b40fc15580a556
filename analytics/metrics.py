"""Program-level figures for managers (DESIGN.md section 8): retention and churn, the cohort matrix, order
figures and inactive members (the points liability, upcoming expiries and breakage: `liability`).

Every figure is a few set-based queries whatever the number of members (aggregates in the database; the mean
time between purchases is averaged with NumPy over one row per repeat buyer). Months and days are the
program's, in its time zone. Works on SQLite and PostgreSQL.

Definitions:

- A *qualifying purchase* is one not fully returned (`Purchase.objects.counted()`: a purchase for 0 counts);
  a partly returned one counts with its net amount.
- A member is *active at* an instant `t` when they made a qualifying purchase in the program's
  `inactive_days` days up to `t`: `t - inactive_days <= occurred_at < t` (local calendar days, so a day of a
  daylight-saving change is one day).
- For a period `[start, end)`: *active at start* and *active at end* as above; *new* = active at end whose
  first qualifying purchase ever lies in `[start, end)`; *retained* = active at both; *reactivated* = active
  at end, not at start, first purchase before `start`. Active at end = retained + new + reactivated.
  Retention = (active at end - new) / active at start (so reactivated members count as kept, as the
  formula says, and retention can exceed 1); churn = 1 - retention; both null when nobody was active at start.
- As of a moment `as_of` (the last analytics refresh's, in the manager API), a figure sees only purchases made
  and returns made by then (`analytics.as_of`), and a month or period that begins after it has *no data
  yet*: its figures are None (null), not 0.
- Filters (tier, segment, acquisition channel) select members by their *current* tier (`Account.tier`),
  segment (`MemberAnalytics.segment`, as of the last refresh) and `Member.acquisition_channel`.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db.models import Case, Count, Exists, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from analytics.as_of import qualifying_purchases as purchases_as_of
from loyalty.models import NET_THEN, Purchase
from members.models import Member, MemberStatus, Program

CENT = Decimal("0.01")
RATE_DIGITS = 4


# --- Filters and periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberFilters:
    """Which members a figure covers: all when every field is None."""

    tier_id: int | None = None
    segment: str | None = None
    channel: str | None = None

    def q(self, prefix: str = "") -> Q:
        """The condition on a Member, reached through `prefix` ("member__" from a purchase, say)."""
        condition = Q()
        if self.tier_id is not None:
            condition &= Q(**{f"{prefix}account__tier_id": self.tier_id})
        if self.segment is not None:
            condition &= Q(**{f"{prefix}analytics__segment": self.segment})
        if self.channel is not None:
            condition &= Q(**{f"{prefix}acquisition_channel": self.channel})
        return condition


ALL_MEMBERS = MemberFilters()


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware


def local_midnight(program: Program, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=program.tz)


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after the month of `month` (before, when negative)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_of(program: Program, moment: datetime) -> date:
    """The first day of the month `moment` falls in, in the program's time zone."""
    local = moment.astimezone(program.tz)
    return date(local.year, local.month, 1)


def month_periods(program: Program, *, months: int, through: date) -> list[Period]:
    """The `months` calendar months ending with the month of `through`, oldest first."""
    first = add_months(through, 1 - months)
    return [
        Period(local_midnight(program, add_months(first, i)), local_midnight(program, add_months(first, i + 1)))
        for i in range(months)
    ]


def begun(period: Period, as_of: datetime | None) -> bool:
    """Whether the period has begun by `as_of` (None: every period has)."""
    return as_of is None or period.start <= as_of


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, RATE_DIGITS) if denominator else None


def money(program: Program, points: int) -> Decimal:
    """The value of `points` in the program's currency, rounded half up to cents (the one place we round)."""
    return (Decimal(points) * program.point_value).quantize(CENT, rounding=ROUND_HALF_UP)


def qualifying_purchases(
    program: Program, as_of: datetime | None = None, filters: MemberFilters = ALL_MEMBERS
) -> QuerySet[Purchase]:
    """Purchases made by `as_of` (now by default) and not fully returned by then (`analytics.as_of`), of
    the members `filters` selects."""
    return purchases_as_of(program, as_of or timezone.now()).filter(filters.q("member__"))


# --- Retention and churn -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """A period's figures; all None when it had not begun (no data yet)."""

    start: datetime
    end: datetime
    active_at_start: int | None = None
    active_at_end: int | None = None
    new: int | None = None
    retained: int | None = None
    reactivated: int | None = None
    retention: float | None = None
    churn: float | None = None


def _flag(name: str) -> Sum:
    return Sum(Case(When(**{name: 1}, then=Value(1)), default=Value(0)))


def retention(
    program: Program, periods: list[Period], filters: MemberFilters = ALL_MEMBERS, *, as_of: datetime | None = None
) -> list[Retention]:
    """Retention and churn of each period (see the module docstring), in one query for all periods begun by
    `as_of`: one row per member (first purchase, active or not at each boundary), summed. Periods not begun
    come back without figures."""
    counted = [period for period in periods if begun(period, as_of)]
    rows = {(row.start, row.end): row for row in _retention(program, counted, filters, as_of)}
    return [rows.get((p.start, p.end), Retention(p.start, p.end)) for p in periods]


def _retention(
    program: Program, periods: list[Period], filters: MemberFilters, as_of: datetime | None
) -> list[Retention]:
    if not periods:
        return []
    window = timedelta(days=program.inactive_days)
    bounds = sorted({p.start for p in periods} | {p.end for p in periods})
    index = {moment: i for i, moment in enumerate(bounds)}
    # Subtracting days from a local time keeps the wall clock: N calendar days, whatever daylight saving does.
    since = [moment.astimezone(program.tz) - window for moment in bounds]
    active_at = {
        f"a{i}": Max(Case(When(occurred_at__gte=since[i], occurred_at__lt=moment, then=Value(1)), default=0))
        for i, moment in enumerate(bounds)
    }
    per_member = (
        qualifying_purchases(program, as_of, filters)
        .filter(occurred_at__lt=bounds[-1])
        .order_by()
        .values("member_id")
        .annotate(first=Min("occurred_at"), **active_at)
    )
    sums: dict[str, Sum] = {f"s{i}": Sum(f"a{i}") for i in range(len(bounds))}
    for n, period in enumerate(periods):
        s, e = index[period.start], index[period.end]
        sums[f"new{n}"] = Sum(
            Case(When(**{f"a{e}": 1}, first__gte=period.start, first__lt=period.end, then=Value(1)), default=0)
        )
        sums[f"kept{n}"] = Sum(Case(When(**{f"a{s}": 1, f"a{e}": 1}, then=Value(1)), default=0))
    totals = {name: value or 0 for name, value in per_member.aggregate(**sums).items()}
    rows = []
    for n, period in enumerate(periods):
        at_start, at_end = totals[f"s{index[period.start]}"], totals[f"s{index[period.end]}"]
        new, kept = totals[f"new{n}"], totals[f"kept{n}"]
        rate = ratio(at_end - new, at_start)
        rows.append(
            Retention(
                start=period.start,
                end=period.end,
                active_at_start=at_start,
                active_at_end=at_end,
                new=new,
                retained=kept,
                reactivated=at_end - new - kept,
                retention=rate,
                churn=None if rate is None else round(1 - rate, RATE_DIGITS),
            )
        )
    return rows


# --- Cohorts ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    month: date
    size: int
    shares: list[float | None]  # offset 0..K; None for months not begun yet


def cohort_matrix(
    program: Program,
    *,
    first_month: date,
    last_month: date,
    offsets: int,
    filters: MemberFilters = ALL_MEMBERS,
    as_of: datetime | None = None,
) -> list[Cohort]:
    """Members by the month of their first qualifying purchase (cohorts `first_month`..`last_month`), and for
    each month offset 0..`offsets` the share of the cohort with a qualifying purchase in that month (offset 0
    is 1 by definition; None for months after the month of `as_of`, now by default). One grouped query;
    cohorts without members are left out."""
    tz = program.tz
    as_of = as_of or timezone.now()
    current = month_of(program, as_of)
    # Each member's first qualifying purchase: the first row of an index scan on (member, occurred_at) that
    # stops at the first purchase not fully returned (a GROUP BY with MIN would read all of them).
    counted = qualifying_purchases(program, as_of)
    first_at = Subquery(
        counted.filter(member_id=OuterRef("member_id")).order_by("occurred_at").values("occurred_at")[:1]
    )
    cells = (
        counted.filter(filters.q("member__"))
        .filter(occurred_at__lt=local_midnight(program, add_months(last_month, offsets + 1)))
        .annotate(cohort=TruncMonth(first_at, tzinfo=tz), month=TruncMonth("occurred_at", tzinfo=tz))
        .filter(
            cohort__gte=local_midnight(program, first_month),
            cohort__lt=local_midnight(program, add_months(last_month, 1)),
        )
        .order_by()
        .values("cohort", "month")
        .annotate(members=Count("member_id", distinct=True))
    )
    counts: dict[date, dict[int, int]] = {}
    for cell in cells:
        cohort, month = month_of(program, cell["cohort"]), month_of(program, cell["month"])
        offset = (month.year - cohort.year) * 12 + month.month - cohort.month
        counts.setdefault(cohort, {})[offset] = cell["members"]
    cohorts = []
    for cohort, by_offset in sorted(counts.items()):
        size = by_offset.get(0, 0)
        shares = [
            None if add_months(cohort, k) > current else ratio(by_offset.get(k, 0), size) for k in range(offsets + 1)
        ]
        cohorts.append(Cohort(month=cohort, size=size, shares=shares))
    return cohorts


# --- Orders and inactivity -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFigures:
    purchases: int
    purchasing_members: int
    revenue: Decimal
    average_order_value: Decimal | None
    purchase_frequency: float | None
    repeat_members: int
    mean_days_between_purchases: float | None


def order_figures(
    program: Program,
    *,
    start: datetime,
    end: datetime,
    filters: MemberFilters = ALL_MEMBERS,
    as_of: datetime | None = None,
) -> OrderFigures:
    """Over the purchases in `[start, end)` qualifying as of `as_of` (now by default; later purchases and
    returns unseen):

    - average order value = net revenue (totals less returns) / purchases;
    - purchase frequency = purchases / members with a purchase;
    - mean days between purchases: for each member with purchases on at least two days of the period,
      (last day - first day) / (days - 1), then the mean over those members (each member weighs the same).
    """
    purchases = qualifying_purchases(program, as_of, filters).filter(occurred_at__gte=start, occurred_at__lt=end)
    totals = purchases.aggregate(
        purchases=Count("id"), members=Count("member_id", distinct=True), revenue=Sum(NET_THEN)
    )
    count, members = totals["purchases"], totals["members"]
    revenue = (totals["revenue"] or Decimal(0)).quantize(CENT)
    day = TruncDate("occurred_at", tzinfo=program.tz)
    repeat = (
        purchases.order_by()
        .values("member_id")
        .annotate(days=Count(day, distinct=True), first=Min(day), last=Max(day))
        .filter(days__gte=2)
        .values_list("days", "first", "last")
    )
    rows = list(repeat)
    mean_gap = None
    if rows:
        days = np.array([row[0] for row in rows], dtype=float)
        spans = np.array([(row[2] - row[1]).days for row in rows], dtype=float)
        mean_gap = round(float(np.mean(spans / (days - 1))), 2)
    return OrderFigures(
        purchases=count,
        purchasing_members=members,
        revenue=revenue,
        average_order_value=(revenue / count).quantize(CENT, rounding=ROUND_HALF_UP) if count else None,
        purchase_frequency=ratio(count, members),
        repeat_members=len(rows),
        mean_days_between_purchases=mean_gap,
    )


def inactive_members(
    program: Program, *, as_of: datetime | None = None, filters: MemberFilters = ALL_MEMBERS
) -> QuerySet[Member]:
    """Active-status members enrolled at least `inactive_days` days before `as_of` (now by default) without a
    purchase qualifying as of `as_of` in the `inactive_days` days up to it (never having bought counts as no
    purchase). Without `as_of` a purchase a little ahead of now (a till's clock) counts too."""
    moment = as_of or timezone.now()
    cutoff = moment.astimezone(program.tz) - timedelta(days=program.inactive_days)
    seen = Purchase.objects.counted_as_of(moment) if as_of is not None else Purchase.objects.counted()
    recent = seen.filter(member_id=OuterRef("pk"), occurred_at__gte=cutoff)
    return (
        Member.objects.filter(program=program, status=MemberStatus.ACTIVE, enrolled_at__lte=cutoff)
        .filter(filters.q())
        .filter(~Exists(recent))
    )
