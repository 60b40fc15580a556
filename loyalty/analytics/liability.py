"""The points liability of a program (DESIGN.md section 8): outstanding points and their value as of a moment,
upcoming expiries by month and breakage.

As of a moment `as_of` (now by default): points of lots whose expiry is at or before it are not owed, even when
the expiry job has not removed them yet (right after an import of history, say), and pending points that became
available by then count as available. Balances are otherwise today's: the figure does not replay the ledger.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from members.models import MemberStatus, Program

from ..models import Account, Entry, EntryKind, Lot
from .metrics import ALL_MEMBERS, MemberFilters, add_months, local_midnight, money, month_of, ratio


@dataclass(frozen=True)
class Liability:
    available: int
    pending: int
    outstanding: int
    value: Decimal
    debt: int


def _open_lots(program: Program, filters: MemberFilters) -> QuerySet[Lot]:
    """Lots with points left, of members not closed."""
    return (
        Lot.objects.filter(program=program, remaining__gt=0)
        .exclude(member__status=MemberStatus.CLOSED)
        .filter(filters.q("member__"))
    )


def points_liability(
    program: Program, *, as_of: datetime | None = None, filters: MemberFilters = ALL_MEMBERS
) -> Liability:
    """Outstanding points (available + pending) of members not closed as of `as_of` (now by default), times the
    program's point value. A closed account can never spend again, so its points are not owed; nor are points
    past their expiry at `as_of` (see the module docstring). Debt (points members owe after returns) is
    reported beside it, not netted. Two queries."""
    as_of = as_of or timezone.now()
    totals = (
        Account.objects.filter(program=program)
        .exclude(member__status=MemberStatus.CLOSED)
        .filter(filters.q("member__"))
        .aggregate(available=Sum("available"), pending=Sum("pending"), debt=Sum("debt"))
    )
    expired = Q(expires_at__lte=as_of)
    matured = Q(pending=True, available_at__lte=as_of) & ~expired
    lots = _open_lots(program, filters).aggregate(
        expired_available=Sum("remaining", filter=expired & Q(pending=False)),
        expired_pending=Sum("remaining", filter=expired & Q(pending=True)),
        matured=Sum("remaining", filter=matured),
    )
    lapsed, matured_points = lots["expired_available"] or 0, lots["matured"] or 0
    available = (totals["available"] or 0) - lapsed + matured_points
    pending = (totals["pending"] or 0) - (lots["expired_pending"] or 0) - matured_points
    return Liability(
        available=available,
        pending=pending,
        outstanding=available + pending,
        value=money(program, available + pending),
        debt=totals["debt"] or 0,
    )


@dataclass(frozen=True)
class Expiry:
    month: date
    points: int
    value: Decimal


def upcoming_expiries(
    program: Program, *, months: int = 12, as_of: datetime | None = None, filters: MemberFilters = ALL_MEMBERS
) -> list[Expiry]:
    """Points that will expire, by month (the current one and the next `months - 1`, in the program's time
    zone): the remainder of lots, pending or not, of members not closed, expiring after `as_of` (now by default)."""
    as_of = as_of or timezone.now()
    first = month_of(program, as_of)
    rows = (
        _open_lots(program, filters)
        .filter(expires_at__gt=as_of, expires_at__lt=local_midnight(program, add_months(first, months)))
        .annotate(month=TruncMonth("expires_at", tzinfo=program.tz))
        .order_by()
        .values("month")
        .annotate(points=Sum("remaining"))
    )
    by_month = {month_of(program, row["month"]): row["points"] for row in rows}
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
) -> Breakage:
    """Points expired / points issued, both by their entries' time in `[start, end)` (all time by default).

    Issued = points the program put into circulation: earned (purchases and event rules) and added by hand
    (positive adjustments). Transfers and voucher refunds move points issued before, so they are left out.
    Expired = points lost to expiry. Over all time this is the share of issued points that expired unused;
    over a short period it compares flows (points issued in it mostly expire in a later one)."""
    entries = Entry.objects.filter(program=program).filter(filters.q("member__"))
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
