"""Events that come from time, not from requests (DESIGN.md sections 8, 9 and 11): `member.inactive` and
`member.next_purchase_due`, from one daily job (`loyalty.tasks.member_timing_events_task`).

Like the ledger jobs (`loyalty.services.lots`), each job works per active program in batches of members (keyset on the
member id, `LOYALTY_JOB_BATCH_SIZE`), one transaction per batch and a constant number of queries per batch.
A batch locks its members' accounts in primary-key order, as a purchase does, then reads again which of them
are due: under the lock a purchase committed meanwhile counts, and a concurrent run of the job finds the
other run's marks. It then sets a mark on each account and emits the events in the same transaction, so a
crash leaves both or neither, and another run finds nothing more to do.

Inactivity (`Program.inactive_days`, the definition of `analytics.metrics.inactive_members`): an active
member enrolled at least `inactive_days` days ago without a counted purchase (one not fully returned) in
the last `inactive_days` days, in the program's local calendar. A member who never bought is inactive counted
from enrolment. The spell starts at the later of the last counted purchase and the enrolment;
`Account.inactive_notified_for` keeps the start of the spell the event was sent for, so only a counted
purchase after it starts a new spell (nothing needs resetting when a member buys).

Next purchase due: the analytics refresh expects a repeat buyer's next purchase `mean_days_between` days
after the last one (`MemberAnalytics.next_purchase_expected_at`). The event fires once the local day of that
date has come, while the member has not bought since; `Account.next_purchase_notified_for` keeps the date it
was sent for, so the same date never fires twice, and only a later one (a new purchase, then a refresh) fires
again. Dates more than `NEXT_PURCHASE_LOOKBACK_DAYS` days old are not announced: a nudge that late is no
longer timely (the first run after deploying this, or after importing purchase history, would otherwise
nudge every lapsed buyer at once; those are what `member.inactive` is for).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from analytics.models import MemberAnalytics
from events.outbox import EventType, events_emit
from events.payloads.members import member_inactive_payload, member_next_purchase_due_payload
from loyalty.models import Account, Purchase
from loyalty.services.accounts import lock_accounts_by_id
from members.models import Member, MemberStatus, Program

NEXT_PURCHASE_LOOKBACK_DAYS = 7


@dataclass
class TimingReport:
    members: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"members": self.members, "batches": self.batches}


def _counted_purchases(member: str) -> QuerySet[Purchase]:
    """Purchases not fully returned of the member named by the outer query's field `member`."""
    return Purchase.objects.counted().filter(member_id=OuterRef(member))


def _batches(due: QuerySet[Any], batch_size: int) -> Iterator[list[int]]:
    """Member ids of `due` (keyed by member id) in primary-key order, a batch at a time (keyset: a member
    handled, or no longer due, is never read again in the same run)."""
    ids = due.order_by("pk").values_list("pk", flat=True)
    last = 0
    while batch := list(ids.filter(pk__gt=last)[:batch_size]):
        yield batch
        last = batch[-1]


def _lock(program: Program, member_ids: list[int]) -> dict[int, Account]:
    """Locks the members' accounts in primary-key order, creating missing ones (members enrolled in bulk)."""
    accounts = lock_accounts_by_id(member_ids)
    if len(accounts) < len(member_ids):
        missing = [Account(member_id=pk, program_id=program.pk) for pk in member_ids if pk not in accounts]
        Account.objects.bulk_create(missing, ignore_conflicts=True)
        accounts = lock_accounts_by_id(member_ids)
    return accounts


def _local_midnight(program: Program, day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=program.tz)


DueQuery = Callable[[Program, datetime], QuerySet[Any]]
# (program, the due query, the batch's locked accounts, the batch's member ids, now) -> events emitted
BatchEmit = Callable[[Program, QuerySet[Any], dict[int, Account], list[int], datetime], int]


def _run(*, due: DueQuery, emit: BatchEmit, now: datetime | None, batch_size: int | None) -> TimingReport:
    now = now or timezone.now()
    batch_size = batch_size or settings.LOYALTY_JOB_BATCH_SIZE
    report = TimingReport()
    for program in Program.objects.filter(is_active=True).order_by("pk"):
        program_due = due(program, now)
        for member_ids in _batches(program_due, batch_size):
            with transaction.atomic():
                report.members += emit(program, program_due, _lock(program, member_ids), member_ids, now)
            report.batches += 1
    return report


# --- member.inactive ---------------------------------------------------------------------------------


