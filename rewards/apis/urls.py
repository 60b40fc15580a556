"""Integration endpoints of rewards and vouchers, included by config.urls under /api/pos/v1/."""

from django.urls import path

from . import pos

pos_patterns = [
    path("members/<str:member_id>/redemptions/", pos.RedemptionView.as_view(), name="member-redemption"),
    path("vouchers/validate/", pos.VoucherValidateView.as_view(), name="voucher-validate"),
    path("vouchers/redeem/", pos.VoucherRedeemView.as_view(), name="voucher-redeem"),
]
