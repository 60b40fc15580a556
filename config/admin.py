"""The admin site: its home page and sidebar list the models by what a program manager does, not by the app
that holds them.

`GROUPS` is the one table of the navigation: each group names its models (`app_label.model_name`) and pages
that are not a model's list (`Link`: the analytics dashboard, the attainability report), in the order shown.
The grouping changes only the lists on the home page and in the sidebar: every model keeps its admin, its URL
(/admin/<app_label>/<model>/), its permissions and its app's page (/admin/<app_label>/, reached from the
breadcrumbs). A user sees a model only where its admin lets them (Django's own check), a link only with all of
its permissions, and a group only when something in it is left. A registered model missing from the table is
still listed, after the groups, under its app's name (a test keeps the table complete).

The site replaces Django's default one through `config.apps.LoyaltyAdminConfig` (in INSTALLED_APPS), so every
`admin.site.register` in the apps registers here.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.text import slugify


@dataclass(frozen=True)
class Link:
    """A page listed in a group like a model: shown to users who hold all of `permissions`."""

    name: str
    url_name: str
    permissions: tuple[str, ...]


GROUPS: tuple[tuple[str, tuple[str | Link, ...]], ...] = (
    (
        "Members",
        (
            "members.member",
            "loyalty.purchase",
            "loyalty.return",
            "loyalty.entry",
            "loyalty.lot",
            "loyalty.tierhistory",
        ),
    ),
    ("Earning and tiers", ("loyalty.earningrule", "loyalty.tier")),
    ("Rewards", ("rewards.reward", "rewards.voucher")),
    (
        "Analytics",
        (
            Link("Analytics dashboard", "analytics-dashboard", ("analytics.view_memberanalytics",)),
            Link(
                "Reward attainability",
                "admin:rewards_reward_attainability",
                ("analytics.view_memberanalytics", "rewards.view_reward"),
            ),
            "analytics.rfmsegment",
            "analytics.segmentchange",
            "analytics.npsanswer",
            "analytics.acquisitioncost",
        ),
    ),
    (
        "Integrations",
        ("members.apikey", "events.webhookendpoint", "events.webhookdelivery", "events.outboxevent"),
    ),
    (
        "Programs and access",
        (
            "members.program",
            "auth.user",
            "auth.group",
            "axes.accessattempt",
            "axes.accesslog",
            "axes.accessfailurelog",
        ),
    ),
)


def _link_entry(link: Link, request: HttpRequest, site_name: str) -> dict[str, Any] | None:
    """The link in the shape of a model's entry (what admin/app_list.html reads), or None without the permissions."""
    if not request.user.has_perms(link.permissions):
        return None
    return {
        "name": link.name,
        "object_name": slugify(link.name).replace("-", ""),
        "admin_url": reverse(link.url_name, current_app=site_name),
        "add_url": None,
        "view_only": True,
        "perms": {"view": True},
    }


class LoyaltyAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        if app_label is not None:  # an app's own page lists its models, as Django does
            return super().get_app_list(request, app_label)
        entries = {
            f"{label}.{model['model']._meta.model_name}": (app, model)
            for label, app in self._build_app_dict(request).items()
            for model in app["models"]
        }
        groups = []
        for name, items in GROUPS:
            models = []
            for item in items:
                if isinstance(item, Link):
                    entry = _link_entry(item, request, self.name)
                else:
                    entry = entries.pop(item, (None, None))[1]
                if entry is not None:
                    models.append(entry)
            if models:  # no app_url: a group has no page of its own (config/templates/admin/app_list.html)
                groups.append({"name": name, "app_label": slugify(name), "app_url": "", "models": models})
        return groups + _ungrouped(entries)


def _ungrouped(entries: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Models missing from GROUPS, under their app's name as Django lists them."""
    apps: dict[str, dict[str, Any]] = {}
    for app, model in entries.values():
        apps.setdefault(app["app_label"], {**app, "models": []})["models"].append(model)
    for app in apps.values():
        app["models"].sort(key=lambda model: model["name"])
    return sorted(apps.values(), key=lambda app: app["name"].lower())
