"""Each event type's payload builder (`events.payloads`) against its examples in docs/events.md (version 1): fed
an example's values, the builder writes that example, key for key and format for format (ISO times, decimal
strings, nulls). An example is the JSON block after a `<!-- payload: <type> ... -->` marker."""

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from events.outbox import EventType
from events.payloads.common import reward_ref, tier_ref
from events.payloads.members import (
    member_enrolled_payload,
    member_inactive_payload,
    member_next_purchase_due_payload,
    member_segment_changed_payload,
    nps_answered_payload,
)
from events.payloads.points import (
    points_earned_payload,
    points_expired_payload,
    points_expiring_soon_payload,
    points_reversed_payload,
    tier_changed_payload,
)
from events.payloads.rewards import reward_redeemed_payload, voucher_issued_payload, voucher_redeemed_payload
from members.models import Member

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def doc_examples() -> list[tuple[str, dict[str, Any]]]:
    """(type, example) for every example in the doc; an example shown for several types counts for each."""
    text = DOC.read_text()
    blocks = re.findall(r"<!-- payload: ([^>]*?) -->\n```json\n(.*?)```", text, flags=re.DOTALL)
    return [(type, json.loads(body)) for types, body in blocks for type in types.split()]


def time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def money(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None


def tier(ref: dict[str, Any] | None):
    return tier_ref(**ref) if ref is not None else None


def enrolled(x: dict[str, Any]) -> Mapping[str, Any]:
    member = Member(
        id=x["member_id"],
        external_id=x["external_id"],
        email=x["email"],
        enrolled_at=time(x["enrolled_at"]),
        acquisition_channel=x["acquisition_channel"],
        referred_by_id=x["referred_by"],
        consent_email=x["consents"]["email"],
        consent_sms=x["consents"]["sms"],
        consent_push=x["consents"]["push"],
    )
    return member_enrolled_payload(member=member)


def earned(x: dict[str, Any]) -> Mapping[str, Any]:
    event = x["reason"].get("event", "")
    return points_earned_payload(
        member_id=x["member_id"],
        points=x["points"],
        awards=x["awards"],
        details={key: value for key, value in x["reason"].items() if key != "event"},
        event=event,
        available_at=time(x["available_at"]),
        expires_at=time(x["expires_at"]),
        balances=x["balances"],
    )


def tier_changed(x: dict[str, Any]) -> Mapping[str, Any]:
    return tier_changed_payload(
        member_id=x["member_id"],
        from_tier=tier(x["from"]),
        to_tier=tier(x["to"]),
        reason=x["reason"],
        metric_value=money(x["metric_value"]),
    )


BUILD: dict[str, Callable[[dict[str, Any]], Mapping[str, Any]]] = {
    EventType.MEMBER_ENROLLED: enrolled,
    EventType.POINTS_EARNED: earned,
    EventType.POINTS_REVERSED: lambda x: points_reversed_payload(
        member_id=x["member_id"],
        points=x["points"],
        purchase_external_id=x["purchase"],
        return_external_id=x["return"],
        amount=money(x["amount"]),
        debt_added=x["debt_added"],
        balances=x["balances"],
    ),
    EventType.POINTS_EXPIRING_SOON: lambda x: points_expiring_soon_payload(
        member_id=x["member_id"], points=x["points"], expires_at=time(x["expires_at"])
    ),
    EventType.POINTS_EXPIRED: lambda x: points_expired_payload(
        member_id=x["member_id"], points=x["points"], lots=x["lots"], balances=x["balances"]
    ),
    EventType.TIER_PROMOTED: tier_changed,
    EventType.TIER_DOWNGRADED: tier_changed,
    EventType.REWARD_REDEEMED: lambda x: reward_redeemed_payload(
        member_id=x["member_id"],
        reward=reward_ref(**x["reward"]),
        points_spent=x["points_spent"],
        balances=x["balances"],
    ),
    EventType.VOUCHER_ISSUED: lambda x: voucher_issued_payload(
        member_id=x["member_id"],
        voucher_id=x["voucher_id"],
        code=x["code"],
        reward=reward_ref(**x["reward"]),
        value=money(x["value"]),
        min_basket=money(x["min_basket"]),
        expires_at=time(x["expires_at"]),
        campaign=x["campaign"],
    ),
    EventType.VOUCHER_REDEEMED: lambda x: voucher_redeemed_payload(
        member_id=x["member_id"],
        voucher_id=x["voucher_id"],
        code=x["code"],
        reward_id=x["reward_id"],
        campaign=x["campaign"],
        reference=x["reference"],
        discount=money(x["discount"]),
    ),
    EventType.MEMBER_SEGMENT_CHANGED: lambda x: member_segment_changed_payload(
        member_id=x["member_id"],
        from_segment=x["from"],
        to_segment=x["to"],
        **x["scores"],
        recency_days=x["recency_days"],
        purchases=x["purchases"],
        monetary=money(x["monetary"]),
        last_purchase_at=time(x["last_purchase_at"]),
    ),
    EventType.MEMBER_INACTIVE: lambda x: member_inactive_payload(
        member_id=x["member_id"],
        inactive_since=time(x["inactive_since"]),
        last_purchase_at=time(x["last_purchase_at"]),
        inactive_days=x["inactive_days"],
        days_inactive=x["days_inactive"],
        segment=x["segment"],
        balances=x["balances"],
    ),
    EventType.MEMBER_NEXT_PURCHASE_DUE: lambda x: member_next_purchase_due_payload(
        member_id=x["member_id"],
        expected_at=time(x["expected_at"]),
        last_purchase_at=time(x["last_purchase_at"]),
        mean_days_between_purchases=x["mean_days_between_purchases"],
        purchases=x["purchases"],
        segment=x["segment"],
    ),
    EventType.NPS_ANSWERED: lambda x: nps_answered_payload(
        member_id=x["member_id"], answer_id=x["answer_id"], score=x["score"], comment=x["comment"], source=x["source"]
    ),
}


def test_every_event_type_has_a_builder_and_a_documented_example():
    assert set(BUILD) == set(EventType.values)
    assert {type for type, _ in doc_examples()} == set(EventType.values)


@pytest.mark.parametrize(("type", "example"), doc_examples(), ids=[type for type, _ in doc_examples()])
def test_the_builder_writes_the_documented_example(type, example):
    payload = BUILD[type](example)

    assert list(payload) == list(example)  # the documented keys, in the documented order
    assert json.loads(DjangoJSONEncoder().encode(payload)) == example  # what the outbox column stores
