"""Every member's purchase figures, RFM scores and segment as of a moment, computed set-based (DESIGN.md
section 8): one aggregate query (GROUP BY member) that answers in whole numbers only (microseconds, days, cents),
then NumPy. `analytics.members` writes them.

Definitions (as_of included, days in the program's time zone):
- what the figures see as of as_of: `analytics.as_of` (purchases made by then, returns made by then); a
  member who is not one yet at as_of has no purchase by then, so a row without figures;
- a purchase counts when it is not fully returned by as_of (`qualifying_purchases`: one for 0 counts); first and
  last purchase, purchases (frequency) and purchase days are over those;
- monetary = sum(total - returned by as_of); average order value = monetary / purchases; historical CLV =
  monetary x the program's margin rate; money rounded half up to cents;
- mean days between purchases = (last purchase day - first purchase day) / (purchase days - 1), with two
  purchase days or more (rounded half up to hundredths); the next purchase is expected that long (unrounded)
  after the last one;
- recency = whole days from the last purchase to as_of;
- R, F and M scores and the segment: `analytics.rfm`, among members with a purchase.

Members without a counted purchase get figures too: purchases 0, no scores, an empty segment.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import BigIntegerField, Count, DecimalField, ExpressionWrapper, Func, Max, Min, Sum
from django.db.models.functions import Cast, Round, TruncDate
from numpy.typing import NDArray

from analytics.as_of import qualifying_purchases
from analytics.models import MemberAnalytics
from analytics.rfm import quintile_scores, rfm_grid, segments_of
from loyalty.models import NET_THEN
from members.models import Member, Program

I64 = NDArray[np.int64]
NULL = np.iinfo(np.int64).min  # in the integer columns: no value
NO_SEGMENT = -1  # the segment code of "" (names are coded 0, 1, ...)
MICROSECONDS_PER_DAY = 86_400 * 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Per-member columns, all whole numbers: times in microseconds since the epoch, money in cents, mean days in
# hundredths. The refresh writes them with the program, the as-of time, the segment and segment_since.
COLUMNS = (
    "member_id",
    "first_purchase_at",
    "last_purchase_at",
    "purchases",
    "purchase_days",
    "monetary",
    "average_order_value",
    "mean_days_between",
    "next_purchase_expected_at",
    "recency_days",
    "r_score",
    "f_score",
    "m_score",
    "clv_historical",
)
TIME_COLUMNS = {"first_purchase_at", "last_purchase_at", "next_purchase_expected_at"}
HUNDREDTHS_COLUMNS = {"monetary", "average_order_value", "mean_days_between", "clv_historical"}


@dataclass
class Figures:
    """Every member's figures, aligned with `member_ids` (sorted): `columns` as in COLUMNS (NULL for none),
    the segment now and at the last refresh ("" for none), and whether it changed."""

    member_ids: I64
    columns: dict[str, I64]
    segment: NDArray[np.object_]
    previous_segment: NDArray[np.object_]
    purchasers: int

    @property
    def changed(self) -> NDArray[np.bool_]:
        return self.segment != self.previous_segment

    @property
    def size(self) -> int:
        return int(self.member_ids.size)


# --- Reading ---------------------------------------------------------------------------------------


class EpochMicroseconds(Func):
    """A datetime as whole microseconds since 1970-01-01 UTC (exact: no float on the way)."""

    output_field = BigIntegerField()
    # SQLite keeps datetimes as "YYYY-MM-DD HH:MM:SS[.ffffff]" text in UTC: whole seconds from julianday()
    # (a double, exact to well under a second), microseconds from the text. The expression (an aggregate of a
    # column, without parameters) appears twice.
    template = (
        "(CAST(ROUND((julianday(substr(%(expressions)s, 1, 19)) - 2440587.5) * 86400) AS INTEGER) * 1000000"
        " + CAST(substr(%(expressions)s || '.000000', 21, 6) AS INTEGER))"
    )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint")


class EpochDays(Func):
    """A date as days since 1970-01-01."""

    output_field = BigIntegerField()
    template = "CAST(julianday(%(expressions)s) - 2440587.5 AS INTEGER)"

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s - DATE '1970-01-01')")


def _cents(amount: Any) -> Cast:
    hundredfold = ExpressionWrapper(amount * 100, output_field=DecimalField())
    return Cast(Round(hundredfold), BigIntegerField())


def _purchase_rows(program: Program, as_of: datetime) -> I64:
    """One row per member with a counted purchase, by member id: member id, first and last purchase (µs),
    first and last purchase day (days), purchases, purchase days, monetary (cents)."""

    def day(moment: Any) -> TruncDate:
        return TruncDate(moment, tzinfo=program.tz)

    # Days of the first and last purchase from their times: one time-zone conversion per member, not per row.
    rows = list(
        qualifying_purchases(program, as_of)
        .order_by()
        .values("member_id")
        .annotate(
            first_at=EpochMicroseconds(Min("occurred_at")),
            last_at=EpochMicroseconds(Max("occurred_at")),
            first_day=EpochDays(day(Min("occurred_at"))),
            last_day=EpochDays(day(Max("occurred_at"))),
            purchases=Count("pk"),
            purchase_days=Count(day("occurred_at"), distinct=True),
            monetary=_cents(Sum(NET_THEN)),
        )
        .order_by("member_id")
        .values_list(
            "member_id", "first_at", "last_at", "first_day", "last_day", "purchases", "purchase_days", "monetary"
        )
    )
    return np.array(rows, dtype=np.int64).reshape(len(rows), 8)


def _positions(member_ids: I64, ids: I64) -> tuple[I64, NDArray[np.bool_]]:
    """Where each of `ids` is in the sorted `member_ids`, and whether it is there at all."""
    if member_ids.size == 0:
        return np.zeros(ids.size, dtype=np.int64), np.zeros(ids.size, dtype=bool)
    positions = np.minimum(np.searchsorted(member_ids, ids), member_ids.size - 1)
    return positions, member_ids[positions] == ids


def _previous_segments(program: Program, member_ids: I64) -> NDArray[np.object_]:
    """Each member's segment at the last refresh ("" without a row)."""
    previous = np.full(member_ids.size, "", dtype=object)
    rows = list(MemberAnalytics.objects.filter(program=program).exclude(segment="").values_list("member_id", "segment"))
    if rows:
        positions, known = _positions(member_ids, np.fromiter((row[0] for row in rows), np.int64, len(rows)))
        previous[positions[known]] = np.array([row[1] for row in rows], dtype=object)[known]
    return previous


