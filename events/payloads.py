"""The `data` of each event type (docs/events.md, version 1): one typed builder per type, called by the service
that emits it (`event_emit(..., data=points_earned_payload(...))`).

A builder returns the payload as JSON will carry it: times as the outbox column has always written them
(`DjangoJSONEncoder`: ISO 8601, milliseconds, `Z` for UTC), money and other decimals as strings. The outbox sits
below the ledger and rewards, so builders take plain values (and members' models), never their models: the
emitting service reads what the payload needs. tests/events/test_payloads.py holds every builder to its example
in docs/events.md.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from django.core.serializers.json import DjangoJSONEncoder

from members.models import Member

_ENCODER = DjangoJSONEncoder()


def _time(value: datetime) -> str:
    """A time as the outbox's JSON column writes it (so a payload built here is the JSON stored)."""
    text: str = _ENCODER.default(value)
    return text


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else _time(value)


def _optional_decimal(value: Decimal | None) -> str | None:
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


# --- member.enrolled --------------------------------------------------------------------------------------------


class Consents(TypedDict):
    email: bool
    sms: bool
    push: bool


class MemberEnrolled(TypedDict):
    member_id: int
    external_id: str | None
    email: str | None
    enrolled_at: str
    acquisition_channel: str
    referred_by: int | None
    consents: Consents


def member_enrolled_payload(*, member: Member) -> MemberEnrolled:
    return {
        "member_id": member.pk,
        "external_id": member.external_id,
        "email": member.email,
        "enrolled_at": _time(member.enrolled_at),
        "acquisition_channel": member.acquisition_channel,
        "referred_by": member.referred_by_id,
        "consents": {"email": member.consent_email, "sms": member.consent_sms, "push": member.consent_push},
    }


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
        "available_at": _time(available_at),
        "expires_at": _optional_time(expires_at),
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
    return {"member_id": member_id, "points": points, "expires_at": _time(expires_at)}


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


# --- reward.redeemed, voucher.issued, voucher.redeemed ------------------------------------------------------------


class RewardRedeemed(TypedDict):
    member_id: int
    reward: RewardRef
    points_spent: int
    balances: BalancesData


def reward_redeemed_payload(
    *, member_id: int, reward: RewardRef, points_spent: int, balances: BalancesData
) -> RewardRedeemed:
    return {"member_id": member_id, "reward": reward, "points_spent": points_spent, "balances": balances}


class VoucherIssued(TypedDict):
    member_id: int
    voucher_id: int
    code: str
    reward: RewardRef
    value: str | None
    min_basket: str | None
    expires_at: str | None
    campaign: str


def voucher_issued_payload(
    *,
    member_id: int,
    voucher_id: int,
    code: str,
    reward: RewardRef,
    value: Decimal | None,
    min_basket: Decimal | None,
    expires_at: datetime | None,
    campaign: str,
) -> VoucherIssued:
    """For a voucher bought with points (`campaign` "") or given by a campaign."""
    return {
        "member_id": member_id,
        "voucher_id": voucher_id,
        "code": code,
        "reward": reward,
        "value": _optional_decimal(value),
        "min_basket": _optional_decimal(min_basket),
        "expires_at": _optional_time(expires_at),
        "campaign": campaign,
    }


class VoucherRedeemed(TypedDict):
    member_id: int | None
    voucher_id: int
    code: str
    reward_id: int | None
    campaign: str
    reference: str
    discount: str


def voucher_redeemed_payload(
    *,
    member_id: int | None,
    voucher_id: int,
    code: str,
    reward_id: int | None,
    campaign: str,
    reference: str,
    discount: Decimal,
) -> VoucherRedeemed:
    """`member_id` is None for a campaign voucher without a member; `discount`: what the voucher took off."""
    return {
        "member_id": member_id,
        "voucher_id": voucher_id,
        "code": code,
        "reward_id": reward_id,
        "campaign": campaign,
        "reference": reference,
        "discount": str(discount),
    }


# --- nps.answered -------------------------------------------------------------------------------------------------


class NpsAnswered(TypedDict):
    member_id: int
    answer_id: int
    score: int
    comment: str
    source: str


def nps_answered_payload(*, member_id: int, answer_id: int, score: int, comment: str, source: str) -> NpsAnswered:
    return {"member_id": member_id, "answer_id": answer_id, "score": score, "comment": comment, "source": source}


# --- Scheduled jobs: member.segment_changed, member.inactive, member.next_purchase_due ----------------------------


class Scores(TypedDict):
    r: int
    f: int
    m: int


MemberSegmentChanged = TypedDict(
    "MemberSegmentChanged",
    {
        "member_id": int,
        "from": str,
        "to": str,
        "scores": Scores,
        "recency_days": int,
        "purchases": int,
        "monetary": str,
        "last_purchase_at": str,
    },
)


def member_segment_changed_payload(
    *,
    member_id: int,
    from_segment: str,
    to_segment: str,
    r: int,
    f: int,
    m: int,
    recency_days: int,
    purchases: int,
    monetary: Decimal,
    last_purchase_at: datetime,
) -> MemberSegmentChanged:
    """The figures of the refresh that moved the member (`r`, `f`, `m`: its scores)."""
    return {
        "member_id": member_id,
        "from": from_segment,
        "to": to_segment,
        "scores": {"r": r, "f": f, "m": m},
        "recency_days": recency_days,
        "purchases": purchases,
        "monetary": str(monetary),
        "last_purchase_at": _time(last_purchase_at),
    }


class MemberInactive(TypedDict):
    member_id: int
    inactive_since: str
    last_purchase_at: str | None
    inactive_days: int
    days_inactive: int
    segment: str | None
    balances: BalancesData


def member_inactive_payload(
    *,
    member_id: int,
    inactive_since: datetime,
    last_purchase_at: datetime | None,
    inactive_days: int,
    days_inactive: int,
    segment: str | None,
    balances: BalancesData,
) -> MemberInactive:
    """`segment`: the one at the last refresh; none ("" or None) is null."""
    return {
        "member_id": member_id,
        "inactive_since": _time(inactive_since),
        "last_purchase_at": _optional_time(last_purchase_at),
        "inactive_days": inactive_days,
        "days_inactive": days_inactive,
        "segment": segment or None,
        "balances": balances,
    }


class MemberNextPurchaseDue(TypedDict):
    member_id: int
    expected_at: str
    last_purchase_at: str | None
    mean_days_between_purchases: float
    purchases: int
    segment: str | None


def member_next_purchase_due_payload(
    *,
    member_id: int,
    expected_at: datetime,
    last_purchase_at: datetime | None,
    mean_days_between_purchases: float,
    purchases: int,
    segment: str | None,
) -> MemberNextPurchaseDue:
    """`segment`: the one at the last refresh; none ("" or None) is null."""
    return {
        "member_id": member_id,
        "expected_at": _time(expected_at),
        "last_purchase_at": _optional_time(last_purchase_at),
        "mean_days_between_purchases": mean_days_between_purchases,
        "purchases": purchases,
        "segment": segment or None,
    }
