"""Enrollment: a member joins a program and gets an empty points account."""

from typing import Any

from django.db import transaction

from members.models import Member
from members.services import member_create

from ..models import Account


@transaction.atomic
def member_enroll(**fields: Any) -> Member:
    """Creates the member (see `members.services.member_create` for the fields) and their account."""
    member = member_create(**fields)
    Account.objects.create(member=member, program=member.program)
    return member