# --- Computing -------------------------------------------------------------------------------------


def _microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _half_up_ratio(numerator: I64, denominator: I64 | int) -> I64:
    """numerator / denominator rounded half up, for numerator >= 0 and denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def _purchaser_columns(program: Program, rows: I64, as_of: datetime) -> tuple[dict[str, I64], NDArray[np.object_]]:
    """The figures of the members in `rows` (see `_purchase_rows`) and their segments."""
    _, first_at, last_at, first_day, last_day, purchases, purchase_days, monetary = rows.T
    day_span = last_day - first_day
    repeat = purchase_days >= 2
    gaps = np.maximum(purchase_days - 1, 1)  # the mean needs two purchase days; 1 avoids dividing by zero
    recency = (_microseconds(as_of) - last_at) // MICROSECONDS_PER_DAY
    margin = int(Decimal(program.margin_rate).scaleb(4))  # the margin rate has four decimal places
    r = quintile_scores(recency, descending=True)
    f = quintile_scores(purchases)
    m = quintile_scores(monetary)
    columns = {
        "first_purchase_at": first_at,
        "last_purchase_at": last_at,
        "purchases": purchases,
        "purchase_days": purchase_days,
        "monetary": monetary,
        "average_order_value": _half_up_ratio(monetary, purchases),
        "mean_days_between": np.where(repeat, _half_up_ratio(100 * day_span, gaps), NULL),
        "next_purchase_expected_at": np.where(repeat, last_at + day_span * MICROSECONDS_PER_DAY // gaps, NULL),
        "recency_days": recency,
        "r_score": r.astype(np.int64),
        "f_score": f.astype(np.int64),
        "m_score": m.astype(np.int64),
        "clv_historical": _half_up_ratio(monetary * margin, 10_000),
    }
    return columns, segments_of(rfm_grid(program), r, f, m)


def member_figures(*, program: Program, as_of: datetime) -> Figures:
    """Every member's figures and segment as of `as_of` (no writes)."""
    member_ids = np.array(Member.objects.filter(program=program).order_by("pk").values_list("pk", flat=True), np.int64)
    rows = _purchase_rows(program, as_of)
    positions, known = _positions(member_ids, rows[:, 0])
    # A purchase recorded under another program's member is not this program's.
    rows, positions = rows[known], positions[known]
    columns = {name: np.full(member_ids.size, NULL, dtype=np.int64) for name in COLUMNS}
    for name in ("purchases", "purchase_days", "monetary", "clv_historical"):
        columns[name][:] = 0
    columns["member_id"] = member_ids
    segment = np.full(member_ids.size, "", dtype=object)
    if rows.size:
        purchaser_columns, purchaser_segments = _purchaser_columns(program, rows, as_of)
        for name, values in purchaser_columns.items():
            columns[name][positions] = values
        segment[positions] = purchaser_segments
    return Figures(
        member_ids=member_ids,
        columns=columns,
        segment=segment,
        previous_segment=_previous_segments(program, member_ids),
        purchasers=int(rows.shape[0]),
    )
