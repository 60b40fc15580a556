"""The refresh of per-member analytics (DESIGN.md section 8): `member_analytics_refresh` computes every member's
figures (`member_figures`, where the definitions are) and writes all rows back in bulk: on PostgreSQL a binary
COPY into a temporary table, then one INSERT ... ON CONFLICT for the figures and one INSERT ... SELECT for the
segment changes; elsewhere `bulk_create(update_conflicts=True)` and `bulk_insert`. The CLV prediction columns
(p_alive, expected_purchases, clv_predicted) are never written here.

Members without a counted purchase get a row too. A member whose segment differs from the last refresh's (no
row counts as "") gets a `SegmentChange` and a new `segment_since`, and a move from one segment to another
emits `member.segment_changed` (`segment_events`) in the same transaction; a refresh at the same as_of as the
last one changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from numpy.typing import NDArray

from analytics.member_figures import (
    COLUMNS,
    EPOCH,
    HUNDREDTHS_COLUMNS,
    I64,
    NO_SEGMENT,
    NULL,
    TIME_COLUMNS,
    Figures,
    member_figures,
)
from analytics.models import MemberAnalytics, SegmentChange
from analytics.segment_events import segment_changes_emit
from config.bulk import bulk_insert
from members.models import Program

ADVISORY_LOCK_NAMESPACE = 0x52464D  # "RFM": one refresh per program at a time (PostgreSQL)
COPY_ROWS_PER_WRITE = 100_000


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
    params: dict[str, Any] = {"program": program.pk, "as_of": as_of, "names": names}
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
