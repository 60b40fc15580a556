"""Analytics and NPS endpoints of the three surfaces, included by config.urls."""

from django.urls import path

from analytics.apis import app, manage, manage_clv, manage_members, manage_rfm, pos

pos_patterns = [
    path("members/<str:member_id>/nps/", pos.MemberNpsView.as_view(), name="member-nps"),
]

manage_patterns = [
    path("members/", manage_members.ManageMemberListView.as_view(), name="member-list"),
    path("analytics/retention/", manage.RetentionView.as_view(), name="analytics-retention"),
    path("analytics/cohorts/", manage.CohortView.as_view(), name="analytics-cohorts"),
    path("analytics/orders/", manage.OrderView.as_view(), name="analytics-orders"),
    path("analytics/nps/", manage.NpsView.as_view(), name="analytics-nps"),
    path("analytics/liability/", manage.LiabilityView.as_view(), name="analytics-liability"),
    path("analytics/rfm/", manage_rfm.RfmSummaryView.as_view(), name="analytics-rfm"),
    path("analytics/rfm/segments/", manage_rfm.RfmGridView.as_view(), name="analytics-rfm-segments"),
    path("analytics/refresh/", manage_rfm.RefreshView.as_view(), name="analytics-refresh"),
    path("analytics/clv/", manage_clv.ClvView.as_view(), name="analytics-clv"),
]

app_patterns = [
    path("me/nps/", app.MeNpsView.as_view(), name="me-nps"),
]
