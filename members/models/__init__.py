"""Models of the members app: programs, members, API keys, idempotency records (`core`), and the outbox of
business events with its webhook endpoints and deliveries (`events`), sign-in tokens (`tokens`)."""

from members.models.core import (
    ApiKey,
    IdempotencyRecord,
    Member,
    MemberStatus,
    Program,
    TierDowngrade,
    TierMetric,
    TierWindow,
    TimeUnit,
    currency_validator,
    validate_timezone,
)
from members.models.events import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    webhook_secret_new,
)
from members.models.tokens import AccessToken

__all__ = [
    "AccessToken",
    "ApiKey",
    "IdempotencyRecord",
    "Member",
    "MemberStatus",
    "Program",
    "TierDowngrade",
    "TierMetric",
    "TierWindow",
    "TimeUnit",
    "currency_validator",
    "validate_timezone",
    "DeliveryStatus",
    "OutboxEvent",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "webhook_secret_new",
]
