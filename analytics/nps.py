"""NPS: recording a member's answer (with the points of the program's `nps_answer` event rules) and the
program's Net Promoter Score.

Promoters answer 9–10, passives 7–8, detractors 0–6; NPS = % promoters - % detractors (-100..100, one
decimal), null without answers. A member who answers several times counts once per span: over a period with
their latest answer in it, month by month with their latest answer in each month (ties on the time: the
later recorded). Tier and segment are the member's current ones (`Account.tier`, `MemberAnalytics.segment`).
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from analytics.as_of import answers_as_of
from analytics.metrics import ALL_MEMBERS, MemberFilters, Period, begun, month_of
from analytics.models import NpsAnswer, NpsSource
from events.outbox import EventType, event_emit
from events.payloads import BalancesData, nps_answered_payload
from loyalty.models import EventName
from loyalty.services.bonuses import event_post
from loyalty.services.ledger import ensure_active, lock_accounts
from loyalty.services.purchases import occurred_at_check
from members.exceptions import DomainError
from members.models import Member, Program

PROMOTER_MIN = 9
PASSIVE_MIN = 7
MAX_SCORE = 10
COMMENT_MAX_LENGTH = 2000


class NpsAnswerInvalid(DomainError):
    code = "nps_answer_invalid"
    status = 400
    title = "The NPS answer is not valid"


@dataclass
class NpsResult:
    answer: NpsAnswer
    points: int
    awards: list[dict[str, Any]]
    balances: BalancesData


def _validate(score: object, source: str, comment: str, answered_at: datetime | None) -> None:
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= MAX_SCORE:
        raise NpsAnswerInvalid("The score must be a whole number from 0 to 10.")
    if source not in NpsSource.values:
        raise ValueError(f"unknown NPS source {source!r}")
    if len(comment) > COMMENT_MAX_LENGTH:
        raise NpsAnswerInvalid(f"The comment may have at most {COMMENT_MAX_LENGTH} characters.")
    occurred_at_check(answered_at, what="answer")


@transaction.atomic
def nps_record(
    *, member: Member, score: int, comment: str = "", source: str, answered_at: datetime | None = None
) -> NpsResult:
    """Stores an answer and posts the `nps_answer` event rules' points for it, in one transaction.

    Every answer is stored; the rules' limits (caps per member and day or month, budgets) decide whether a
    repeated answer earns again. The points entry is keyed by the answer (`nps:<id>`), a namespace no till
    can post under. Suspended and closed members cannot answer."""
    _validate(score, source, comment, answered_at)
    account = lock_accounts([member])[member.pk]
    ensure_active(account.member)
    now = timezone.now()
    answered_at = min(answered_at or now, now)
    answer = NpsAnswer.objects.create(
        program_id=member.program_id,
        member=account.member,
        score=score,
        comment=comment,
        source=source,
        answered_at=answered_at,
    )
    event = event_post(account=account, event=EventName.NPS_ANSWER, key=f"nps:{answer.pk}", occurred_at=answered_at)
    event_emit(
        program_id=member.program_id,
        member_id=member.pk,
        type=EventType.NPS_ANSWERED,
        occurred_at=answered_at,
        data=nps_answered_payload(
            member_id=member.pk, answer_id=answer.pk, score=score, comment=comment, source=source
        ),
    )
    return NpsResult(
        answer=answer,
        points=event.points,
        awards=event.awards,
        balances=account.balances,
    )


# --- The score ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpsFigures:
    """None throughout for a month not begun (no data yet)."""

    respondents: int | None = None
    promoters: int | None = None
    passives: int | None = None
    detractors: int | None = None
    nps: float | None = None


_COUNTS = {
    "respondents": Count("id"),
    "promoters": Count("id", filter=Q(score__gte=PROMOTER_MIN)),
    "passives": Count("id", filter=Q(score__gte=PASSIVE_MIN, score__lt=PROMOTER_MIN)),
    "detractors": Count("id", filter=Q(score__lt=PASSIVE_MIN)),
}


def _figures(row: dict[str, Any]) -> NpsFigures:
    total = row["respondents"]
    score = round(100 * (row["promoters"] - row["detractors"]) / total, 1) if total else None
    return NpsFigures(
        respondents=total,
        promoters=row["promoters"],
        passives=row["passives"],
        detractors=row["detractors"],
        nps=score,
    )


def _answers(program: Program, period: Period, as_of: datetime | None) -> QuerySet[NpsAnswer]:
    """The program's answers in the period given by `as_of` (now by default): `analytics.as_of`."""
    answers = answers_as_of(program, as_of or timezone.now())
    return answers.filter(answered_at__gte=period.start, answered_at__lt=period.end)


