"""Enrollment: a member joins a program and gets an empty points account."""

from typing import Any

from django.db import transaction

from events.outbox import EventType, event_emit
from events.payloads.members import member_enrolled_payload
from loyalty.models import Account
from loyalty.services.bonuses import signup_bonus
from members.models import Member
from members.services.members import member_create


@transaction.atomic
def member_enroll(**fields: Any) -> Member:
    """Creates the member (see `members.services.members.member_create` for the fields), their account,
    and the signup bonus of the program's signup rules."""
    member = member_create(**fields)
    Account.objects.create(member=member, program=member.program)
    event_emit(
        program_id=member.program_id,
        member_id=member.pk,
        type=EventType.MEMBER_ENROLLED,
        occurred_at=member.enrolled_at,
        data=member_enrolled_payload(member=member),
    )
    signup_bonus(member=member)
    return member
