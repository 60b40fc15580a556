"""NPS answers (read-only) and acquisition costs (entered by managers) in the admin.

Answers are written by `analytics.services.nps.nps_record` (the member app, the integration API) and the
import; a manager reads them, filters by promoters, passives and detractors, and follows up. Acquisition
costs per channel and period are what CLV:CAC divides by; managers enter them here.
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from analytics.models import AcquisitionCost, NpsAnswer
from analytics.nps import PASSIVE_MIN, PROMOTER_MIN
from loyalty.admin.purchases import ProgramRowsAdmin
from members.admin import ManagedProgramFilter, ProgramScopedAdmin

COMMENT_PREVIEW_LENGTH = 80


class NpsGroupFilter(admin.SimpleListFilter):
    title = "group"
    parameter_name = "group"
    ranges = {
        "promoters": (PROMOTER_MIN, 10),
        "passives": (PASSIVE_MIN, PROMOTER_MIN - 1),
        "detractors": (0, PASSIVE_MIN - 1),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("promoters", f"Promoters ({PROMOTER_MIN}–10)"),
            ("passives", f"Passives ({PASSIVE_MIN}–{PROMOTER_MIN - 1})"),
            ("detractors", f"Detractors (0–{PASSIVE_MIN - 1})"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value not in self.ranges:
            return queryset
        low, high = self.ranges[value]
        return queryset.filter(score__gte=low, score__lte=high)


class CommentFilter(admin.SimpleListFilter):
    title = "comment"
    parameter_name = "commented"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "With a comment"), ("no", "Without")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(comment="")
        if self.value() == "no":
            return queryset.filter(comment="")
        return queryset


@admin.register(NpsAnswer)
class NpsAnswerAdmin(ProgramRowsAdmin):
    list_display = ["answered_at", "member", "card", "score", "group", "source", "comment_preview", "program"]
    list_display_links = ["answered_at"]
    list_filter = [
        NpsGroupFilter,
        "score",
        "source",
        CommentFilter,
        ("answered_at", admin.DateFieldListFilter),
        ManagedProgramFilter,
    ]
    list_select_related = ["member", "program"]
    search_help_text = "The member's card (with or without dashes), id or external id."
    own_external_id = ()
    date_hierarchy = "answered_at"
    fields = ("answered_at", "program", "member", "score", "group", "source", "comment")
    readonly_fields = fields

    @admin.display(description="Group")
    def group(self, answer: NpsAnswer) -> str:
        if answer.score >= PROMOTER_MIN:
            return "Promoter"
        return "Passive" if answer.score >= PASSIVE_MIN else "Detractor"

    @admin.display(description="Comment")
    def comment_preview(self, answer: NpsAnswer) -> str:
        text = answer.comment
        return text if len(text) <= COMMENT_PREVIEW_LENGTH else text[: COMMENT_PREVIEW_LENGTH - 1] + "…"


@admin.register(AcquisitionCost)
class AcquisitionCostAdmin(ProgramScopedAdmin):
    list_display = ["channel", "period_start", "period_end", "cost", "currency", "note", "program"]
    list_filter = ["channel", ("period_start", admin.DateFieldListFilter), ManagedProgramFilter]
    list_select_related = ["program"]
    search_fields = ["channel", "note"]
    fields = ["program", "channel", "period_start", "period_end", "cost", "note"]
    ordering = ["program", "channel", "-period_start"]

    @admin.display(description="Currency")
    def currency(self, cost: AcquisitionCost) -> str:
        return cost.program.currency
