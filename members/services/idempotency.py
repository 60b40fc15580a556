"""Idempotency-Key records: a request claims its key in its own transaction, its 2xx answer is kept for replay."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.rows import instance_insert, row_update
from members.exceptions import IdempotencyInFlight, IdempotencyKeyReused, IdempotentReplay
from members.models import IdempotencyRecord


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
        return instance_insert(IdempotencyRecord(scope=scope, key=key, request_hash=fingerprint))
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
    fields = ("state", "response_status", "response_body")
    row_update(IdempotencyRecord, record.pk, sets={name: getattr(record, name) for name in fields})


def idempotency_keys_clean(*, older_than_hours: int | None = None) -> int:
    """Forgets answers older than the retention (at least 24 hours, DESIGN.md section 10)."""
    hours = older_than_hours or settings.IDEMPOTENCY_KEY_TTL_HOURS
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(hours=hours)).delete()
    return deleted
