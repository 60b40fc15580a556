"""Member app sign-in: the Django user linked to a member, its password and its API token.

A member signs in to the app with the program's slug, their email or card
and a password. The password lives on a Django user linked one-to-one to
the member (`Member.user`); the app then sends a token (`members.tokens`) with every call.
One user belongs to one member only, so the token names the member and the
program: no view takes a member id from the URL.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from members.exceptions import DomainError
from members.identifiers import normalize_card, normalize_email
from members.models import Member, MemberStatus
from members.tokens import access_token_create, access_tokens_revoke


class AppLoginFailed(DomainError):
    code = "invalid_credentials"
    status = 401
    title = "The program, email or card, or password is not valid"


def _username(member: Member) -> str:
    return f"member-{member.pk}"


@transaction.atomic
def member_app_user_set(*, member: Member, password: str) -> Any:
    """Sets the member's app password, creating the linked user on first use.

    The password is checked by the project's password validators (Django
    ValidationError). Changing it signs the member out of every device (the password receivers
    of `members.tokens` delete the user's tokens).
    """
    locked = Member.objects.select_for_update().get(pk=member.pk)  # the user is read after: no outer join
    user = locked.user
    if user is None:
        user = get_user_model()(username=_username(locked), email=locked.email or "")
    validate_password(password, user)
    user.set_password(password)
    user.save()
    if locked.user_id != user.pk:
        locked.user = user
        locked.save(update_fields=["user", "updated_at"])
    member.user = user
    return user


def _member_for_login(*, program_slug: str, email: str | None, card: str | None) -> Member | None:
    members = Member.objects.select_related("user", "program").filter(
        program__slug=program_slug, program__is_active=True, user__isnull=False, user__is_active=True
    )
    if email:
        return members.filter(email=normalize_email(email)).first()
    if card:
        return members.filter(card=normalize_card(card)).first()
    return None


def member_app_authenticate(*, program_slug: str, password: str, email: str | None = None, card: str | None = None):
    """The member whose linked user has this password, or AppLoginFailed.

    Unknown members cost a password hash too, so the answer time does not tell
    whether an email or card is enrolled. Closed members cannot sign in.
    """
    member = _member_for_login(program_slug=program_slug, email=email, card=card)
    if member is None or member.user is None:
        get_user_model()().set_password(password)  # the same work as a real check
        raise AppLoginFailed()
    if not member.user.check_password(password) or member.status == MemberStatus.CLOSED:
        raise AppLoginFailed()
    return member


def member_app_login(*, program_slug: str, password: str, email: str | None = None, card: str | None = None):
    """Signs a member in: (member, a new token). Each sign-in (device) gets its own token."""
    member = member_app_authenticate(program_slug=program_slug, password=password, email=email, card=card)
    return member, access_token_create(user=member.user)


def member_app_logout(*, user: Any) -> None:
    """Deletes the user's tokens: every device of the member is signed out."""
    access_tokens_revoke(user=user)
