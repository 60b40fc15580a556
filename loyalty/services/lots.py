"""Scheduled ledger jobs: activate pending points, expire points, warn before expiry.

Each job works in batches of members, one transaction per batch, with a
constant number of queries per batch. A batch locks its members' accounts in
primary-key order, exactly as a request would, so jobs and requests never
see each other's half-done work. Running a job twice, or again after a crash
halfway, does nothing more: a batch either committed or left no trace, and
the rows it already handled no longer match its filter.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, QuerySet, Sum
from django.utils import timezone

from events.outbox import EventType, events_emit
from events.payloads.points import PointsExpired, points_expired_payload, points_expiring_soon_payload
from loyalty.models import Account, Allocation, Entry, EntryKind, Lot
from loyalty.services.accounts import lock_accounts_by_id
from loyalty.services.allocation import debit_deltas
from members.expiry import ExpiryPolicy
from members.models import Program


@dataclass
class JobReport:
    members: int = 0
    lots: int = 0
    points: int = 0
    batches: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"members": self.members, "lots": self.lots, "points": self.points, "batches": self.batches}


def _due_member_ids(lots: QuerySet[Lot], batch_size: int) -> list[int]:
    return list(lots.order_by("member_id").values_list("member_id", flat=True).distinct()[:batch_size])


def _save_balances(accounts: dict[int, Account], deltas: dict[int, dict[str, int]]) -> None:
    now = timezone.now()
    changed = []
    for member_id, member_deltas in deltas.items():
        account = accounts[member_id]
        for name, delta in member_deltas.items():
            setattr(account, name, getattr(account, name) + delta)
        account.updated_at = now
        changed.append(account)
    Account.objects.bulk_update(
        changed, ["available", "pending", "debt", "earned", "redeemed", "expired", "updated_at"]
    )


def lots_activate(*, now: datetime | None = None, batch_size: int | None = None) -> JobReport:
    """Pending points whose return window has passed become available."""
    now = now or timezone.now()
    batch_size = batch_size or settings.LOYALTY_JOB_BATCH_SIZE
    report = JobReport()
    due = Lot.objects.filter(pending=True, available_at__lte=now)
    while member_ids := _due_member_ids(due, batch_size):
        with transaction.atomic():
            accounts = lock_accounts_by_id(member_ids)
            batch = due.filter(member_id__in=member_ids)
            sums = list(batch.values("member_id").annotate(points=Sum("remaining"), lots=Count("id")))
            batch.update(pending=False)
            _save_balances(
                accounts, {r["member_id"]: {"pending": -r["points"], "available": r["points"]} for r in sums}
            )
        report.batches += 1
        report.members += len(sums)
        report.lots += sum(r["lots"] for r in sums)
        report.points += sum(r["points"] for r in sums)
    return report


def lots_expire(*, now: datetime | None = None, batch_size: int | None = None) -> JobReport:
    """Posts one expiry entry per member for every lot past its expiry date."""
    now = now or timezone.now()
    batch_size = batch_size or settings.LOYALTY_JOB_BATCH_SIZE
    report = JobReport()
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
    while member_ids := _due_member_ids(due, batch_size):
        with transaction.atomic():
            accounts = lock_accounts_by_id(member_ids)
            lots_by_member: dict[int, list[Lot]] = defaultdict(list)
            for lot in due.filter(member_id__in=member_ids).order_by("member_id", "pk"):
                lots_by_member[lot.member_id].append(lot)
            _expire_batch(accounts, lots_by_member, now)
        report.batches += 1
        report.members += len(lots_by_member)
        report.lots += sum(len(lots) for lots in lots_by_member.values())
        report.points += sum(lot.remaining for lots in lots_by_member.values() for lot in lots)
    return report


def _expire_batch(accounts: dict[int, Account], lots_by_member: dict[int, list[Lot]], now: datetime) -> None:
    entries = Entry.objects.bulk_create(
        [
            Entry(
                program_id=lots[0].program_id,
                member_id=member_id,
                kind=EntryKind.EXPIRE,
                amount=-sum(lot.remaining for lot in lots),
                occurred_at=now,
            )
            for member_id, lots in lots_by_member.items()
        ]
    )
    Allocation.objects.bulk_create(
        [
            Allocation(member_id=entry.member_id, entry=entry, lot=lot, amount=lot.remaining)
            for entry in entries
            for lot in lots_by_member[entry.member_id]
        ]
    )
    deltas = {
        member_id: debit_deltas(
            kind=EntryKind.EXPIRE,
            amount=sum(lot.remaining for lot in lots),
            takes=[(lot, lot.remaining) for lot in lots],
        )
        for member_id, lots in lots_by_member.items()
    }
    Lot.objects.filter(pk__in=[lot.pk for lots in lots_by_member.values() for lot in lots]).update(remaining=0)
    _save_balances(accounts, deltas)
    by_program: dict[int, list[tuple[int | None, PointsExpired]]] = defaultdict(list)
    for entry in entries:
        payload = points_expired_payload(
            member_id=entry.member_id,
            points=-entry.amount,
            lots=len(lots_by_member[entry.member_id]),
            balances=accounts[entry.member_id].balances,
        )
        by_program[entry.program_id].append((entry.member_id, payload))
    for program_id, events in by_program.items():
        events_emit(program_id=program_id, type=EventType.POINTS_EXPIRED, events=events, occurred_at=now)


def lots_warn_expiring(*, now: datetime | None = None) -> JobReport:
    """Marks the lots that expire within each program's warning window, once each.

    The report's details list, per member, the points and the earliest expiry,
    for the notifications sent from it.
    """
    now = now or timezone.now()
    report = JobReport()
    programs = Program.objects.exclude(expiry_policy=ExpiryPolicy.NEVER)
    for program in programs:
        horizon = now + timedelta(days=program.expiry_warning_days)
        with transaction.atomic():
            lots = Lot.objects.select_for_update(skip_locked=True).filter(
                program=program, remaining__gt=0, warned_at__isnull=True, expires_at__gt=now, expires_at__lte=horizon
            )
            lot_ids = list(lots.values_list("pk", flat=True))
            if not lot_ids:
                continue
            marked = Lot.objects.filter(pk__in=lot_ids)
            per_member = list(
                marked.values("member_id").annotate(points=Sum("remaining"), first_expiry=Min("expires_at"))
            )
            marked.update(warned_at=now)
            events_emit(
                program_id=program.pk,
                type=EventType.POINTS_EXPIRING_SOON,
                occurred_at=now,
                events=[
                    (
                        row["member_id"],
                        points_expiring_soon_payload(
                            member_id=row["member_id"], points=row["points"], expires_at=row["first_expiry"]
                        ),
                    )
                    for row in per_member
                ],
            )
        report.batches += 1
        report.members += len(per_member)
        report.lots += len(lot_ids)
        report.points += sum(row["points"] for row in per_member)
        report.details.extend({"program_id": program.pk, **row} for row in per_member)
    return report
