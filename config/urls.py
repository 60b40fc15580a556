"""The site's URLs: the admin, the three API surfaces (each app's `apis/urls.py` gives its part of each
surface), the schema and its docs, health checks."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from analytics.admin.dashboard import dashboard_view
from analytics.apis import urls as analytics_urls
from config import health
from events.apis import urls as events_urls
from loyalty.apis import urls as loyalty_urls
from rewards.apis import urls as rewards_urls

pos_patterns = [*loyalty_urls.pos_patterns, *rewards_urls.pos_patterns, *analytics_urls.pos_patterns]
manage_patterns = [
    *loyalty_urls.manage_patterns,
    *events_urls.manage_patterns,
    *rewards_urls.manage_patterns,
    *analytics_urls.manage_patterns,
]
app_patterns = [*loyalty_urls.app_patterns, *rewards_urls.app_patterns, *analytics_urls.app_patterns]

# Swagger UI is served from this site (drf-spectacular-sidecar), and so is its start-up script (the split
# view's `?script`): the page works offline and needs nothing beyond the Content-Security-Policy's 'self'.
api_docs_view = SpectacularSwaggerSplitView.as_view(url_name="schema", http_method_names=["get", "head"])

urlpatterns = [
    path("admin/analytics/dashboard/", admin.site.admin_view(dashboard_view), name="analytics-dashboard"),
    path("admin/", admin.site.urls),
    path("api/pos/v1/", include((pos_patterns, "pos"))),
    path("api/manage/v1/", include((manage_patterns, "manage"))),
    path("api/app/v1/", include((app_patterns, "app"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # An HTML page: GET and HEAD only (its template cannot render an OPTIONS answer).
    path("api/docs/", api_docs_view, name="docs"),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
]

handler404 = "config.api.problems.api_not_found"
handler500 = "config.api.problems.server_error"
