"""GDPR erasure of a member: personal data anonymised, the ledger's amounts kept."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from members.models import Member, MemberStatus

_PERSONAL_FIELDS = [
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "user",
    "consent_email",
    "consent_sms",
    "consent_push",
]


@transaction.atomic
def member_erase(*, member: Member) -> Member:
    """GDPR erasure: personal fields are anonymised; the ledger keeps its amounts.

    The member is closed too, so nothing can be earned or spent on an erased record. Its app login
    is anonymised, loses its password and is deactivated (which ends its tokens, `members.tokens`).
    """
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.user is not None:
        _login_erase(member.user, label=f"erased-member-{member.pk}")
    member.external_id = None
    member.email = None
    member.phone = None
    member.first_name = ""
    member.last_name = ""
    member.birth_date = None
    member.user = None
    member.consent_email = member.consent_sms = member.consent_push = False
    member.card = f"ERASED{member.pk}"
    member.status = MemberStatus.CLOSED
    member.status_changed_at = member.erased_at = timezone.now()
    member.save(update_fields=[*_PERSONAL_FIELDS, "card", "status", "status_changed_at", "erased_at", "updated_at"])
    return member


def _login_erase(user: Any, *, label: str) -> None:
    """The login keeps no personal data and cannot sign in; the password change ends its tokens."""
    user.username = label
    user.email = user.first_name = user.last_name = ""
    user.is_active = False
    user.last_login = None
    user.set_unusable_password()
    user.save(update_fields=["username", "email", "first_name", "last_name", "is_active", "last_login", "password"])