def _inactive_due(program: Program, now: datetime) -> QuerySet[Member]:
    cutoff = now.astimezone(program.tz) - timedelta(days=program.inactive_days)  # N local calendar days
    counted = _counted_purchases("pk")
    return (
        Member.objects.filter(program=program, status=MemberStatus.ACTIVE, enrolled_at__lte=cutoff)
        .filter(~Exists(counted.filter(occurred_at__gte=cutoff)))
        .filter(
            Q(account__inactive_notified_for__isnull=True)
            | Exists(counted.filter(occurred_at__gt=OuterRef("account__inactive_notified_for")))
        )
    )


def _inactive_emit(
    program: Program, due: QuerySet[Member], accounts: dict[int, Account], member_ids: list[int], now: datetime
) -> int:
    last = Subquery(_counted_purchases("pk").order_by("-occurred_at").values("occurred_at")[:1])
    rows = list(
        due.filter(pk__in=member_ids)
        .annotate(last_purchase_at=last)
        .values_list("pk", "enrolled_at", "last_purchase_at", "analytics__segment")
    )
    today = now.astimezone(program.tz).date()
    events = []
    for member_id, enrolled_at, last_purchase_at, segment in rows:
        account = accounts[member_id]
        since = max(enrolled_at, last_purchase_at) if last_purchase_at else enrolled_at
        account.inactive_notified_for = since
        data = member_inactive_payload(
            member_id=member_id,
            inactive_since=since,
            last_purchase_at=last_purchase_at,
            inactive_days=program.inactive_days,
            days_inactive=(today - since.astimezone(program.tz).date()).days,
            segment=segment,
            balances=account.balances,
        )
        events.append((member_id, data))
    Account.objects.bulk_update([accounts[member_id] for member_id, *_ in rows], ["inactive_notified_for"])
    events_emit(program_id=program.pk, type=EventType.MEMBER_INACTIVE, events=events, occurred_at=now)
    return len(events)


def members_inactive_notify(*, now: datetime | None = None, batch_size: int | None = None) -> TimingReport:
    """Emits `member.inactive` once per inactivity spell (see the module docstring) for every member of an
    active program who has become inactive by `now` (default: now)."""
    return _run(due=_inactive_due, emit=_inactive_emit, now=now, batch_size=batch_size)


# --- member.next_purchase_due ------------------------------------------------------------------------


def _next_purchase_due(program: Program, now: datetime) -> QuerySet[MemberAnalytics]:
    today = now.astimezone(program.tz).date()
    notified = "member__account__next_purchase_notified_for"
    bought_since = _counted_purchases("member_id").filter(occurred_at__gt=OuterRef("last_purchase_at"))
    return (
        MemberAnalytics.objects.filter(program=program, member__status=MemberStatus.ACTIVE)
        .filter(
            next_purchase_expected_at__gte=_local_midnight(
                program, today - timedelta(days=NEXT_PURCHASE_LOOKBACK_DAYS)
            ),
            next_purchase_expected_at__lt=_local_midnight(program, today + timedelta(days=1)),
        )
        .filter(Q(**{f"{notified}__isnull": True}) | Q(**{f"{notified}__lt": F("next_purchase_expected_at")}))
        .filter(~Exists(bought_since))
    )


def _next_purchase_emit(
    program: Program,
    due: QuerySet[MemberAnalytics],
    accounts: dict[int, Account],
    member_ids: list[int],
    now: datetime,
) -> int:
    rows = list(
        due.filter(pk__in=member_ids).values_list(
            "pk", "next_purchase_expected_at", "last_purchase_at", "mean_days_between", "purchases", "segment"
        )
    )
    events = []
    for member_id, expected_at, last_purchase_at, mean_days, purchases, segment in rows:
        accounts[member_id].next_purchase_notified_for = expected_at
        data = member_next_purchase_due_payload(
            member_id=member_id,
            expected_at=cast(datetime, expected_at),  # the rows due have one
            last_purchase_at=last_purchase_at,
            mean_days_between_purchases=float(cast(Decimal, mean_days)),  # set with the expected date
            purchases=purchases,
            segment=segment,
        )
        events.append((member_id, data))
    Account.objects.bulk_update([accounts[member_id] for member_id, *_ in rows], ["next_purchase_notified_for"])
    events_emit(program_id=program.pk, type=EventType.MEMBER_NEXT_PURCHASE_DUE, events=events, occurred_at=now)
    return len(events)


def next_purchases_due_notify(*, now: datetime | None = None, batch_size: int | None = None) -> TimingReport:
    """Emits `member.next_purchase_due` once per expected next purchase date (see the module docstring) for
    every member of an active program whose date's local day has come by `now` (default: now)."""
    return _run(due=_next_purchase_due, emit=_next_purchase_emit, now=now, batch_size=batch_size)
