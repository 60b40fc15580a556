"""Enrolling members (one or an import's many), changing their details and their status."""

import secrets
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.exceptions import InvalidStatusChange, MemberAlreadyExists, ReferralCodeUnknown
from members.identifiers import CARD_DIGITS, normalize_card, normalize_email, normalize_phone, random_code
from members.models import Member, MemberStatus, Program


def _random_card() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CARD_DIGITS))


def _random_referral_code() -> str:
    return random_code(8)


def _unused_values(program: Program, field: str, make: Callable[[], str], count: int) -> list[str]:
    """`count` distinct values from `make` that no member of the program has in `field`
    (one query per round; a second round is rare)."""
    found: set[str] = set()
    while len(found) < count:
        fresh = {make() for _ in range(count - len(found))} - found
        taken = set(Member.objects.filter(program=program, **{f"{field}__in": fresh}).values_list(field, flat=True))
        found |= fresh - taken
    return list(found)


def _new_card(program: Program) -> str:
    return _unused_values(program, "card", _random_card, 1)[0]


def _new_referral_code(program: Program) -> str:
    return _unused_values(program, "referral_code", _random_referral_code, 1)[0]


def members_create_bulk(*, program: Program, enrolled: dict[str, datetime]) -> list[Member]:
    """Members known only by their (stripped) external id, as an import makes them, in one insert:
    `enrolled` maps each external id to its enrolled_at; card numbers and referral codes are made
    as `member_create` makes them. Raises IntegrityError when one of them was created meanwhile:
    the caller, inside a savepoint, looks the members up again and retries."""
    cards = _unused_values(program, "card", _random_card, len(enrolled))
    codes = _unused_values(program, "referral_code", _random_referral_code, len(enrolled))
    members = [
        Member(program=program, external_id=external_id, card=card, referral_code=code, enrolled_at=enrolled_at)
        for (external_id, enrolled_at), card, code in zip(enrolled.items(), cards, codes, strict=True)
    ]
    return Member.objects.bulk_create(members)


def member_identifiers_check(*, program: Program, values: dict[str, Any], exclude_pk: int | None = None) -> None:
    """Refuses identifying values another member of the program already uses."""
    # pk=None (a member not saved yet) excludes nothing; the plugin accepts only an id.
    others = Member.objects.filter(program=program).exclude(pk=exclude_pk)  # type: ignore[misc]
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
