"""Reads of webhook endpoints and deliveries that the admin and the manager API share."""

import json
from datetime import datetime
from typing import Any, TypedDict

from django.db.models import Count, IntegerField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from events.outbox import EventType
from events.webhooks.services import event_body

# What each event type means, for people choosing which ones an endpoint receives.
EVENT_TYPE_MEANINGS = {
    "member.enrolled": "a member joined the program",
    "points.earned": "a member earned points",
    "points.reversed": "a return took points back",
    "points.expiring_soon": "a member's points expire soon",
    "points.expired": "a member's points expired",
    "tier.promoted": "a member moved up a tier",
    "tier.downgraded": "a member moved down a tier",
    "reward.redeemed": "a member spent points on a reward",
    "voucher.issued": "a voucher was issued",
    "voucher.redeemed": "a voucher was used at a till",
    "member.segment_changed": "a member's segment changed",
    "member.inactive": "a member became inactive",
    "member.next_purchase_due": "a member is due to buy again",
    "nps.answered": "a member answered the NPS question",
}


def event_type_choices() -> list[tuple[str, str]]:
    """(type, "type: what it means") for every event type."""
    return [(value, _labelled(value)) for value in EventType.values]


def _labelled(value: str) -> str:
    meaning = EVENT_TYPE_MEANINGS.get(value)
    return f"{value}: {meaning}" if meaning else value


def _delivery_count(status: str) -> Coalesce:
    rows = WebhookDelivery.objects.filter(endpoint=OuterRef("pk"), status=status).order_by().values("endpoint")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), Value(0))


class EndpointCounts(TypedDict):
    """What `webhook_endpoints_with_counts` annotates."""

    pending_deliveries: int
    dead_deliveries: int
    last_attempt_at: datetime | None


def webhook_endpoints_with_counts(endpoints: QuerySet[WebhookEndpoint]) -> QuerySet[WebhookEndpoint]:
    """The endpoints with `pending_deliveries`, `dead_deliveries` (on the (endpoint, status) index) and
    `last_attempt_at`, the time of their latest delivery attempt (None before the first)."""
    latest = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by().values("endpoint")
    return endpoints.annotate(
        pending_deliveries=_delivery_count(DeliveryStatus.PENDING),
        dead_deliveries=_delivery_count(DeliveryStatus.DEAD),
        last_attempt_at=Subquery(latest.annotate(at=Max("last_attempt_at")).values("at")),
    )


def webhook_delivery_body(delivery: WebhookDelivery) -> dict[str, Any]:
    """The JSON document the receiver gets for this delivery (`event_body`), parsed."""
    body: dict[str, Any] = json.loads(event_body(delivery.event))
    return body
