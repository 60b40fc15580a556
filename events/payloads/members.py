"""Payloads of the member events: member.enrolled, nps.answered, and the scheduled ones (member.segment_changed,
member.inactive, member.next_purchase_due). docs/events.md."""

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from events.payloads.common import (
    BalancesData,
    iso_time,
    optional_iso_time,
)
from members.models import Member

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
        "enrolled_at": iso_time(member.enrolled_at),
        "acquisition_channel": member.acquisition_channel,
        "referred_by": member.referred_by_id,
        "consents": {"email": member.consent_email, "sms": member.consent_sms, "push": member.consent_push},
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
        "last_purchase_at": iso_time(last_purchase_at),
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
        "inactive_since": iso_time(inactive_since),
        "last_purchase_at": optional_iso_time(last_purchase_at),
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
        "expected_at": iso_time(expected_at),
        "last_purchase_at": optional_iso_time(last_purchase_at),
        "mean_days_between_purchases": mean_days_between_purchases,
        "purchases": purchases,
        "segment": segment or None,
    }
