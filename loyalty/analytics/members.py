"""Per-member purchase figures, RFM scores and segments, set-based (DESIGN.md section 8).

`member_analytics_refresh` reads a program's purchases up to `as_of` with one aggregate query (GROUP BY
member) that answers in whole numbers only (microseconds, days, cents), computes every member's figures with
NumPy and writes all rows back in bulk: on PostgreSQL a binary COPY into a temporary table, then one
INSERT ... ON CONFLICT for the figures and one INSERT ... SELECT for the segment changes; elsewhere
`bulk_create(update_conflicts=True)` and `bulk_insert`. The CLV prediction columns (p_alive,
expected_purchases, clv_predicted) are never written here.

Definitions (as_of included, days in the program's time zone):
- a purchase counts when it is not fully returned (returned_total < total); first and last purchase,
  purchases (frequency) and purchase days are over those;
- monetary = sum(total - returned_total); average order value = monetary / purchases; historical CLV =
  monetary x the program's margin rate; money rounded half up to cents;
- mean days between purchases = (last purchase day - first purchase day) / (purchase days - 1), with two
  purchase days or more (rounded half up to hundredths); the next purchase is expected that long (unrounded)
  after the last one;
- recency = whole days from the last purchase to as_of;
- R, F and M scores and the segment: `loyalty.analytics.rfm`, among members with a purchase.

Members without a counted purchase get a row too: purchases 0, no scores, an empty segment. A member whose
segment differs from the last refresh's (no row counts as "") gets a `SegmentChange` and a new
`segment_since`, and a move from one segment to another emits `member.segment_changed` (`segment_events`) in
the same transaction; a refresh at the same as_of as the last one changes nothing.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, DecimalField, ExpressionWrapper, F, Func, Max, Min, Sum
from django.db.models.functions import Cast, Round, TruncDate
from django.utils import timezone
from numpy.typing import NDArray

from config.bulk import bulk_insert
from members.models import Member, Program

from ..models import MemberAnalytics, Purchase, SegmentChange
from .rfm import quintile_scores, rfm_grid, segments_of
from .segment_events import segment_changes_emit

I64 = NDArray[np.int64]
NULL = np.iinfo(np.int64).min  # in the integer columns: no value
NO_SEGMENT = -1  # the segment code of "" (names are coded 0, 1, ...)
MICROSECONDS_PER_DAY = 86_400 * 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ADVISORY_LOCK_NAMESPACE = 0x52464D  # "RFM": one refresh per program at a time (PostgreSQL)
COPY_ROWS_PER_WRITE = 100_000

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


@dataclass(frozen=True)
class RefreshResult:
    as_of: datetime
    members: int
    purchasers: int
    segment_changes: int

    def as_dict(self) -> dict[str, int | str]:
        return {
            "as_of": self.as_of.isoformat(),
            "members": self.members,
            "purchasers": self.purchasers,
            "segment_changes": self.segment_changes,
        }


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
        Purchase.objects.filter(program=program, occurred_at__lte=as_of, returned_total__lt=F("total"))
        .order_by()
        .values("member_id")
        .annotate(
            first_at=EpochMicroseconds(Min("occurred_at")),
            last_at=EpochMicroseconds(Max("occurred_at")),
            first_day=EpochDays(day(Min("occurred_at"))),
            last_day=EpochDays(day(Max("occurred_at"))),
            purchases=Count("pk"),
            purchase_days=Count(day("occurred_at"), distinct=True),
            monetary=_cents(Sum(F("total") - F("returned_total"))),
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
    member_ids = np.array(
        Member.objects.filter(program=program).order_by("pk").values_list("pk", flat=True), dtype=np.int64
    )
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


# --- Writing on PostgreSQL: binary COPY, then set-based INSERTs -----------------------------------------

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
COPY_TRAILER = b"\xff\xff"
TEMP_COLUMNS = (*COLUMNS, "segment", "previous_segment", "changed")  # segments as codes (see `_codes`), 0/1


def _binary_rows(columns: list[I64]) -> bytes:
    """Rows of bigints in COPY's binary format: per row the field count, then per field its length (8)
    and its big-endian value."""
    layout = np.dtype(
        [("fields", ">i2")] + [(f"{i}", [("length", ">i4"), ("value", ">i8")]) for i in range(len(columns))]
    )
    rows = np.empty(columns[0].size, dtype=layout)
    rows["fields"] = len(columns)
    for i, values in enumerate(columns):
        rows[str(i)]["length"] = 8
        rows[str(i)]["value"] = values
    return rows.tobytes()


def _codes(segments: NDArray[np.object_], names: list[str]) -> I64:
    """Each segment's position in `names` (NO_SEGMENT for "")."""
    code = {name: i for i, name in enumerate(names)} | {"": NO_SEGMENT}
    return np.fromiter((code[name] for name in segments.tolist()), dtype=np.int64, count=segments.size)


