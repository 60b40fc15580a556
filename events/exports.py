"""The outbox's part of a member's GDPR export (registered with `members.exports` when the app loads)."""

from typing import Any

from events.models import OutboxEvent
from members.exports import export_rows
from members.models import Member


def member_events_export(member: Member) -> list[dict[str, Any]]:
    """The member's business events in the outbox (what webhooks carry to the program's systems)."""
    events = OutboxEvent.objects.filter(member=member).order_by("id")
    return export_rows(events, ["event_id", "type", "version", "occurred_at", "data"])
