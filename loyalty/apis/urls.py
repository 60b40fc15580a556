"""Ledger, purchase, rule and tier endpoints of the three surfaces, included by config.urls."""

from django.urls import path

from loyalty.apis import app, manage, manage_purchases, manage_rules, manage_tiers, pos

pos_patterns = [
    path("members/", pos.MemberEnrollView.as_view(), name="member-enroll"),
    path("members/lookup/", pos.MemberLookupView.as_view(), name="member-lookup"),
    path("members/<str:member_id>/", pos.MemberDetailView.as_view(), name="member-detail"),
    path("members/<str:member_id>/ledger/", pos.MemberLedgerView.as_view(), name="member-ledger"),
    path("members/<str:member_id>/tier/", pos.MemberTierView.as_view(), name="member-tier"),
    path("purchases/", pos.PurchaseView.as_view(), name="purchase"),
    path("purchases/simulate/", pos.PurchaseSimulateView.as_view(), name="purchase-simulate"),
    path("returns/", pos.ReturnView.as_view(), name="return"),
    path("events/", pos.EventView.as_view(), name="event"),
]

manage_patterns = [
    path("members/<str:member_id>/", manage.ManageMemberDetailView.as_view(), name="member-detail"),
    path("members/<str:member_id>/adjustments/", manage.ManageAdjustmentView.as_view(), name="member-adjust"),
    path("members/<str:member_id>/tier-pin/", manage_tiers.MemberTierPinView.as_view(), name="member-tier-pin"),
    path("rules/", manage_rules.RuleListView.as_view(), name="rule-list"),
    path("rules/preview/", manage_rules.RulePreviewView.as_view(), name="rule-preview"),
    path("rules/<int:rule_id>/", manage_rules.RuleDetailView.as_view(), name="rule-detail"),
    path("rules/<int:rule_id>/deactivate/", manage_rules.RuleDeactivateView.as_view(), name="rule-deactivate"),
    path("tiers/", manage_tiers.TierListView.as_view(), name="tier-list"),
    path("tiers/<int:tier_id>/", manage_tiers.TierDetailView.as_view(), name="tier-detail"),
    path("tier-history/", manage_tiers.TierHistoryListView.as_view(), name="tier-history"),
    path("purchases/", manage_purchases.PurchaseListView.as_view(), name="purchase-list"),
    path("purchases/<int:purchase_id>/", manage_purchases.PurchaseDetailView.as_view(), name="purchase-detail"),
    path("returns/", manage_purchases.ReturnListView.as_view(), name="return-list"),
]

app_patterns = [
    path("auth/token/", app.LoginView.as_view(), name="auth-token"),
    path("auth/logout/", app.LogoutView.as_view(), name="auth-logout"),
    path("me/", app.MeView.as_view(), name="me"),
    path("me/ledger/", app.MeLedgerView.as_view(), name="me-ledger"),
    path("me/tier/", app.MeTierView.as_view(), name="me-tier"),
    path("me/export/", app.MeExportView.as_view(), name="me-export"),
]
