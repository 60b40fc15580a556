"""Models of the members app: programs, members, API keys, idempotency records (`core`), sign-in tokens
(`tokens`)."""

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
]