def _later_than_outer(answers: QuerySet[NpsAnswer]) -> QuerySet[NpsAnswer]:
    """Answers of the outer answer's member recorded after it."""
    return answers.filter(member_id=OuterRef("member_id")).filter(
        Q(answered_at__gt=OuterRef("answered_at")) | Q(answered_at=OuterRef("answered_at"), pk__gt=OuterRef("pk"))
    )


def latest_answers(
    program: Program, period: Period, filters: MemberFilters = ALL_MEMBERS, *, as_of: datetime | None = None
) -> QuerySet[NpsAnswer]:
    """Each member's latest answer in the period, of those given by `as_of` (now by default)."""
    answers = _answers(program, period, as_of)
    return answers.filter(filters.q("member__")).filter(~Exists(_later_than_outer(answers)))


def nps_summary(
    program: Program, period: Period, filters: MemberFilters = ALL_MEMBERS, *, as_of: datetime | None = None
) -> NpsFigures:
    return _figures(latest_answers(program, period, filters, as_of=as_of).aggregate(**_COUNTS))


def nps_by_month(
    program: Program, periods: list[Period], filters: MemberFilters = ALL_MEMBERS, *, as_of: datetime | None = None
) -> list[tuple[date, NpsFigures]]:
    """The NPS of each month of `periods` (consecutive calendar months), from each member's latest answer in
    the month; months without answers have zero respondents, months begun after `as_of` no figures at all
    (no data yet). One grouped query."""
    if not periods:
        return []
    span = Period(periods[0].start, periods[-1].end)
    month = TruncMonth("answered_at", tzinfo=program.tz)
    answers = _answers(program, span, as_of).annotate(month=month)
    later = _later_than_outer(answers.filter(month=OuterRef("month")))
    rows = answers.filter(filters.q("member__")).filter(~Exists(later)).order_by().values("month").annotate(**_COUNTS)
    by_month = {month_of(program, row["month"]): _figures(row) for row in rows}
    empty = _figures({name: 0 for name in _COUNTS})
    months = [(month_of(program, p.start), begun(p, as_of)) for p in periods]
    return [(m, by_month.get(m, empty) if started else NpsFigures()) for m, started in months]


def nps_by_tier(
    program: Program, period: Period, filters: MemberFilters = ALL_MEMBERS, *, as_of: datetime | None = None
) -> list[tuple[int | None, str | None, NpsFigures]]:
    """(tier id, tier name, figures) by the members' current tier, lowest tier first; members without a tier
    last, as (None, None)."""
    rows = (
        latest_answers(program, period, filters, as_of=as_of)
        .order_by()
        .values("member__account__tier_id", "member__account__tier__name", "member__account__tier__rank")
        .annotate(**_COUNTS)
    )
    ordered = sorted(
        rows, key=lambda row: (row["member__account__tier__rank"] is None, row["member__account__tier__rank"] or 0)
    )
    return [(row["member__account__tier_id"], row["member__account__tier__name"], _figures(row)) for row in ordered]


def nps_by_segment(
    program: Program, period: Period, filters: MemberFilters = ALL_MEMBERS, *, as_of: datetime | None = None
) -> list[tuple[str | None, NpsFigures]]:
    """(segment, figures) by the members' segment at the last analytics refresh, by name; members without a
    segment (no refresh yet, or no purchase) last, as None."""
    rows = (
        latest_answers(program, period, filters, as_of=as_of)
        .order_by()
        .values("member__analytics__segment")
        .annotate(**_COUNTS)
    )
    merged: dict[str | None, dict[str, int]] = {}
    for row in rows:
        segment = row["member__analytics__segment"] or None
        totals = merged.setdefault(segment, dict.fromkeys(_COUNTS, 0))
        for name in _COUNTS:
            totals[name] += row[name]
    ordered = sorted(merged.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [(segment, _figures(totals)) for segment, totals in ordered]
