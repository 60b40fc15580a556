"""Every write of rewards and vouchers: redemptions and vouchers, vouchers at the till, holds (points as payment),
campaigns. The shared refund of spent points lives in `refunds`."""

from rewards.discounts import CENT
from rewards.services.campaigns import campaign_issue
from rewards.services.catalog import reward_save
from rewards.services.holds import HoldResult, hold_capture, hold_create, hold_release, holds_expire, max_points_share
from rewards.services.till import RedeemResult, ValidationResult, voucher_discount, voucher_redeem, voucher_validate
from rewards.services.vouchers import (
    CODE_ATTEMPTS,
    RedemptionResult,
    reward_redeem,
    voucher_cancel,
    voucher_create,
    vouchers_expire,
)

__all__ = [
    "CENT",
    "CODE_ATTEMPTS",
    "HoldResult",
    "RedeemResult",
    "RedemptionResult",
    "ValidationResult",
    "campaign_issue",
    "hold_capture",
    "hold_create",
    "hold_release",
    "holds_expire",
    "max_points_share",
    "reward_redeem",
    "reward_save",
    "voucher_cancel",
    "voucher_create",
    "voucher_discount",
    "voucher_redeem",
    "voucher_validate",
    "vouchers_expire",
]
