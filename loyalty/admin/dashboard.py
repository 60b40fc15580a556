"""The analytics dashboard page of a program: every registered panel (`loyalty.dashboard`) as a chart.

Served at /admin/loyalty/dashboard/ (see config/urls.py) through the admin site, so only staff reach it;
a manager sees the programs they manage and needs the permission to view member analytics. The panels are
those of the last analytics refresh (kept in the cache); `?refresh=1` recomputes them now.
"""

from dataclasses import asdict

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from config.api import managed_programs
from loyalty.dashboard import dashboard_panels_cached, dashboard_panels_store
from loyalty.models import MemberAnalytics

PERMISSION = "loyalty.view_memberanalytics"
# The admin home lists the dashboard and the attainability report above the apps.
admin.site.index_template = "admin/loyalty/index.html"


def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    programs = list(managed_programs(request.user).order_by("name"))
    chosen = request.GET.get("program")
    program = next((p for p in programs if str(p.pk) == chosen), programs[0] if programs else None)
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
    return TemplateResponse(request, "admin/loyalty/dashboard.html", context)
