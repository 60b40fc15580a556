"""Programs: their settings, and who manages them (the operator's decision)."""

import zoneinfo
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms import ChoiceField, ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from members.access import managed_programs
from members.admin.base import MemberCount, adopt
from members.models import Program
from members.services.programs import program_create, program_settings_save

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

PROGRAM_HELP = {
    "name": "Shown to managers and, in messages, to members.",
    "slug": "Short identifier used by scripts and integrations (letters, digits, dashes). Cannot change later.",
    "is_active": "Untick to stop using the program without losing its members and history.",
    "timezone": "Decides when a day, a month and a year end for expiry and reports.",
    "points_name": "What members see the points called, e.g. 'points', 'stars', 'miles'.",
    "expiry_policy": "When earned points expire. A change applies to points earned from then on.",
    "expiry_period": "N for 'N days after earning' and 'end of the Nth month after earning'; unused otherwise.",
    "tier_metric": "What counts towards a tier.",
    "tier_window": "Over which period it is counted.",
    "tier_window_days": "Length of the rolling window; unused for the calendar year.",
    "tier_downgrade": "Where a member who no longer qualifies at the review goes.",
}


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


TIER_FIELDS = (
    "tier_metric",
    "tier_window",
    "tier_window_days",
    "tier_validity_days",
    "tier_grace_days",
    "tier_downgrade",
)


ANALYTICS_FIELDS = ("margin_rate", "inactive_days", "clv_horizon_months", "clv_discount_rate", "clv_time_unit")


class ProgramForm(ModelForm):
    class Meta:
        model = Program
        fields = [
            "name",
            "slug",
            "is_active",
            "currency",
            "point_value",
            "points_name",
            "timezone",
            "pending_days",
            "expiry_policy",
            "expiry_period",
            "expiry_warning_days",
            *TIER_FIELDS,
            "attainability_window_days",
            "attainability_target_days",
            *ANALYTICS_FIELDS,
            "managers",
        ]

    def clean_currency(self) -> str:
        return (self.cleaned_data.get("currency") or "").strip().upper()


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    form = ProgramForm
    list_display = ["name", "slug", "currency", "points_name", "member_count", "is_active"]
    list_filter = ["is_active", "currency"]
    search_fields = ["name", "slug"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        (
            "Points and money",
            {
                "fields": ["currency", "point_value", "points_name", "timezone"],
                "description": "The program's currency and what one point is worth in it (for the liability report).",
            },
        ),
        (
            "Return window",
            {
                "fields": ["pending_days"],
                "description": "Points from a purchase stay pending (not spendable) while it can be returned.",
            },
        ),
        ("Expiry", {"fields": ["expiry_policy", "expiry_period", "expiry_warning_days"]}),
        (
            "Tiers",
            {
                "fields": TIER_FIELDS,
                "description": "How members qualify for tiers and when a tier is reviewed.",
            },
        ),
        (
            "Reward attainability",
            {
                "fields": ["attainability_window_days", "attainability_target_days"],
                "description": "How members' earning pace is measured, and when the attainability report warns "
                "that rewards are out of reach.",
            },
        ),
        (
            "Analytics",
            {
                "fields": ANALYTICS_FIELDS,
                "description": "Margin and horizon of customer lifetime value, and when a member counts as inactive.",
            },
        ),
        ("Managers", {"fields": ["managers"], "description": "Staff users who manage this program."}),
        ("Record", {"fields": ["created_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["created_at"]
    filter_horizontal = ["managers"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        programs = super().get_queryset(request).filter(pk__in=managed_programs(request.user))
        return programs.annotate(member_count=Count("members"))

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, program: "WithAnnotations[Program, MemberCount]") -> str:
        url = reverse("admin:members_member_changelist", current_app=self.admin_site.name)
        return format_html('<a href="{}?program={}">{}</a>', url, program.pk, program.member_count)

    def get_fieldsets(self, request: HttpRequest, obj: Program | None = None) -> Any:
        # Who manages a program is the operator's decision, not the managers' own.
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if request.user.is_superuser else [fs for fs in fieldsets if fs[0] != "Managers"]

    def get_readonly_fields(self, request: HttpRequest, obj: Program | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("slug")
            if obj.members.exists():  # amounts already recorded are in this currency
                readonly.append("currency")
        return readonly

    def get_prepopulated_fields(self, request: HttpRequest, obj: Program | None = None) -> dict[str, Any]:
        return {"slug": ("name",)} if obj is None else {}

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "timezone":
            return ChoiceField(choices=timezone_choices, initial="UTC", help_text=PROGRAM_HELP["timezone"])
        if db_field.name == "managers":
            kwargs["queryset"] = db_field.related_model.objects.filter(is_staff=True)
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in PROGRAM_HELP:
            field.help_text = PROGRAM_HELP[db_field.name]
        return field

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser  # a manager could not see a program they created

    def has_delete_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: Program, form: ModelForm, change: bool) -> None:
        if change:  # no service edits settings; managers are saved with the form's relations
            if fields := [name for name in form.changed_data if name != "managers"]:
                program_settings_save(program=obj, fields=fields)
            return
        values = {name: value for name, value in form.cleaned_data.items() if name != "managers"}
        adopt(obj, program_create(**values))  # managers are saved with the form's relations