def _copy_to_temporary_table(cursor: Any, figures: Figures, names: list[str]) -> None:
    cursor.execute(
        "CREATE TEMPORARY TABLE member_analytics_refresh ("
        + ", ".join(f"{name} bigint NOT NULL" for name in TEMP_COLUMNS)
        + ") ON COMMIT DROP"
    )
    columns = [figures.columns[name] for name in COLUMNS] + [
        _codes(figures.segment, names),
        _codes(figures.previous_segment, names),
        figures.changed.astype(np.int64),
    ]
    with cursor.cursor.copy(
        f"COPY member_analytics_refresh ({', '.join(TEMP_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(COPY_SIGNATURE)
        for start in range(0, figures.size, COPY_ROWS_PER_WRITE):
            copy.write(_binary_rows([values[start : start + COPY_ROWS_PER_WRITE] for values in columns]))
        copy.write(COPY_TRAILER)


def _select_expression(name: str) -> str:
    """The column's value from the temporary table's whole number."""
    value = f"NULLIF(t.{name}, '{NULL}'::bigint)"
    if name in TIME_COLUMNS:
        return f"TIMESTAMPTZ 'epoch' + {value} * INTERVAL '1 microsecond'"
    if name in HUNDREDTHS_COLUMNS:
        return f"{value}::numeric / 100"
    return value


def _write_postgresql(program: Program, figures: Figures, as_of: datetime) -> int:
    """Writes the figures and the segment changes; returns how many changes."""
    names = sorted({*figures.segment.tolist(), *figures.previous_segment.tolist()} - {""})
    table = MemberAnalytics._meta.db_table
    written = [*COLUMNS, "program_id", "computed_at", "segment", "segment_since"]
    values = [
        *(_select_expression(name) for name in COLUMNS),
        "%(program)s",
        "%(as_of)s",
        "COALESCE((%(names)s::text[])[t.segment + 1], '')",
        "CASE WHEN t.changed = 1 THEN %(as_of)s::timestamptz END",
    ]
    compared = [name for name in written if name not in ("member_id", "segment_since")]
    params = {"program": program.pk, "as_of": as_of, "names": names}
    with connection.cursor() as cursor:
        _copy_to_temporary_table(cursor, figures, names)
        # Rows whose values did not change are not rewritten: a second refresh at the same as_of writes nothing.
        cursor.execute(
            f"INSERT INTO {table} AS current ({', '.join(written)}) "
            f"SELECT {', '.join(values)} FROM member_analytics_refresh t "
            "ON CONFLICT (member_id) DO UPDATE SET "
            + ", ".join(f"{name} = EXCLUDED.{name}" for name in compared)
            + ", segment_since = COALESCE(EXCLUDED.segment_since, current.segment_since) "
            + f"WHERE ({', '.join(f'current.{name}' for name in compared)}) "
            + f"IS DISTINCT FROM ({', '.join(f'EXCLUDED.{name}' for name in compared)})",
            params,
        )
        cursor.execute(
            f"INSERT INTO {SegmentChange._meta.db_table} (program_id, member_id, from_segment, to_segment, changed_at) "
            "SELECT %(program)s, t.member_id, COALESCE((%(names)s::text[])[t.previous_segment + 1], ''), "
            "COALESCE((%(names)s::text[])[t.segment + 1], ''), %(as_of)s FROM member_analytics_refresh t "
            "WHERE t.changed = 1",
            params,
        )
        changes = cursor.rowcount
        cursor.execute("DROP TABLE member_analytics_refresh")
    return changes


# --- Writing elsewhere: bulk_create and bulk_insert --------------------------------------------------


def _python_value(name: str, value: int) -> object:
    if value == NULL:
        return None
    if name in TIME_COLUMNS:
        return EPOCH + timedelta(microseconds=value)
    if name in HUNDREDTHS_COLUMNS:
        return Decimal(value).scaleb(-2)
    return value


def _instances(program: Program, figures: Figures, where: NDArray[np.bool_], as_of: datetime) -> list[MemberAnalytics]:
    columns = {name: figures.columns[name][where].tolist() for name in COLUMNS}
    segments = figures.segment[where].tolist()
    changed = figures.changed[where].tolist()
    return [
        MemberAnalytics(
            program=program,
            computed_at=as_of,
            segment=segment,
            segment_since=as_of if changed[i] else None,
            **{name: _python_value(name, columns[name][i]) for name in COLUMNS},
        )
        for i, segment in enumerate(segments)
    ]


def _write_elsewhere(program: Program, figures: Figures, as_of: datetime) -> int:
    """Writes the figures and the segment changes; returns how many changes."""
    changed = figures.changed
    fields = [name.removesuffix("_id") for name in COLUMNS if name != "member_id"]
    fields += ["program", "computed_at", "segment"]
    for where, update in ((changed, [*fields, "segment_since"]), (~changed, fields)):
        MemberAnalytics.objects.bulk_create(
            _instances(program, figures, where, as_of),
            update_conflicts=True,
            unique_fields=["member"],
            update_fields=update,
        )
    rows = zip(
        figures.member_ids[changed].tolist(),
        figures.previous_segment[changed].tolist(),
        figures.segment[changed].tolist(),
        strict=True,
    )
    return bulk_insert(
        SegmentChange,
        ["program_id", "member_id", "from_segment", "to_segment", "changed_at"],
        ((program.pk, member_id, before, after, as_of) for member_id, before, after in rows),
    )


# --- The refresh -----------------------------------------------------------------------------------


def _lock(program: Program) -> None:
    """Refreshes of one program run one after the other, so each sees the last one's segments."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, program.pk % 2**31])


def member_analytics_refresh(*, program: Program, as_of: datetime | None = None) -> RefreshResult:
    """Recomputes every member's figures, scores and segment as of `as_of` (default: now), in one
    transaction; records a SegmentChange for each member whose segment changed."""
    as_of = as_of or timezone.now()
    with transaction.atomic():
        _lock(program)
        figures = member_figures(program=program, as_of=as_of)
        write = _write_postgresql if connection.vendor == "postgresql" else _write_elsewhere
        changes = write(program, figures, as_of)
        segment_changes_emit(program=program, figures=figures, as_of=as_of)
    return RefreshResult(as_of=as_of, members=figures.size, purchasers=figures.purchasers, segment_changes=changes)
