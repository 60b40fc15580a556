"""Recording a member's NPS answer, with the points of the program's `nps_answer` event rules (the score
and its figures are `analytics.nps`)."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from analytics.exceptions import NpsAnswerInvalid
from analytics.models import NpsAnswer, NpsSource
from analytics.nps import COMMENT_MAX_LENGTH, MAX_SCORE
from events.outbox import EventType, event_emit
from events.payloads.common import AwardRef, BalancesData
from events.payloads.members import nps_answered_payload
from loyalty.models import EventName
from loyalty.services.accounts import ensure_active, lock_accounts
from loyalty.services.bonuses import event_post
from loyalty.services.purchases import occurred_at_check
from members.models import Member


@dataclass
class NpsResult:
    answer: NpsAnswer
    points: int
    awards: list[AwardRef]
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
