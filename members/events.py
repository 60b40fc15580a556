"""Business events (DESIGN.md section 9) written to the outbox (`OutboxEvent`) in the transaction of the change
that caused them: `event_emit` refuses to run outside a transaction, so an event can never describe a change
that was rolled back. Every app emits through this one function; the payloads are documented per type in
docs/events.md (version 1).
"""

import uuid
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from .models import OutboxEvent


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
    NPS_ANSWERED = "nps.answered"


class EventOutsideTransaction(RuntimeError):
    """An event emitted outside a transaction could outlive a rolled-back change."""


def _checked(type: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise EventOutsideTransaction(f"{type} must be emitted inside the transaction of its change.")


def events_emit(
    *, program_id: int, type: EventType, events: list[tuple[int | None, dict[str, Any]]], occurred_at: datetime
) -> int:
    """Writes one event per (member id, data) to the outbox in one bulk insert, in the caller's transaction
    (for the jobs that change many members at once)."""
    _checked(type)
    OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                event_id=f"evt_{uuid.uuid4().hex}",
                program_id=program_id,
                member_id=member_id,
                type=type,
                data=data,
                occurred_at=occurred_at,
            )
            for member_id, data in events
        ],
        batch_size=2000,
    )
    return len(events)


def event_emit(
    *,
    program_id: int,
    type: EventType,
    data: dict[str, Any],
    member_id: int | None = None,
    occurred_at: datetime | None = None,
) -> OutboxEvent:
    """Writes one event to the outbox, in the caller's transaction."""
    _checked(type)
    return OutboxEvent.objects.create(
        event_id=f"evt_{uuid.uuid4().hex}",
        program_id=program_id,
        member_id=member_id,
        type=type,
        data=data,
        occurred_at=occurred_at or timezone.now(),
    )
