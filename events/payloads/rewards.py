"""Payloads of reward.redeemed, voucher.issued and voucher.redeemed. docs/events.md."""

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from events.payloads.common import (
    BalancesData,
    RewardRef,
    optional_decimal_text,
    optional_iso_time,
)

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
        "value": optional_decimal_text(value),
        "min_basket": optional_decimal_text(min_basket),
        "expires_at": optional_iso_time(expires_at),
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
