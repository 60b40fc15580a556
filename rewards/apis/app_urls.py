"""Member app endpoints of rewards and vouchers, included by config.urls under /api/app/v1/."""

from django.urls import path

from rewards.apis import app

app_patterns = [
    path("me/rewards/", app.MeRewardListView.as_view(), name="me-rewards"),
    path("me/rewards/<str:reward_id>/redeem/", app.MeRewardRedeemView.as_view(), name="me-reward-redeem"),
    path("me/vouchers/", app.MeVoucherListView.as_view(), name="me-vouchers"),
]
