from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health
from loyalty.admin.dashboard import dashboard_view
from loyalty.apis import (
    analytics,
    analytics_clv,
    analytics_rfm,
    manage,
    manage_purchases,
    manage_rules,
    manage_tiers,
    manage_webhooks,
    pos,
    pos_nps,
)
from loyalty.apis.app_urls import app_patterns as loyalty_app_patterns
from rewards.apis.app_urls import app_patterns as reward_app_patterns
from rewards.apis.urls import manage_patterns as reward_manage_patterns
from rewards.apis.urls import pos_patterns as reward_pos_patterns

pos_patterns = [
    path("members/", pos.MemberEnrollView.as_view(), name="member-enroll"),
    path("members/lookup/", pos.MemberLookupView.as_view(), name="member-lookup"),
    path("members/<str:member_id>/", pos.MemberDetailView.as_view(), name="member-detail"),
    path("members/<str:member_id>/ledger/", pos.MemberLedgerView.as_view(), name="member-ledger"),
    path("members/<str:member_id>/tier/", pos.MemberTierView.as_view(), name="member-tier"),
    path("members/<str:member_id>/nps/", pos_nps.MemberNpsView.as_view(), name="member-nps"),
    path("purchases/", pos.PurchaseView.as_view(), name="purchase"),
    path("purchases/simulate/", pos.PurchaseSimulateView.as_view(), name="purchase-simulate"),
    path("returns/", pos.ReturnView.as_view(), name="return"),
    path("events/", pos.EventView.as_view(), name="event"),
    *reward_pos_patterns,
]

manage_patterns = [
    path("members/", manage.ManageMemberListView.as_view(), name="member-list"),
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
    path("analytics/", include(analytics.urlpatterns)),
    path("analytics/", include(analytics_rfm.urlpatterns)),
    path("analytics/", include(analytics_clv.urlpatterns)),
    path("webhooks/", include(manage_webhooks.urlpatterns)),
    *reward_manage_patterns,
]

# Swagger UI is served from this site (drf-spectacular-sidecar), and so is its start-up script (the split
# view's `?script`): the page works offline and needs nothing beyond the Content-Security-Policy's 'self'.
api_docs_view = SpectacularSwaggerSplitView.as_view(url_name="schema", http_method_names=["get", "head"])

urlpatterns = [
    path("admin/loyalty/dashboard/", admin.site.admin_view(dashboard_view), name="loyalty-dashboard"),
    path("admin/", admin.site.urls),
    path("api/pos/v1/", include((pos_patterns, "pos"))),
    path("api/manage/v1/", include((manage_patterns, "manage"))),
    path("api/app/v1/", include(([*loyalty_app_patterns, *reward_app_patterns], "app"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # An HTML page: GET and HEAD only (its template cannot render an OPTIONS answer).
    path("api/docs/", api_docs_view, name="docs"),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
]

handler404 = "config.problems.api_not_found"
handler500 = "config.problems.server_error"
