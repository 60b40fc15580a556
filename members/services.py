"""Writes on programs, members and API keys."""

import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from members.exceptions import (
    IdempotencyInFlight,
    IdempotencyKeyReused,
    IdempotentReplay,
    InvalidStatusChange,
    MemberAlreadyExists,
    ReferralCodeUnknown,
)
from members.models import ApiKey, IdempotencyRecord, Member, MemberStatus, Program

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


def _api_key_cache_key(key_hash: str) -> str:
    return f"api-key:{key_hash}"


def api_key_authenticate(plain: str) -> ApiKey | None:
    """The active key matching `plain` (with its program), or None. Compared in constant time.

    A key found is kept in the cache for API_KEY_CACHE_SECONDS under its hash, so a busy till
    does not read it on every request. `api_key_revoke` drops it from the cache: with a shared
    cache (Redis) a revoked key is refused at once; with a per-process cache, other processes
    refuse it within API_KEY_CACHE_SECONDS. Its program comes from the cache too; `program_settings_save`
    drops the program's keys from it, so a deactivation or a setting change reaches the tills the same way.
    """
    parts = plain.removeprefix(API_KEY_PREFIX).split("_", 1)
    if not plain.startswith(API_KEY_PREFIX) or len(parts) != 2:
        return None
    key_hash = _api_key_hash(plain)
    cache_key = _api_key_cache_key(key_hash)
    api_key: ApiKey | None = cache.get(cache_key) if settings.API_KEY_CACHE_SECONDS else None
    cached = api_key is not None
    if api_key is None:  # not cached
        api_key = ApiKey.objects.select_related("program").filter(prefix=parts[0], revoked_at__isnull=True).first()
        if api_key is None or not secrets.compare_digest(api_key.key_hash, key_hash):
            return None
    now = timezone.now()
    # Touch at most once a minute: a busy till should not write on every request.
    touched = api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60
    if touched:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    if settings.API_KEY_CACHE_SECONDS and (touched or not cached):
        cache.set(cache_key, api_key, settings.API_KEY_CACHE_SECONDS)
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    _api_keys_uncache([api_key.key_hash])
    return api_key


def api_key_update(*, api_key: ApiKey, fields: list[str]) -> ApiKey:
    """Saves a key's changed name or store; a new store binds the till at once (the cached key is dropped)."""
    api_key.save(update_fields=fields)
    _api_keys_uncache([api_key.key_hash])
    return api_key


def _api_keys_uncache(key_hashes: list[str]) -> None:
    """Drops keys from the authentication cache, so the next request reads them (and their program) again.
    Now, and again once the change is committed: a request that read a key just before could have
    cached it again in between."""
    cache_keys = [_api_key_cache_key(key_hash) for key_hash in key_hashes]
    if not cache_keys:
        return
    cache.delete_many(cache_keys)
    transaction.on_commit(lambda: cache.delete_many(cache_keys))


def program_settings_save(*, program: Program, fields: list[str]) -> Program:
    """Saves changed settings of a program. Its keys carry the program in the authentication cache: they are
    dropped from it, so a deactivation (or any other setting) reaches the tills as a key revocation does."""
    program.save(update_fields=fields)
    _api_keys_uncache(list(program.api_keys.values_list("key_hash", flat=True)))
    return program


def program_create(
    *, slug: str, name: str, currency: str, managers: list[Any] | None = None, **settings_: Any
) -> Program:
    program = Program(slug=slug, name=name, currency=currency.upper(), **settings_)
    program.full_clean()
    program.save()
    if managers:
        program.managers.add(*managers)
    return program


@dataclass
class IdempotencyClaim:
    """A request that holds its Idempotency-Key: the caller hands it the answer before leaving
    `idempotent_transaction`."""

    record: IdempotencyRecord
    status: int | None = None
    body: Any = None

    def answer(self, *, status: int, body: Any) -> None:
        self.status, self.body = status, body


@contextmanager
def idempotent_transaction(*, scope: str, key: str, fingerprint: str) -> Iterator[IdempotencyClaim]:
    """Runs a request in one transaction with its Idempotency-Key's record.

    The record is the transaction's first write, so a simultaneous duplicate waits on the
    unique index until this request ends, then replays its answer (or, if this one failed,
    runs itself). A 2xx answer is stored and committed with the request's writes; any other
    answer, or an exception, rolls both back, which releases the key for a corrected retry.
    Raises before running the request: IdempotentReplay (answered before), IdempotencyKeyReused
    (another request's key), IdempotencyInFlight (a record left in flight, not yet stale).
    """
    stale: IdempotencyRecord | None = None
    for _ in range(3):  # a key freed or taken over between our steps is tried again, not forever
        with transaction.atomic():
            record = _idempotency_take_over(stale) if stale else _idempotency_insert(scope, key, fingerprint)
            if record is not None:
                claim = IdempotencyClaim(record)
                yield claim
                _idempotency_store(claim)
                return
        stale = _idempotency_refuse(scope, key, fingerprint)
    raise IdempotencyInFlight()


def _idempotency_insert(scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The key's new record, or None when it exists (the failed insert aborted the transaction)."""
    try:
        return IdempotencyRecord.objects.create(scope=scope, key=key, request_hash=fingerprint)
    except IntegrityError:
        return None


def _idempotency_refuse(scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Raises what a request must answer when its key is taken. Returns the record to take over
    when it was left in flight long ago, None when it is gone (the caller tries again)."""
    record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    if record.state == IdempotencyRecord.State.DONE:
        raise IdempotentReplay(record)
    # In flight and committed: left by a request that crashed before answers were stored in the
    # request's own transaction. After a while a retry may take it over.
    if record.created_at < timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS):
        return record
    raise IdempotencyInFlight()


def _idempotency_take_over(record: IdempotencyRecord) -> IdempotencyRecord | None:
    """Locks a stale in-flight record for this request, unless another retry took it first."""
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS)
    now = timezone.now()
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at__lt=stale
    ).update(created_at=now)
    if not taken:
        return None
    record.created_at = now
    return record


def _idempotency_store(claim: IdempotencyClaim) -> None:
    """Keeps a successful answer for replay; anything else rolls the request back."""
    if claim.status is None or not 200 <= claim.status < 300:
        transaction.set_rollback(True)
        return
    record = claim.record
    record.state = IdempotencyRecord.State.DONE
    record.response_status = claim.status
    record.response_body = claim.body
    record.save(update_fields=["state", "response_status", "response_body"])


def idempotency_keys_clean(*, older_than_hours: int | None = None) -> int:
    """Forgets answers older than the retention (at least 24 hours, DESIGN.md section 10)."""
    hours = older_than_hours or settings.IDEMPOTENCY_KEY_TTL_HOURS
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(hours=hours)).delete()
    return deleted
