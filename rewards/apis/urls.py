"""Reward, voucher, hold and attainability endpoints of the three surfaces, included by config.urls."""

from django.urls import path

from rewards.apis import app, attainability, manage, pos

pos_patterns = [
    path("members/<str:member_id>/redemptions/", pos.RedemptionView.as_view(), name="member-redemption"),
    path("vouchers/validate/", pos.VoucherValidateView.as_view(), name="voucher-validate"),
    path("vouchers/redeem/", pos.VoucherRedeemView.as_view(), name="voucher-redeem"),
    path("members/<str:member_id>/holds/", pos.HoldCreateView.as_view(), name="member-hold"),
    path("holds/<str:hold_id>/capture/", pos.HoldCaptureView.as_view(), name="hold-capture"),
    path("holds/<str:hold_id>/release/", pos.HoldReleaseView.as_view(), name="hold-release"),
]

manage_patterns = [
    path("campaigns/", manage.CampaignView.as_view(), name="campaign-issue"),
    path("analytics/attainability/", attainability.AttainabilityView.as_view(), name="attainability-report"),
    path(
        "analytics/attainability/what-if/",
        attainability.AttainabilityWhatIfView.as_view(),
        name="attainability-what-if",
    ),
    path("rewards/", manage.RewardListView.as_view(), name="reward-list"),
    path("rewards/<str:reward_id>/", manage.RewardDetailView.as_view(), name="reward-detail"),
    path("vouchers/", manage.VoucherListView.as_view(), name="voucher-list"),
    path("vouchers/<str:voucher_id>/", manage.VoucherDetailView.as_view(), name="voucher-detail"),
    path("vouchers/<str:voucher_id>/cancel/", manage.VoucherCancelView.as_view(), name="voucher-cancel"),
]

app_patterns = [
    path("me/rewards/", app.MeRewardListView.as_view(), name="me-rewards"),
    path("me/rewards/<str:reward_id>/redeem/", app.MeRewardRedeemView.as_view(), name="me-reward-redeem"),
    path("me/vouchers/", app.MeVoucherListView.as_view(), name="me-vouchers"),
]
