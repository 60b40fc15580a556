"""Models of the members app: programs, members, API keys, idempotency records (`core`), and the outbox of
business events with its webhook endpoints and deliveries (`events`)."""

from .core import (
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
from .events import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    webhook_secret_new,
)

__all__ = [
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
