"""What several payloads share: how times and decimals are written, the balances, reward, tier and award parts."""

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from django.core.serializers.json import DjangoJSONEncoder

_ENCODER = DjangoJSONEncoder()


def iso_time(value: datetime) -> str:
    """A time as the outbox's JSON column writes it (so a payload built here is the JSON stored)."""
    text: str = _ENCODER.default(value)
    return text


def optional_iso_time(value: datetime | None) -> str | None:
    return None if value is None else iso_time(value)


def optional_decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# --- Parts shared by several types ----------------------------------------------------------------------------


class BalancesData(TypedDict):
    """A member's three balances after a change, in events and in the answers of the APIs' writes (built by
    `loyalty.models.Account.balances`; `ShortBalancesOutput` in the APIs)."""

    available: int
    pending: int
    debt: int


class RewardRef(TypedDict):
    id: int
    name: str
    kind: str
    points_cost: int


def reward_ref(*, id: int, name: str, kind: str, points_cost: int) -> RewardRef:
    """How events name a reward."""
    return {"id": id, "name": name, "kind": kind, "points_cost": points_cost}


class TierRef(TypedDict):
    id: int
    name: str
    rank: int


def tier_ref(*, id: int, name: str, rank: int) -> TierRef:
    """How events name a tier."""
    return {"id": id, "name": name, "rank": rank}


class AwardRef(TypedDict):
    rule: str
    rule_id: int | None
    points: int
