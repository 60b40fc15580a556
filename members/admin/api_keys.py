"""API keys of tills and shops: created here (the key is shown once), revoked, never deleted."""

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from members.admin.base import ManagedProgramFilter, ObjectActionsAdmin, ProgramScopedAdmin, adopt
from members.models import ApiKey
from members.services.api_keys import api_key_create, api_key_revoke, api_key_update

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ObjectActionsAdmin, ProgramScopedAdmin):
    list_display = ["name", "program", "store", "prefix", "created_at", "created_by", "last_used_at", "active"]
    list_filter = [ApiKeyStateFilter, ManagedProgramFilter]
    list_select_related = ["program", "created_by"]
    search_fields = ["name", "store", "=prefix"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]
    object_actions = ("revoke",)
    object_action_labels = {"revoke": "Revoke"}

    @admin.display(description="Active", boolean=True, ordering="revoked_at")
    def active(self, api_key: ApiKey) -> bool:
        return api_key.is_active

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> "_FieldGroups":
        if obj is None:
            return ["program", "name", "store"]
        return ["program", "name", "store", "prefix", "created_at", "created_by", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "program"] if obj is not None else readonly

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.revoked_at is None)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the key's history (who used it, when) stays

    def object_action_applies(self, obj: ApiKey, name: str) -> bool:
        return obj.revoked_at is None

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        if change:  # only the name and the store can change
            if form.changed_data:
                api_key_update(api_key=obj, fields=form.changed_data)
            return
        api_key, plain = api_key_create(
            program=form.cleaned_data["program"],
            name=form.cleaned_data["name"],
            store=form.cleaned_data.get("store") or "",
            created_by=request.user,
        )
        adopt(obj, api_key)
        obj.plain_key = plain  # type: ignore[attr-defined]  # shown once by response_add, stored nowhere

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        """Shows the new key on the answer to the POST itself: it never goes into a
        message, a session or a URL, and cannot be shown again."""
        request.current_app = self.admin_site.name
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": "Copy the new API key now",
            "api_key": obj,
            "plain_key": obj.plain_key,  # type: ignore[attr-defined]  # set by save_model
            "change_url": reverse("admin:members_apikey_change", args=[obj.pk], current_app=self.admin_site.name),
            "changelist_url": self.changelist_url(),
        }
        return TemplateResponse(request, "admin/members/apikey/created.html", context)

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            intro = "Tills and shops using these keys are refused from the moment you confirm. This cannot be undone."
            return self.action_page(
                request,
                queryset,
                action="revoke",
                title="Revoke API keys",
                intro=intro,
                button="Yes, revoke",
                danger=True,
            )
        self.run_each(request, queryset, lambda api_key: api_key_revoke(api_key=api_key), "Revoked", "API key")
        return self.after_action(request, queryset)
