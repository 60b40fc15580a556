"""Rewards and vouchers in the admin, scoped to the programs the manager runs.

Vouchers are read-only: they are issued by redemptions and campaigns and
used at the tills. The one thing a manager does to one is cancel it, which
goes through `voucher_cancel` (points back to their lots, stock restored).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path

from loyalty.models import MAX_POINTS_PER_ENTRY, Tier
from members.access import managed_programs
from members.admin import ManagedProgramFilter, ObjectActionsAdmin, ProgramScopedAdmin, plural
from members.admin.base import ReadOnlyAdminMixin
from members.exceptions import DomainError
from rewards.admin_attainability import attainability_view
from rewards.codes import normalize_code
from rewards.models import Reward, Voucher, VoucherStatus
from rewards.selectors import campaign_members
from rewards.services import campaign_issue, reward_save, voucher_cancel


class CampaignForm(forms.Form):
    campaign = forms.CharField(max_length=100, help_text="Kept on every voucher, e.g. “Spring 2026 win-back”.")
    valid_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, help_text="Days the vouchers are valid; the reward's when empty."
    )


class ScopeListField(forms.CharField):
    """A scope's SKUs or categories as one comma-separated line; stored as a list (the model cleans it)."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]  # a list, where CharField gives text
        return [item.strip() for item in (super().to_python(value) or "").split(",") if item.strip()]

    def has_changed(self, initial: Any, data: Any) -> bool:
        return list(initial or []) != self.to_python(data)


class RewardForm(forms.ModelForm):
    scope_skus = ScopeListField(
        label="SKUs in scope",
        required=False,
        help_text="SKUs the discount applies to, separated by commas. Empty (with no categories): the whole basket.",
    )
    scope_categories = ScopeListField(
        label="Categories in scope",
        required=False,
        help_text="Categories the discount applies to, separated by commas.",
    )

    class Meta:
        model = Reward
        fields = ["scope_skus", "scope_categories"]  # the rest as the admin's fieldsets name them
        labels = {"sku": "SKU"}
        help_texts = {"points_cost": f"Points the member spends on it; at most {MAX_POINTS_PER_ENTRY:,}."}


@admin.register(Reward)
class RewardAdmin(ObjectActionsAdmin, ProgramScopedAdmin):
    form = RewardForm
    list_display = ["name", "kind", "value", "points_cost", "min_tier", "stock", "is_active", "program"]
    list_filter = [ManagedProgramFilter, "kind", "is_active"]
    list_select_related = ["program", "min_tier"]
    search_fields = ["name", "sku"]
    fieldsets = [
        (None, {"fields": ["program", "name", "description", "is_active"]}),
        ("What the member gets", {"fields": ["kind", "value", "sku", "voucher_valid_days"]}),
        ("Where the voucher applies", {"fields": ["scope_skus", "scope_categories", "min_basket"]}),
        (
            "Who may redeem it, and how often",
            {"fields": ["points_cost", "min_tier", "active_from", "active_until", "stock", "per_member_limit"]},
        ),
    ]

    change_list_template = "admin/rewards/reward_change_list.html"

    def get_urls(self) -> list[Any]:
        report = path(
            "attainability/",
            self.admin_site.admin_view(lambda request: attainability_view(self, request)),
            name="rewards_reward_attainability",
        )
        return [report, *super().get_urls()]

    def get_readonly_fields(self, request: HttpRequest, obj: Reward | None = None) -> list[str]:
        # Vouchers and the minimum tier hang on the program: it is chosen once.
        return [*super().get_readonly_fields(request, obj), *(["program"] if obj is not None else [])]

    def save_model(self, request: HttpRequest, obj: Reward, form: Any, change: bool) -> None:
        # Through the service, so a stale form never writes back a stock that redemptions moved.
        reward_save(reward=obj, fields=form.changed_data if change else None)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Tier:
            kwargs["queryset"] = Tier.objects.filter(program__in=managed_programs(request.user)).select_related(
                "program"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    actions = ["issue_campaign"]

    def has_issue_campaign_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rewards.add_voucher")

    @admin.action(description="Issue as campaign to all active members…", permissions=["issue_campaign"])
    def issue_campaign(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        bound = request.POST.get("post") == "yes"
        form = CampaignForm(request.POST if bound else None)
        if not (bound and form.is_valid()):
            intro = (
                "Every active member of the reward's program gets one voucher of each selected reward, without "
                "spending points. Name the campaign: the name is kept on every voucher."
            )
            return self.action_page(
                request,
                queryset,
                action="issue_campaign",
                title="Issue a campaign",
                intro=intro,
                button="Issue vouchers",
                form=form,
                template="admin/rewards/issue_campaign.html",
            )
        for reward in queryset.select_related("program"):
            issued = campaign_issue(
                program=reward.program,
                reward=reward,
                members_queryset=campaign_members(program=reward.program),
                campaign=form.cleaned_data["campaign"],
                valid_days=form.cleaned_data["valid_days"],
                actor=request.user,
            )
            self.message_user(request, f"{reward}: issued {plural(issued, 'voucher')}.", messages.SUCCESS)
        return self.after_action(request, queryset)


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdminMixin, ProgramScopedAdmin):
    list_display = ["display_code", "kind", "value", "status", "member", "reward", "expires", "program"]
    list_filter = [ManagedProgramFilter, "status", "kind"]
    list_select_related = ["program", "member", "reward"]
    search_fields = ["=code"]
    actions = ["cancel_vouchers"]
    readonly_fields = (
        "display_code",
        "program",
        "member",
        "reward",
        "campaign",
        "kind",
        "value",
        "min_basket",
        "scope_skus",
        "scope_categories",
        "status",
        "issued_at",
        "expires_at",
        "points_cost",
        "redemption_entry",
        "refund_entry",
        "redeemed_at",
        "redeemed_reference",
        "redeemed_discount",
        "cancelled_at",
        "cancelled_by",
    )
    fields = readonly_fields

    @admin.display(description="code", ordering="code")
    def display_code(self, voucher: Voucher) -> str:
        return voucher.display_code

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, voucher: Voucher) -> str:
        return f"{voucher.expires_at.astimezone(voucher.program.tz):%Y-%m-%d %H:%M}"  # the program's time zone

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """A code as printed or typed (dashes, lower case, O for 0) finds its voucher."""
        if not search_term.strip():
            return queryset, False
        return queryset.filter(code=normalize_code(search_term)), False

    def has_cancel_voucher_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rewards.cancel_voucher")

    @admin.action(description="Cancel voucher (give the points back)", permissions=["cancel_voucher"])
    def cancel_vouchers(self, request: HttpRequest, queryset: QuerySet) -> None:
        cancelled, refused = [], []
        for voucher in queryset.filter(status=VoucherStatus.ISSUED).select_related("member"):
            try:
                voucher_cancel(voucher=voucher, actor=request.user)
                cancelled.append(voucher)
            except DomainError as error:
                refused.append(f"{voucher.display_code}: {error.detail}")
        skipped = queryset.exclude(status=VoucherStatus.ISSUED).count()
        if cancelled:
            self.message_user(request, f"Cancelled {plural(len(cancelled), 'voucher')}; points given back.")
        if refused or skipped:
            detail = "; ".join(refused[:10])
            note = f"{plural(len(refused) + skipped, 'voucher')} not cancelled (only issued, unused ones can be)."
            self.message_user(request, f"{note} {detail}".strip(), level=messages.WARNING)
