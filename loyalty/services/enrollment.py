"""Enrollment: a member joins a program and gets an empty points account."""

from typing import Any

from django.db import transaction

from members.models import Member
from members.services import member_create

from ..models import Account
from .events import signup_bonus


@transaction.atomic
def member_enroll(**fields: Any) -> Member:
    """Creates the member (see `members.services.member_create` for the fields), their account,
    and the signup bonus of the program's signup rules."""
    member = member_create(**fields)
    Account.objects.create(member=member, program=member.program)
    signup_bonus(member=member)
    return member
