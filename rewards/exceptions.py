"""Reward and voucher errors with stable codes.

A code of another program is `voucher_not_found`, exactly like a code that
does not exist: a till must never learn that a code is valid elsewhere.
"""

from members.exceptions import DomainError, NotFound


class RewardNotFound(NotFound):
    code = "reward_not_found"
    title = "No such reward in this program"


class RewardInactive(DomainError):
    code = "reward_inactive"
    title = "The reward cannot be redeemed now"


class RewardOutOfStock(DomainError):
    code = "reward_out_of_stock"
    title = "The reward is out of stock"


class RewardLimitReached(DomainError):
    code = "reward_limit_reached"
    title = "The member has redeemed this reward as often as allowed"


class RewardTierRequired(DomainError):
    code = "reward_tier_required"
    title = "The member's tier is too low for this reward"


class VoucherNotFound(NotFound):
    code = "voucher_not_found"
    title = "No such voucher"


class VoucherExpired(DomainError):
    code = "voucher_expired"
    title = "The voucher has expired"


class VoucherAlreadyRedeemed(DomainError):
    code = "voucher_already_redeemed"
    title = "The voucher was already used"


class VoucherCancelled(DomainError):
    code = "voucher_cancelled"
    title = "The voucher was cancelled"


class VoucherWrongMember(DomainError):
    code = "voucher_wrong_member"
    title = "The voucher belongs to another member"


class VoucherMinBasketNotMet(DomainError):
    code = "voucher_min_basket_not_met"
    title = "The basket is below the voucher's minimum"


class VoucherOutOfScope(DomainError):
    code = "voucher_out_of_scope"
    title = "No line of the basket is in the voucher's scope"


class VoucherBasketRequired(DomainError):
    code = "voucher_basket_required"
    title = "The voucher's discount needs the basket"


class VoucherNotCancellable(DomainError):
    code = "voucher_not_cancellable"
    status = 409
    title = "Only an issued, unused voucher can be cancelled"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "No such hold in this program"


class HoldExceedsShare(DomainError):
    code = "hold_exceeds_share"
    title = "The points would pay more than the share of the basket points may pay"


class HoldBasketMismatch(DomainError):
    code = "hold_basket_mismatch"
    status = 409
    title = "The basket reference is held for another member or another basket amount"


class PointsPaymentUnavailable(DomainError):
    code = "points_payment_unavailable"
    title = "The program's points have no money value to pay with"


class HoldNotActive(DomainError):
    code = "hold_not_active"
    status = 409
    title = "The hold was already captured, released or expired"


class CampaignInvalid(DomainError):
    code = "campaign_invalid"
    status = 400
    title = "The campaign cannot be issued"
