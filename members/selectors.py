"""Reads of members that are more than a one-line queryset."""

from dataclasses import dataclass

from django.db.models import QuerySet

from members.exceptions import MemberNotFound
from members.identifiers import normalize_card, normalize_email, normalize_phone
from members.ids import row_id
from members.models import Member, Program

LOOKUP_FIELDS = ("id", "card", "external_id", "email", "phone")
_NORMALIZE = {"card": normalize_card, "email": normalize_email, "phone": normalize_phone}


def members_of_program(*, program: Program) -> QuerySet[Member]:
    return Member.objects.filter(program=program).select_related("program")


@dataclass(frozen=True)
class MemberRef:
    """How a request names a member: one of LOOKUP_FIELDS and the value sent."""

    field: str
    value: object


def member_lookup(*, field: str, value: object) -> dict[str, object]:
    """The Member filter for one of LOOKUP_FIELDS, the value normalised as stored,
    or MemberNotFound when no member can have that value."""
    if field not in LOOKUP_FIELDS:
        raise ValueError(f"cannot look members up by {field}")
    if field == "id":
        value = row_id(value, MemberNotFound)
    elif field in _NORMALIZE:
        value = _NORMALIZE[field](str(value))
    if not value:
        raise MemberNotFound()
    return {field: value}


def member_get(*, program: Program, field: str, value: object) -> Member:
    """The member of `program` identified by one of LOOKUP_FIELDS, or MemberNotFound.

    Another program's member is indistinguishable from a missing one.
    """
    member = members_of_program(program=program).filter(**member_lookup(field=field, value=value)).first()
    if member is None:
        raise MemberNotFound()
    return member
