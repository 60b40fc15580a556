"""Tiers in the admin: saved through `tier_save` and deleted through `tier_delete` (which bump the program's
config version), listed by program and rank with the number of members holding each. A tier is deleted only
when nobody holds it, no earning rule is limited to it and no tier history refers to it;
otherwise the manager gets a clear message instead of the database's PROTECT error.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.deletion import ProtectedError
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from loyalty.models import Account, EarningRule, Tier, TierHistory
from loyalty.services.tiers import tier_delete, tier_save
from members.admin import ManagedProgramFilter, ProgramScopedAdmin, plural
from members.admin.base import MemberCount

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = ["program", "name", "rank", "threshold", "earn_multiplier", "benefits"]

    def clean(self) -> dict[str, Any]:
        """A rank or name another tier of the program has is an error on that field (the database
        constraints would otherwise only be checked once the program is read-only)."""
        super().clean()
        cleaned = self.cleaned_data  # what super().clean() returned (typed: the stubs allow None)
        program = cleaned.get("program") or (self.instance.program if self.instance.program_id else None)
        if program is None:
            return cleaned
        others = Tier.objects.filter(program=program).exclude(pk=self.instance.pk)
        for field in ("rank", "name"):
            if cleaned.get(field) is not None and others.filter(**{field: cleaned[field]}).exists():
                self.add_error(field, f"Another tier of {program} has this {field}.")
        return cleaned


def tier_in_use(tier: Tier) -> str:
    """Why `tier` cannot be deleted, or an empty string."""
    holders = Account.objects.filter(tier=tier).count()
    if holders:
        return f"it is held by {plural(holders, 'member')}. A tier can be deleted only when nobody holds it."
    rules = EarningRule.objects.filter(tiers=tier).count()
    if rules:
        return f"it limits {plural(rules, 'earning rule')}, which would apply to every member without it."
    if TierHistory.objects.filter(Q(from_tier=tier) | Q(to_tier=tier)).exists():
        return "members have held it and their tier history is kept. Change its threshold or benefits instead."
    return ""


@admin.register(Tier)
class TierAdmin(ProgramScopedAdmin):
    form = TierForm
    list_display = ["name", "rank", "threshold", "earn_multiplier", "members", "program"]
    list_filter = [ManagedProgramFilter]
    list_select_related = ["program"]
    ordering = ["program__name", "rank"]
    fieldsets = [
        (None, {"fields": ["program", "name", "rank"]}),
        (
            "Qualification and earning",
            {
                "fields": ["threshold", "earn_multiplier"],
                "description": "Members reach the tier as soon as a purchase brings their metric to the threshold; "
                "a changed threshold counts from their next purchase or review.",
            },
        ),
        ("For members", {"fields": ["benefits"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        holders = Account.objects.filter(tier=OuterRef("pk")).order_by().values("tier").annotate(n=Count("pk"))
        return super().get_queryset(request).annotate(member_count=Coalesce(Subquery(holders.values("n")), 0))

    @admin.display(description="Members", ordering="member_count")
    def members(self, tier: "WithAnnotations[Tier, MemberCount]") -> int:
        return tier.member_count

    def get_form(self, request: HttpRequest, obj: Tier | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "threshold" in form.base_fields:
            program = obj.program
            form.base_fields["threshold"].help_text = (
                f"{program} counts {program.get_tier_metric_display().lower()} over "
                f"{program.get_tier_window_display().lower()}."
            )
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Tier | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "program"] if obj is not None else readonly

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one tier at a time, with the in-use check below
        return actions

    def save_model(self, request: HttpRequest, obj: Tier, form: forms.ModelForm, change: bool) -> None:
        tier_save(tier=obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        tier = self.get_object(request, unquote(object_id))
        if tier is not None and self.has_delete_permission(request, tier):
            reason = tier_in_use(tier)
            if reason:
                return self._refuse_delete(request, tier, reason)
            try:
                return super().delete_view(request, object_id, extra_context)
            except ProtectedError:  # a member reached the tier meanwhile
                return self._refuse_delete(request, tier, "members hold it now.")
        return super().delete_view(request, object_id, extra_context)

    def _refuse_delete(self, request: HttpRequest, tier: Tier, reason: str) -> HttpResponse:
        self.message_user(request, f"“{tier}” cannot be deleted: {reason}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:loyalty_tier_change", args=[tier.pk]))

    def delete_model(self, request: HttpRequest, obj: Tier) -> None:
        tier_delete(tier=obj)
