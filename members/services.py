"""Writes on programs, members and API keys."""

import hashlib
import secrets
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .exceptions import (
    IdempotencyInFlight,
    IdempotencyKeyReused,
    IdempotentReplay,
    InvalidStatusChange,
    MemberAlreadyExists,
    ReferralCodeUnknown,
)
from .exports import registered_exporters
from .models import ApiKey, IdempotencyRecord, Member, MemberStatus, Program

# No look-alike characters (0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CARD_DIGITS = 12
API_KEY_PREFIX = "lk_"


def normalize_card(value: str) -> str:
    return "".join(ch for ch in value if ch.isalnum()).upper()


def normalize_email(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value or None


def normalize_phone(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"+{digits}" if value.startswith("+") else digits


def format_card(card: str) -> str:
    """Cards are stored bare and shown in groups of four: 4000-1234-5678."""
    return "-".join(card[i : i + 4] for i in range(0, len(card), 4))


def random_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _new_card(program: Program) -> str:
    while True:
        card = "".join(secrets.choice("0123456789") for _ in range(CARD_DIGITS))
        if not Member.objects.filter(program=program, card=card).exists():
            return card


def _new_referral_code(program: Program) -> str:
    while True:
        code = random_code(8)
        if not Member.objects.filter(program=program, referral_code=code).exists():
            return code


def member_identifiers_check(*, program: Program, values: dict[str, Any], exclude_pk: int | None = None) -> None:
    """Refuses identifying values another member of the program already uses."""
    others = Member.objects.filter(program=program).exclude(pk=exclude_pk)
    taken = [
        field
        for field in ("card", "external_id", "email", "phone")
        if values.get(field) and others.filter(**{field: values[field]}).exists()
    ]
    if taken:
        raise MemberAlreadyExists(f"Another member of this program has the same {', '.join(taken)}.", fields=taken)


@transaction.atomic
def member_create(
    *,
    program: Program,
    external_id: str | None = None,
    card: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    first_name: str = "",
    last_name: str = "",
    birth_date: date | None = None,
    referral_code: str | None = None,
    acquisition_channel: str = "",
    consent_email: bool = False,
    consent_sms: bool = False,
    consent_push: bool = False,
    enrolled_at: datetime | None = None,
) -> Member:
    referred_by = None
    if referral_code:
        referred_by = Member.objects.filter(program=program, referral_code=referral_code.strip().upper()).first()
        if referred_by is None:
            raise ReferralCodeUnknown()
    member = Member(
        program=program,
        external_id=(external_id or "").strip() or None,
        card=normalize_card(card) if card else _new_card(program),
        email=normalize_email(email),
        phone=normalize_phone(phone),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        birth_date=birth_date,
        enrolled_at=enrolled_at or timezone.now(),
        acquisition_channel=acquisition_channel,
        consent_email=consent_email,
        consent_sms=consent_sms,
        consent_push=consent_push,
        referral_code=_new_referral_code(program),
        referred_by=referred_by,
    )
    identifiers = {field: getattr(member, field) for field in ("card", "external_id", "email", "phone")}
    member_identifiers_check(program=program, values=identifiers)
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as exc:  # a simultaneous enrollment with the same details won
        raise MemberAlreadyExists() from exc
    return member


@transaction.atomic
def member_update(*, member: Member, **fields: Any) -> Member:
    normalizers = {"email": normalize_email, "phone": normalize_phone, "card": normalize_card}
    values = {name: normalizers[name](value) if name in normalizers else value for name, value in fields.items()}
    member_identifiers_check(program=member.program, values=values, exclude_pk=member.pk)
    for name, value in values.items():
        setattr(member, name, value)
    member.save(update_fields=[*values, "updated_at"])
    return member


_ALLOWED_STATUS_CHANGES = {
    MemberStatus.ACTIVE: {MemberStatus.SUSPENDED, MemberStatus.CLOSED},
    MemberStatus.SUSPENDED: {MemberStatus.ACTIVE, MemberStatus.CLOSED},
    MemberStatus.CLOSED: set(),
}


@transaction.atomic
def member_set_status(*, member: Member, status: MemberStatus) -> Member:
    """Suspend, reactivate or close. Closed is final; a closed member keeps their history."""
    current = Member.objects.select_for_update().values_list("status", flat=True).get(pk=member.pk)
    if status not in _ALLOWED_STATUS_CHANGES[MemberStatus(current)]:
        raise InvalidStatusChange(f"A {current} member cannot become {status}.")
    member.status = status
    member.status_changed_at = timezone.now()
    member.save(update_fields=["status", "status_changed_at", "updated_at"])
    return member


def member_suspend(*, member: Member) -> Member:
    return member_set_status(member=member, status=MemberStatus.SUSPENDED)


def member_reactivate(*, member: Member) -> Member:
    return member_set_status(member=member, status=MemberStatus.ACTIVE)


def member_close(*, member: Member) -> Member:
    return member_set_status(member=member, status=MemberStatus.CLOSED)


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

    The member is closed too, so nothing can be earned or spent on an erased record.
    """
    member = Member.objects.select_for_update().get(pk=member.pk)
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
            "acquisition_channel": member.acquisition_channel,
            "consents": {"email": member.consent_email, "sms": member.consent_sms, "push": member.consent_push},
            "referral_code": member.referral_code,
            "referred_by": member.referred_by_id,
        }
    }
    for name, exporter in registered_exporters().items():
        data[name] = exporter(member)
    return data


def _api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, program: Program, name: str, store: str = "", created_by: Any = None) -> tuple[ApiKey, str]:
    """Creates a key and returns it with its plain text, which is never stored."""
    prefix = secrets.token_hex(4)
    plain = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        program=program, name=name, store=store, prefix=prefix, key_hash=_api_key_hash(plain), created_by=created_by
    )
    return api_key, plain


def api_key_authenticate(plain: str) -> ApiKey | None:
    """The active key matching `plain`, or None. Compared in constant time."""
    parts = plain.removeprefix(API_KEY_PREFIX).split("_", 1)
    if not plain.startswith(API_KEY_PREFIX) or len(parts) != 2:
        return None
    api_key = ApiKey.objects.select_related("program").filter(prefix=parts[0], revoked_at__isnull=True).first()
    if api_key is None or not secrets.compare_digest(api_key.key_hash, _api_key_hash(plain)):
        return None
    now = timezone.now()
    # Touch at most once a minute: a busy till should not write on every request.
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def program_create(
    *, slug: str, name: str, currency: str, managers: list[Any] | None = None, **settings_: Any
) -> Program:
    program = Program(slug=slug, name=name, currency=currency.upper(), **settings_)
    program.full_clean()
    program.save()
    if managers:
        program.managers.add(*managers)
    return program


def idempotency_claim(*, scope: str, key: str, fingerprint: str) -> IdempotencyRecord:
    """Claims `key` for this request, or raises what the caller must answer instead:
    IdempotentReplay (answered before), IdempotencyKeyReused (another request's key),
    IdempotencyInFlight (the first request is still running)."""
    record, created = IdempotencyRecord.objects.get_or_create(
        scope=scope, key=key, defaults={"request_hash": fingerprint}
    )
    if created:
        return record
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    if record.state == IdempotencyRecord.State.DONE:
        raise IdempotentReplay(record)
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS)
    # A request that crashed never released its key; after a while a retry may take it over.
    if IdempotencyRecord.objects.filter(pk=record.pk, created_at__lt=stale).update(created_at=timezone.now()):
        return record
    raise IdempotencyInFlight()


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: Any) -> None:
    """Keeps a successful answer for replay; anything else releases the key for a corrected retry."""
    if 200 <= status < 300:
        record.state = IdempotencyRecord.State.DONE
        record.response_status = status
        record.response_body = body
        record.save(update_fields=["state", "response_status", "response_body"])
    else:
        record.delete()


def idempotency_keys_clean(*, older_than_hours: int | None = None) -> int:
    """Forgets answers older than the retention (at least 24 hours, DESIGN.md section 10)."""
    hours = older_than_hours or settings.IDEMPOTENCY_KEY_TTL_HOURS
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(hours=hours)).delete()
    return deleted
