"""GDPR export (`member_export`): each app registers the part of a member's data it owns.

`members` cannot import the apps built on it, so they register an exporter in
their `AppConfig.ready()` and `member_export` collects every part. `export_rows`
turns rows into plain JSON values, so every part serialises the same way.
The part `members` owns besides the personal data: the login (user and the
existence of its tokens).
"""

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from members.identifiers import format_card
from members.models import AccessToken, Member
from members.tokens import access_token_expires_at

Exporter = Callable[[Any], Any]
_exporters: dict[str, Exporter] = {}


def register_exporter(name: str, exporter: Exporter) -> None:
    _exporters[name] = exporter


def registered_exporters() -> dict[str, Exporter]:
    return dict(_exporters)


def export_value(value: Any) -> Any:
    """A JSON value: dates and times in ISO 8601, decimals as strings (exact), the rest as is."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def export_rows(queryset: QuerySet, fields: Iterable[str]) -> list[dict[str, Any]]:
    """The rows' fields (lookups such as `reward__name` allowed) as plain JSON values."""
    return [{key: export_value(value) for key, value in row.items()} for row in queryset.values(*fields)]


def member_login_export(member: Member) -> dict[str, Any] | None:
    """The app login linked to the member: account data, never the password hash, and which tokens exist
    (when issued and until when they are valid), never the tokens."""
    user = member.user
    if user is None:
        return None
    tokens = AccessToken.objects.filter(user=user).order_by("created_at")
    return {
        "username": user.username,
        "email": user.email,
        "is_active": user.is_active,
        "password_set": user.has_usable_password(),
        "date_joined": export_value(user.date_joined),
        "last_login": export_value(user.last_login),
        "tokens": [
            {"created_at": export_value(token.created_at), "expires_at": export_value(access_token_expires_at(token))}
            for token in tokens
        ],
    }


def member_export(*, member: Member) -> dict[str, Any]:
    """GDPR export: the member's personal data and every part the other apps own."""
    data: dict[str, Any] = {
        "member": {
            "id": member.pk,
            "program": member.program.slug,
            "external_id": member.external_id,
            "card": format_card(member.card),
            "email": member.email,
            "phone": member.phone,
            "first_name": member.first_name,
            "last_name": member.last_name,
            "birth_date": member.birth_date.isoformat() if member.birth_date else None,
            "enrolled_at": member.enrolled_at.isoformat(),
            "status": member.status,
            "status_changed_at": member.status_changed_at.isoformat() if member.status_changed_at else None,
            "acquisition_channel": member.acquisition_channel,
            "consents": {"email": member.consent_email, "sms": member.consent_sms, "push": member.consent_push},
            "referral_code": member.referral_code,
            "referred_by": member.referred_by_id,
        },
        "login": member_login_export(member),
    }
    for name, exporter in registered_exporters().items():
        data[name] = exporter(member)
    return data
