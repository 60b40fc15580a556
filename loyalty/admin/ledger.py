"""Ledger entries and lots in the admin: strictly read-only.

The ledger is append-only (DESIGN.md section 3): nothing here adds, changes or
deletes an entry, a lot or an allocation. A correction is a new adjustment,
posted through `ledger_adjust` with who and why (see `loyalty.admin.members`).
"""

from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from loyalty.models import Allocation, Entry, Lot
from members.admin import ManagedProgramFilter, ProgramScopedAdmin, member_search_q
from members.admin.base import ReadOnlyAdminMixin
from members.identifiers import format_card


class LedgerViewInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Allocation
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("loyalty.view_entry")


class ConsumedLotsInline(LedgerViewInline):
    """On a debit: which lots it consumed, and how much of each."""

    fk_name = "entry"
    verbose_name = "lot consumed"
    verbose_name_plural = "lots consumed"
    fields = ("lot", "lot_occurred_at", "lot_expires_at", "amount", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("lot").order_by("pk")

    @admin.display(description="Lot earned")
    def lot_occurred_at(self, allocation: Allocation) -> str:
        return display_for_value(allocation.lot.occurred_at, "—")

    @admin.display(description="Lot expires")
    def lot_expires_at(self, allocation: Allocation) -> str:
        return display_for_value(allocation.lot.expires_at, "never")


class LotUsesInline(LedgerViewInline):
    """On a lot: the debits that consumed it."""

    fk_name = "lot"
    verbose_name = "use"
    verbose_name_plural = "used by"
    fields = ("entry", "entry_kind", "amount", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("entry").order_by("pk")

    @admin.display(description="Kind")
    def entry_kind(self, allocation: Allocation) -> str:
        return allocation.entry.get_kind_display()


class LedgerAdmin(ReadOnlyAdminMixin, ProgramScopedAdmin):
    list_filter = [ManagedProgramFilter]
    search_fields = ["=member__card"]  # replaced by get_search_results; declared so the search box shows
    search_help_text = "Member id, card number (with or without dashes) or external id."
    list_per_page = 50
    show_full_result_count = False  # no count of the whole table on every page

    @admin.display(description="Card", ordering="member__card")
    def card(self, row: Entry | Lot) -> str:
        return format_html('<span style="white-space: nowrap">{}</span>', format_card(row.member.card))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        q = member_search_q(search_term, prefix="member__")
        return (queryset.filter(q) if q is not None else queryset), False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


@admin.register(Entry)
class EntryAdmin(LedgerAdmin):
    list_display = ["id", "occurred_at", "member", "card", "kind", "amount", "uncovered", "actor", "reason", "program"]
    list_display_links = ["id", "occurred_at"]
    list_filter = ["kind", *LedgerAdmin.list_filter]
    list_select_related = ["member", "program", "actor"]
    fieldsets = [
        (None, {"fields": ["id", "program", "member", "kind", "amount", "uncovered", "occurred_at", "created_at"]}),
        ("Who and why", {"fields": ["actor", "reason", "key", "counterpart", "details"]}),
        ("Lot created", {"fields": ["credit_lot"]}),
    ]
    # The fieldsets name single fields, never a row of them.
    readonly_fields = [field for _, options in fieldsets for field in cast(list[str], options["fields"])]
    inlines = [ConsumedLotsInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("program", "member", "actor", "counterpart", "lot")

    def get_fieldsets(self, request: HttpRequest, obj: Entry | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is None or obj.amount > 0 else fieldsets[:2]

    def get_inlines(self, request: HttpRequest, obj: Entry | None = None) -> list[Any]:
        return [] if obj is not None and obj.amount > 0 else self.inlines

    @admin.display(description="Lot")
    def credit_lot(self, entry: Entry) -> str:
        lot = getattr(entry, "lot", None)
        if lot is None:
            return "—"
        url = reverse("admin:loyalty_lot_change", args=[lot.pk], current_app=self.admin_site.name)
        expiry = f", expires {lot.expires_at:%Y-%m-%d}" if lot.expires_at else ", never expires"
        pending = f", pending until {lot.available_at:%Y-%m-%d}" if lot.pending else ""
        return format_html(
            '<a href="{}">Lot #{}</a>: {} of {} points left{}{}',
            url,
            lot.pk,
            lot.remaining,
            lot.amount,
            pending,
            expiry,
        )


@admin.register(Lot)
class LotAdmin(LedgerAdmin):
    list_display = ["id", "occurred_at", "member", "card", "amount", "remaining", "pending", "expires_at", "program"]
    list_display_links = ["id", "occurred_at"]
    list_filter = ["pending", *LedgerAdmin.list_filter]
    list_select_related = ["member", "program"]
    ordering = ["-occurred_at", "-id"]
    fields = (
        "id",
        "program",
        "member",
        "entry",
        "amount",
        "remaining",
        "pending",
        "occurred_at",
        "available_at",
        "expires_at",
        "warned_at",
    )
    readonly_fields = fields
    inlines = [LotUsesInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("program", "member", "entry")

    def has_view_permission(self, request: HttpRequest, obj: Lot | None = None) -> bool:
        # Lots are part of the ledger: whoever may read entries may read them.
        return super().has_view_permission(request, obj) or request.user.has_perm("loyalty.view_entry")
