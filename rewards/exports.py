"""The rewards part of a member's GDPR export (registered in `RewardsConfig.ready`)."""

from typing import Any

from members.exports import export_rows
from members.models import Member
from rewards.models import Hold, Voucher

VOUCHER_FIELDS = [
    "code", "reward__name", "campaign", "kind", "value", "min_basket", "status", "issued_at", "expires_at",
    "points_cost", "redeemed_at", "redeemed_reference", "redeemed_discount", "cancelled_at",
]  # fmt: skip
HOLD_FIELDS = [
    "basket_reference", "basket_amount", "points", "money_value", "status", "expires_at", "created_at",
    "captured_at", "released_at",
]  # fmt: skip


def member_rewards_export(member: Member) -> dict[str, Any]:
    """The member's vouchers (with their codes) and points holds of e-shop baskets."""
    return {
        "vouchers": export_rows(Voucher.objects.filter(member=member).order_by("issued_at", "id"), VOUCHER_FIELDS),
        "holds": export_rows(Hold.objects.filter(member=member).order_by("created_at", "id"), HOLD_FIELDS),
    }
