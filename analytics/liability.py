"""The points liability of a program (DESIGN.md section 8): outstanding points and their value as of a moment,
upcoming expiries by month and breakage.

As of a moment T the balances are rebuilt from the ledger (`analytics.as_of`: entries by their
`occurred_at`), set-based, in a few aggregate queries whatever the number of members:

- a lot counts when it was credited by T and had not expired by T (its expiry after T, or none), whether or not
  the expiry job has removed it since (right after an import of history, say);
- what it held at T = its remainder now + what debits after T took from it (allocations of entries that
  occurred after T): points spent later were still owed at T;
- it was pending at T when it became available after T, available otherwise;
- debt at T = what debits made by T left uncovered now + what lots credited after T paid of it since.

At T = now (or later) nothing can have happened after T, and the lots' remainders are used as they are. Members
count by their current status (closed members' points are not owed): the ledger does not date a closure.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from analytics.as_of import entries_as_of
from analytics.metrics import ALL_MEMBERS, MemberFilters, add_months, local_midnight, money, month_of, ratio
from loyalty.models import Allocation, Entry, EntryKind, Lot
from members.models import MemberStatus, Program


@dataclass(frozen=True)
class Liability:
    available: int
    pending: int
    outstanding: int
    value: Decimal
    debt: int


def _owed_lot(program: Program, as_of: datetime, filters: MemberFilters, prefix: str = "") -> Q:
    """The condition on a Lot (reached through `prefix`) that it held points owed at `as_of`: credited by then,
    not expired by then, of a member not closed. A refund lot (a released hold, a cancelled voucher) carries the
    dates of the lot it gives back, but it is owed only from the refund on: before that its points were either
    still in that lot (counted there) or spent."""
    refunded_later = Q(**{f"{prefix}entry__kind": EntryKind.REFUND, f"{prefix}entry__created_at__gt": as_of})
    return (
        Q(**{f"{prefix}program": program, f"{prefix}occurred_at__lte": as_of})
        & ~refunded_later
        & ~Q(**{f"{prefix}expires_at__lte": as_of})
        & ~Q(**{f"{prefix}member__status": MemberStatus.CLOSED})
        & filters.q(f"{prefix}member__")
    )


def _rebuilt(as_of: datetime) -> bool:
    """Whether anything can have happened after `as_of` (a past moment), so that balances must be rebuilt."""
    return as_of < timezone.now()


def _taken_later(program: Program, as_of: datetime, filters: MemberFilters) -> QuerySet[Allocation]:
    """What debits after `as_of` took from the lots owed at `as_of`: points those lots still held then."""
    return Allocation.objects.filter(_owed_lot(program, as_of, filters, "lot__"), entry__occurred_at__gt=as_of)


def _sums(rows: dict[str, int | None], other: dict[str, int | None]) -> dict[str, int]:
    return {name: (rows[name] or 0) + (other.get(name) or 0) for name in rows}


def points_liability(
    program: Program, *, as_of: datetime | None = None, filters: MemberFilters = ALL_MEMBERS
) -> Liability:
    """Outstanding points (available + pending) of members not closed as of `as_of` (now by default), times the
    program's point value, rebuilt from the ledger (see the module docstring). Debt (points members owe after
    returns) is reported beside it, not netted. Two queries, four for a past `as_of`."""
    as_of = as_of or timezone.now()
    ready = Q(available_at__lte=as_of)
    held = Lot.objects.filter(_owed_lot(program, as_of, filters)).aggregate(
        available=Sum("remaining", filter=ready), pending=Sum("remaining", filter=~ready)
    )
    debits = Entry.objects.filter(program=program, occurred_at__lte=as_of, amount__lt=0, uncovered__gt=0)
    debits = debits.exclude(member__status=MemberStatus.CLOSED).filter(filters.q("member__"))
    owed = debits.aggregate(debt=Sum("uncovered"))
    taken_later: dict[str, int | None] = {}
    paid_later: dict[str, int | None] = {}
    if _rebuilt(as_of):
        lot_ready = Q(lot__available_at__lte=as_of)
        taken_later = _taken_later(program, as_of, filters).aggregate(
            available=Sum("amount", filter=lot_ready), pending=Sum("amount", filter=~lot_ready)
        )
        paid_later = (
            Allocation.objects.filter(
                entry__program=program, entry__occurred_at__lte=as_of, entry__amount__lt=0, lot__occurred_at__gt=as_of
            )
            .exclude(member__status=MemberStatus.CLOSED)
            .filter(filters.q("member__"))
            .aggregate(debt=Sum("amount"))
        )
    points = _sums(held, taken_later)
    available, pending = points["available"], points["pending"]
    return Liability(
        available=available,
        pending=pending,
        outstanding=available + pending,
        value=money(program, available + pending),
        debt=_sums(owed, paid_later)["debt"],
    )


@dataclass(frozen=True)
class Expiry:
    month: date
    points: int
    value: Decimal


def upcoming_expiries(
    program: Program, *, months: int = 12, as_of: datetime | None = None, filters: MemberFilters = ALL_MEMBERS
) -> list[Expiry]:
    """Points that will expire, by month (the month of `as_of`, now by default, and the next `months - 1`, in the
    program's time zone): what lots owed at `as_of` (see the module docstring), pending or not, held then, by the
    month of their expiry. Two grouped queries, one for `as_of` now."""
    as_of = as_of or timezone.now()
    first = month_of(program, as_of)
    horizon = local_midnight(program, add_months(first, months))
    held = Lot.objects.filter(_owed_lot(program, as_of, filters), remaining__gt=0, expires_at__lt=horizon)
    month = TruncMonth("expires_at", tzinfo=program.tz)
    queries: list[QuerySet[Any, dict[str, Any]]] = [
        held.annotate(month=month).order_by().values("month").annotate(points=Sum("remaining"))
    ]
    if _rebuilt(as_of):
        later = _taken_later(program, as_of, filters).filter(lot__expires_at__lt=horizon)
        month = TruncMonth("lot__expires_at", tzinfo=program.tz)
        queries.append(later.annotate(month=month).order_by().values("month").annotate(points=Sum("amount")))
    by_month: dict[date, int] = {}
    for rows in queries:
        for row in rows:
            key = month_of(program, row["month"])
            by_month[key] = by_month.get(key, 0) + row["points"]
    return [
        Expiry(month=month, points=by_month.get(month, 0), value=money(program, by_month.get(month, 0)))
        for month in (add_months(first, i) for i in range(months))
    ]


@dataclass(frozen=True)
class Breakage:
    issued: int
    expired: int
    rate: float | None


def breakage(
    program: Program,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    filters: MemberFilters = ALL_MEMBERS,
    as_of: datetime | None = None,
) -> Breakage:
    """Points expired / points issued, both by their entries' time in `[start, end)` (all time by default), of
    the entries that occurred by `as_of` (now by default). An expiry counts when the expiry job posted it.

    Issued = points the program put into circulation: earned (purchases and event rules) and added by hand
    (positive adjustments). Transfers and voucher refunds move points issued before, so they are left out.
    Expired = points lost to expiry. Over all time this is the share of issued points that expired unused;
    over a short period it compares flows (points issued in it mostly expire in a later one)."""
    entries = entries_as_of(program, as_of or timezone.now()).filter(filters.q("member__"))
    if start is not None:
        entries = entries.filter(occurred_at__gte=start)
    if end is not None:
        entries = entries.filter(occurred_at__lt=end)
    issued_q = Q(kind=EntryKind.EARN) | Q(kind=EntryKind.ADJUST, amount__gt=0)
    totals = entries.aggregate(
        issued=Sum("amount", filter=issued_q), expired=Sum("amount", filter=Q(kind=EntryKind.EXPIRE))
    )
    issued, expired = totals["issued"] or 0, -(totals["expired"] or 0)
    return Breakage(issued=issued, expired=expired, rate=ratio(expired, issued))
