"""Purchases, returns and tier history in the admin: read-only.

These rows are written by the till's calls (`purchase_record`, `return_record`)
and by tier changes; a manager reads them to answer "why did I get these
points?" and "why did my tier change?". Search takes the receipt's external id
or the member's card, id or external id.
"""

from typing import Any, cast

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from loyalty.models import Purchase, PurchaseLine, Return, TierHistory
from members.admin import ManagedProgramFilter, ProgramScopedAdmin, member_search_q
from members.admin.base import ReadOnlyAdminMixin
from members.identifiers import format_card


class PurchaseViewInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Lines and returns are part of the purchase: whoever may read purchases may read them.
        return request.user.has_perm("loyalty.view_purchase")


class PurchaseLineInline(PurchaseViewInline):
    model = PurchaseLine
    verbose_name = "line"
    verbose_name_plural = "lines"
    fields = ("sku", "category", "quantity", "unit_price", "amount", "eligible", "returned_quantity", "returned_amount")
    readonly_fields = fields


class PurchaseReturnInline(PurchaseViewInline):
    model = Return
    fk_name = "purchase"
    verbose_name_plural = "returns"
    fields = ("return_link", "occurred_at", "amount", "eligible_amount", "points_reversed", "returned_lines")
    readonly_fields = fields

    @admin.display(description="Return")
    def return_link(self, record: Return) -> str:
        url = reverse("admin:loyalty_return_change", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, record.external_id)

    @admin.display(description="Lines")
    def returned_lines(self, record: Return) -> str:
        return _lines_text(record.lines) or "amount only"


def _lines_text(lines: list[dict[str, Any]]) -> str:
    return ", ".join(f"{line.get('quantity') or ''} {line.get('sku')}: {line.get('amount')}".strip() for line in lines)


class ProgramRowsAdmin(ReadOnlyAdminMixin, ProgramScopedAdmin):
    """A read-only list of one program's rows, searched by external id or the member."""

    list_per_page = 50
    show_full_result_count = False  # no count of the whole table on every page
    search_fields = ["=external_id"]  # replaced by get_search_results; declared so the search box shows
    search_help_text = "External id, or the member's card (with or without dashes), id or external id."
    own_external_id: tuple[str, ...] = ("external_id",)

    @admin.display(description="Card", ordering="member__card")
    def card(self, row: Any) -> str:
        return format_html('<span style="white-space: nowrap">{}</span>', format_card(row.member.card))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        q = member_search_q(search_term, prefix="member__")
        if q is None:
            return queryset, False
        for field in self.own_external_id:
            q |= Q(**{field: search_term.strip()})
        return queryset.filter(q), False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


@admin.register(Purchase)
class PurchaseAdmin(ProgramRowsAdmin):
    list_display = [
        "external_id",
        "occurred_at",
        "member",
        "card",
        "store",
        "channel",
        "total",
        "points_awarded",
        "points_reversed",
        "program",
    ]
    list_display_links = ["external_id", "occurred_at"]
    list_filter = ["channel", "store", ("occurred_at", admin.DateFieldListFilter), ManagedProgramFilter]
    list_select_related = ["member", "program"]
    fieldsets = [
        (None, {"fields": ["external_id", "program", "member", "store", "channel", "occurred_at", "created_at"]}),
        ("Money", {"fields": ["currency", "total", "eligible_amount", "returned_total", "returned_eligible"]}),
        ("Points", {"fields": ["points_awarded", "awards_table", "points_reversed", "entry"]}),
    ]
    # The fieldsets name single fields, never a row of them.
    readonly_fields = [field for _, options in fieldsets for field in cast(list[str], options["fields"])]
    inlines = [PurchaseLineInline, PurchaseReturnInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("program", "member", "entry")

    @admin.display(description="Which rule gave how many points")
    def awards_table(self, purchase: Purchase) -> str:
        rows = [
            {
                "rule": award.get("rule"),
                "points": award.get("points"),
                # Rules are never deleted (PROTECT), so an award's rule id always links; the tier's award has none.
                "url": reverse("admin:loyalty_earningrule_change", args=[award["rule_id"]])
                if award.get("rule_id")
                else "",
            }
            for award in purchase.awards
        ]
        return render_to_string("admin/loyalty/awards.html", {"awards": rows, "total": purchase.points_awarded})


@admin.register(Return)
class ReturnAdmin(ProgramRowsAdmin):
    list_display = ["external_id", "occurred_at", "purchase", "member", "card", "amount", "points_reversed", "program"]
    list_display_links = ["external_id", "occurred_at"]
    list_filter = [("occurred_at", admin.DateFieldListFilter), ManagedProgramFilter]
    list_select_related = ["purchase", "member", "program"]
    search_help_text = "The return's or the purchase's external id, or the member's card, id or external id."
    own_external_id = ("external_id", "purchase__external_id")
    fields = (
        "external_id",
        "program",
        "member",
        "purchase",
        "occurred_at",
        "created_at",
        "amount",
        "eligible_amount",
        "points_reversed",
        "returned_lines",
        "entry",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("program", "member", "purchase", "entry")

    @admin.display(description="Returned lines")
    def returned_lines(self, record: Return) -> str:
        return _lines_text(record.lines) or "An amount, without lines"


@admin.register(TierHistory)
class TierHistoryAdmin(ProgramRowsAdmin):
    list_display = ["created_at", "member", "card", "from_tier", "to_tier", "reason", "metric_value", "actor", "note"]
    list_display_links = ["created_at"]
    list_filter = ["reason", ("created_at", admin.DateFieldListFilter), ManagedProgramFilter]
    list_select_related = ["member", "from_tier", "to_tier", "actor"]
    search_help_text = "The member's card (with or without dashes), id or external id."
    own_external_id = ()
    fields = ("created_at", "program", "member", "from_tier", "to_tier", "reason", "metric_value", "actor", "note")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("program", "member", "from_tier", "to_tier", "actor")
