"""Event rules: signup, birthday, profile completed, NPS answer and the shop's custom events."""

import calendar
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from events.payloads.common import AwardRef
from loyalty.exceptions import EventConflict, EventReserved
from loyalty.models import Account, Award, Entry, EventName
from loyalty.rules import evaluate_event
from loyalty.ruleset import program_ruleset
from loyalty.services.accounts import ensure_active, lock_accounts
from loyalty.services.awards import awards_as_json, awards_post, local_date, member_context
from loyalty.services.purchases import occurred_at_check
from members.models import Member, MemberStatus, Program


@dataclass
class EventResult:
    member: Member
    event: str
    points: int
    awards: list[AwardRef]
    entry: Entry | None
    replayed: bool = False


def event_post(*, account: Account, event: str, key: str, occurred_at: datetime) -> EventResult:
    """Awards the program's event rules for `event` to a locked account, under ledger key `key`."""
    ruleset = program_ruleset(account.member.program)
    context = member_context(account=account, ruleset=ruleset, occurred_at=occurred_at)
    evaluation = evaluate_event(ruleset.event_rules, event, occurred_at, context)
    entry = awards_post(
        account=account,
        evaluation=evaluation,
        occurred_at=occurred_at,
        available_at=occurred_at,
        key=key,
        details={"event": event},
        event=event,
        budgeted_rule_ids=ruleset.budgeted_rule_ids,
    )
    return EventResult(
        member=account.member, event=event, points=evaluation.points, awards=awards_as_json(evaluation), entry=entry
    )


# Posted by the engine itself (enrollment, first purchase, the birthday job, an NPS answer), never by a till.
ENGINE_EVENTS = frozenset({EventName.SIGNUP, EventName.BIRTHDAY, EventName.REFERRAL, EventName.NPS_ANSWER})
# Awarded once per member whatever the external id.
ONCE_PER_MEMBER_EVENTS = frozenset({EventName.PROFILE_COMPLETED})


def _event_key(event: str, external_id: str, member: Member) -> str:
    return f"event:{event}:{member.pk}" if event in ONCE_PER_MEMBER_EVENTS else f"event:{external_id}"


@transaction.atomic
def event_record(
    *, program: Program, member: Member, event: str, external_id: str, occurred_at: datetime | None = None
) -> EventResult:
    """A named event for a member: the matching event rules award points, once per external id
    (once per member for a completed profile)."""
    if event in ENGINE_EVENTS:
        raise EventReserved(f"{event} points are given by the program itself.")
    now = timezone.now()
    occurred_at_check(occurred_at, what="event")
    account = lock_accounts([member])[member.pk]
    key = _event_key(event, external_id, member)
    previous = Entry.objects.filter(program=program, key=key).first()
    if previous is not None:
        if previous.member_id != member.pk or previous.details.get("event") != event:
            raise EventConflict()
        return EventResult(
            member=account.member,
            event=event,
            points=previous.amount,
            awards=previous.details.get("awards", []),
            entry=previous,
            replayed=True,
        )
    ensure_active(account.member)
    return event_post(account=account, event=event, key=key, occurred_at=min(occurred_at or now, now))


def signup_bonus(*, member: Member) -> EventResult:
    """Signup rules, called by enrollment inside its transaction."""
    account = lock_accounts([member])[member.pk]
    return event_post(
        account=account, event=EventName.SIGNUP, key=f"signup:{member.pk}", occurred_at=member.enrolled_at
    )


def birthday_bonuses(*, now: datetime | None = None, batch_size: int | None = None) -> int:
    """Birthday rules for members whose birthday is today in their program's time zone, once a
    year (the key names the year). Batched: each batch locks its accounts in key order."""
    now = now or timezone.now()
    batch_size = batch_size or settings.LOYALTY_JOB_BATCH_SIZE
    posted = 0
    for program in Program.objects.filter(
        earning_rules__event=EventName.BIRTHDAY, earning_rules__is_active=True
    ).distinct():
        today = local_date(program, now)
        already = Award.objects.filter(program=program, event=EventName.BIRTHDAY, local_date__year=today.year)
        born_today = Q(birth_date__month=today.month, birth_date__day=today.day)
        if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):  # 29 February birthdays
            born_today |= Q(birth_date__month=2, birth_date__day=29)
        due = (
            Member.objects.filter(program=program, status=MemberStatus.ACTIVE)
            .filter(born_today)
            .exclude(pk__in=already.values("member_id"))
            .order_by("pk")
        )
        last = 0
        while batch := list(due.filter(pk__gt=last)[:batch_size]):
            with transaction.atomic():
                for account in lock_accounts(batch).values():
                    result = event_post(
                        account=account,
                        event=EventName.BIRTHDAY,
                        key=f"birthday:{today.year}:{account.pk}",
                        occurred_at=now,
                    )
                    posted += result.points > 0
            last = batch[-1].pk
    return posted
