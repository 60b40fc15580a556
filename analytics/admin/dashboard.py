"""The analytics dashboard page of a program: every registered panel (`analytics.dashboard.panels`) as a chart.

Served at /admin/analytics/dashboard/ (see config/urls.py) through the admin site, so only staff reach it;
a manager sees the programs they manage and needs the permission to view member analytics. The panels are
those of the last analytics refresh (kept in the cache); `?refresh=1` recomputes them now. The admin's home
page and sidebar link to it in the Analytics group (config/admin.py).
"""

from dataclasses import asdict

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from analytics.dashboard.panels import dashboard_panels_cached, dashboard_panels_store
from analytics.models import MemberAnalytics
from members.access import access_program_chosen

PERMISSION = "analytics.view_memberanalytics"


def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    programs, program = access_program_chosen(request.user, request.GET.get("program"))
    refresh = program is not None and request.GET.get("refresh") == "1"
    panels, computed_at = (
        (dashboard_panels_store(program) if refresh else dashboard_panels_cached(program)) if program else ([], None)
    )
    context = {
        **admin.site.each_context(request),
        "opts": MemberAnalytics._meta,
        "title": f"Analytics dashboard: {program}" if program else "Analytics dashboard",
        "programs": programs,
        "program": program,
        "panels": panels,
        "computed_at": computed_at,
        "charts": {panel.id: {**asdict(panel)} for panel in panels},
    }
    return TemplateResponse(request, "admin/analytics/dashboard.html", context)
