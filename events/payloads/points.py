"""Payloads of points.* and tier.* events. docs/events.md."""

from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from events.payloads.common import (
    AwardRef,
    BalancesData,
    TierRef,
    iso_time,
    optional_iso_time,
)

# --- points.* ---------------------------------------------------------------------------------------------------


class PointsEarned(TypedDict):
    member_id: int
    points: int
    awards: list[AwardRef]
    reason: dict[str, Any]
    available_at: str
    expires_at: str | None
    balances: BalancesData


def points_earned_payload(
    *,
    member_id: int,
    points: int,
    awards: list[AwardRef],
    details: dict[str, Any],
    event: str = "",
    available_at: datetime,
    expires_at: datetime | None,
    balances: BalancesData,
) -> PointsEarned:
    """`reason` is the entry's details (the purchase, say) with the event that gave the points, if one did."""
    return {
        "member_id": member_id,
        "points": points,
        "awards": awards,
        "reason": {**details, **({"event": event} if event else {})},
        "available_at": iso_time(available_at),
        "expires_at": optional_iso_time(expires_at),
        "balances": balances,
    }


PointsReversed = TypedDict(
    "PointsReversed",
    {
        "member_id": int,
        "points": int,
        "purchase": str,
        "return": str,
        "amount": str,
        "debt_added": int,
        "balances": BalancesData,
    },
)


def points_reversed_payload(
    *,
    member_id: int,
    points: int,
    purchase_external_id: str,
    return_external_id: str,
    amount: Decimal,
    debt_added: int,
    balances: BalancesData,
) -> PointsReversed:
    return {
        "member_id": member_id,
        "points": points,
        "purchase": purchase_external_id,
        "return": return_external_id,
        "amount": str(amount),
        "debt_added": debt_added,
        "balances": balances,
    }


class PointsExpiringSoon(TypedDict):
    member_id: int
    points: int
    expires_at: str


def points_expiring_soon_payload(*, member_id: int, points: int, expires_at: datetime) -> PointsExpiringSoon:
    """`expires_at`: the earliest expiry of the warned lots."""
    return {"member_id": member_id, "points": points, "expires_at": iso_time(expires_at)}


class PointsExpired(TypedDict):
    member_id: int
    points: int
    lots: int
    balances: BalancesData


def points_expired_payload(*, member_id: int, points: int, lots: int, balances: BalancesData) -> PointsExpired:
    return {"member_id": member_id, "points": points, "lots": lots, "balances": balances}


# --- tier.promoted and tier.downgraded ----------------------------------------------------------------------------

TierChanged = TypedDict(
    "TierChanged",
    {"member_id": int, "from": TierRef | None, "to": TierRef | None, "reason": str, "metric_value": str},
)


def tier_changed_payload(
    *, member_id: int, from_tier: TierRef | None, to_tier: TierRef | None, reason: str, metric_value: Decimal
) -> TierChanged:
    """The payload of both `tier.promoted` and `tier.downgraded` (the type says which way)."""
    return {
        "member_id": member_id,
        "from": from_tier,
        "to": to_tier,
        "reason": reason,
        "metric_value": str(metric_value),
    }
