"""Business events (DESIGN.md section 9) written to the outbox (`OutboxEvent`) in the transaction of the change
that caused them: `event_emit` refuses to run outside a transaction, so an event can never describe a change
that was rolled back. Every app emits through this one function (or `events_emit`, for many); the payloads are
documented per type in docs/events.md (version 1) and built by `events.payloads`, one builder per type.
"""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from config.bulk import bulk_insert
from config.rows import instance_insert, instances_insert
from events.models import OutboxEvent

COLUMNS = ["event_id", "program_id", "member_id", "type", "version", "data", "occurred_at", "created_at"]
VERSION = 1  # of every type's payload (docs/events.md)
COPY_FROM = 50  # events_emit streams this many events or more with COPY (PostgreSQL)


class EventType(models.TextChoices):
    MEMBER_ENROLLED = "member.enrolled"
    POINTS_EARNED = "points.earned"
    POINTS_REVERSED = "points.reversed"
    POINTS_EXPIRING_SOON = "points.expiring_soon"
    POINTS_EXPIRED = "points.expired"
    TIER_PROMOTED = "tier.promoted"
    TIER_DOWNGRADED = "tier.downgraded"
    REWARD_REDEEMED = "reward.redeemed"
    VOUCHER_ISSUED = "voucher.issued"
    VOUCHER_REDEEMED = "voucher.redeemed"
    MEMBER_SEGMENT_CHANGED = "member.segment_changed"
    MEMBER_INACTIVE = "member.inactive"
    MEMBER_NEXT_PURCHASE_DUE = "member.next_purchase_due"
    NPS_ANSWERED = "nps.answered"


class EventOutsideTransaction(RuntimeError):
    """An event emitted outside a transaction could outlive a rolled-back change."""


def _event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _checked(type: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise EventOutsideTransaction(f"{type} must be emitted inside the transaction of its change.")


def events_emit(
    *,
    program_id: int,
    type: EventType,
    events: Sequence[tuple[int | None, Mapping[str, Any]]],
    occurred_at: datetime,
) -> int:
    """Writes one event per (member id, data) to the outbox, in the caller's transaction, for the writes that
    change many members at once (jobs, campaigns, the analytics refresh). On PostgreSQL the rows are streamed
    with COPY: `bulk_create` would cost about five times the campaign vouchers themselves (docs/benchmarks.md)."""
    _checked(type)
    now = timezone.now()
    if connection.vendor != "postgresql" or len(events) < COPY_FROM:
        # A few events (a purchase's tier promotion): plain inserts, which a purchase's single round trip can
        # carry (config.rows.one_round_trip; COPY cannot go there).
        outbox = [
            OutboxEvent(
                event_id=_event_id(), program_id=program_id, member_id=member_id, type=type, data=data,
                occurred_at=occurred_at,
            )
            for member_id, data in events
        ]  # fmt: skip
        for start in range(0, len(outbox), 2000):
            instances_insert(outbox[start : start + 2000])
        return len(events)
    encoder = OutboxEvent._meta.get_field("data").encoder
    assert encoder is not None  # the model field names one
    encode = encoder().encode  # the JSON the model field writes
    rows = (
        (_event_id(), program_id, member_id, str(type), VERSION, encode(data), occurred_at, now)
        for member_id, data in events
    )
    return bulk_insert(OutboxEvent, COLUMNS, rows)


def event_emit(
    *,
    program_id: int,
    type: EventType,
    data: Mapping[str, Any],
    member_id: int | None = None,
    occurred_at: datetime | None = None,
    pk: int | None = None,
) -> OutboxEvent:
    """Writes one event to the outbox, in the caller's transaction. `pk`, taken from the sequence beforehand
    (config.rows.next_id_sql), lets the insert go without reading its key back."""
    _checked(type)
    event = OutboxEvent(
        pk=pk,
        event_id=_event_id(),
        program_id=program_id,
        member_id=member_id,
        type=type,
        data=data,
        occurred_at=occurred_at or timezone.now(),
    )
    return instance_insert(event)
