"""The points part of the admin: balances and ledger on the member page, manual
adjustments, and a strictly read-only view of ledger entries and lots.

The ledger is append-only (DESIGN.md section 3): nothing here adds, changes or
deletes an entry, a lot or an allocation. A correction is a new adjustment,
posted through `ledger_adjust` with who and why.
"""

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from members.admin import ManagedProgramFilter, MemberAdmin, ProgramScopedAdmin, done_with, member_search_q, plural
from members.exceptions import DomainError, IdempotencyKeyReused
from members.models import Member
from members.services import format_card

from .exceptions import InsufficientPoints
from .models import Account, Allocation, Entry, Lot
from .selectors import ledger_entries_for_member, member_balances
from .services.enrollment import member_enroll
from .services.ledger import MAX_POINTS_PER_ENTRY, ledger_adjust

LEDGER_ENTRIES_ON_MEMBER_PAGE = 50


# --- Members: balances, ledger and adjustments ------------------------------------


class AdjustPointsForm(forms.Form):
    points = forms.IntegerField(
        min_value=-MAX_POINTS_PER_ENTRY,
        max_value=MAX_POINTS_PER_ENTRY,
        help_text="A positive number adds points, a negative one removes them, e.g. 500 or -200.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Kept on the ledger with your name and the time, e.g. “Complaint 1234: goodwill”.",
    )
    allow_debt = forms.BooleanField(
        required=False,
        label="Allow debt",
        help_text="For removals only. Ticked: if the member has fewer points available, what is missing becomes "
        "debt, paid off by their next points. Not ticked: such a removal is refused.",
    )
    # One random token per form: submitting the same form twice posts once (the ledger's idempotency key).
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def clean_points(self) -> int:
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError("Enter a number of points other than 0.")
        return points


def _account(member: Member) -> Account:
    try:
        return member.account
    except Account.DoesNotExist:  # nothing posted yet
        return Account(member=member, program_id=member.program_id)


class DebtFilter(admin.SimpleListFilter):
    title = "debt"
    parameter_name = "debt"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Has debt"), ("no", "No debt")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(account__debt__gt=0)
        if self.value() == "no":
            return queryset.exclude(account__debt__gt=0)
        return queryset


class LedgerMemberAdmin(MemberAdmin):
    list_display = ["card_number", "name", "available", "pending", "debt", "status", "email", "program"]
    list_filter = [*MemberAdmin.list_filter, DebtFilter]
    list_select_related = [*MemberAdmin.list_select_related, "account"]
    readonly_fields = [*MemberAdmin.readonly_fields, "balances"]
    actions = ["adjust_points", *MemberAdmin.actions]
    object_actions = ("adjust_points", *MemberAdmin.object_actions)
    object_action_labels = {**MemberAdmin.object_action_labels, "adjust_points": "Adjust points"}
    change_form_template = "admin/loyalty/member_change_form.html"

    @admin.display(description="Available", ordering="account__available")
    def available(self, member: Member) -> int:
        return _account(member).available

    @admin.display(description="Pending", ordering="account__pending")
    def pending(self, member: Member) -> int:
        return _account(member).pending

    @admin.display(description="Debt", ordering="account__debt")
    def debt(self, member: Member) -> int:
        return _account(member).debt

    @admin.display(description="Balances")
    def balances(self, member: Member) -> str:
        return render_to_string("admin/loyalty/balances.html", {"balances": member_balances(member=member)})

    def get_fieldsets(self, request: HttpRequest, obj: Member | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        return [fieldsets[0], ("Points", {"fields": ["balances"]}), *fieldsets[1:]]

    def create_member(self, **fields: Any) -> Member:
        return member_enroll(**fields)  # the member and their points account

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            entries = ledger_entries_for_member(member=obj).select_related("actor")
            can_view_entries = self.admin_site.get_model_admin(Entry).has_view_permission(request)
            changelist = reverse("admin:loyalty_entry_changelist", current_app=self.admin_site.name)
            context.update(
                ledger_entries=list(entries[:LEDGER_ENTRIES_ON_MEMBER_PAGE]),
                ledger_limit=LEDGER_ENTRIES_ON_MEMBER_PAGE,
                can_view_entries=can_view_entries,
                ledger_changelist_url=f"{changelist}?member__id__exact={obj.pk}" if can_view_entries else "",
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_adjust_points_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.adjust_points")

    @admin.action(description="Adjust points…", permissions=["adjust_points"])
    def adjust_points(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        bound = request.POST.get("post") == "yes"
        form = AdjustPointsForm(request.POST if bound else None, initial={"token": uuid.uuid4().hex})
        if not (bound and form.is_valid()):
            intro = (
                "Add or remove points by hand, e.g. as a goodwill gesture or to correct a mistake. "
                "The adjustment is recorded with your name, the time and the reason."
            )
            return self.action_page(
                request,
                queryset.select_related("account"),
                action="adjust_points",
                title="Adjust points",
                intro=intro,
                button="Adjust points",
                form=form,
                template="admin/loyalty/adjust_points.html",
            )
        self._adjust(request, queryset, **form.cleaned_data)
        return self.after_action(request, queryset)

    def _adjust(
        self, request: HttpRequest, queryset: QuerySet, *, points: int, reason: str, allow_debt: bool, token: str
    ) -> None:
        """One transaction per member (as the ledger service runs it): an error on one
        member is reported and does not undo the others."""
        posted = []
        for member in queryset.select_related("program"):
            try:
                entry = ledger_adjust(
                    member=member,
                    points=points,
                    reason=reason,
                    actor=request.user,
                    allow_debt=allow_debt,
                    key=f"admin-adjust:{token}:{member.pk}",
                )
            except IdempotencyKeyReused:
                self.message_user(
                    request,
                    f"{member}: this form was already submitted with other values. Start a new adjustment.",
                    messages.ERROR,
                )
            except DomainError as exc:
                hint = (
                    " Tick “Allow debt” to record the shortfall as debt." if isinstance(exc, InsufficientPoints) else ""
                )
                self.message_user(request, f"{member}: nothing changed. {exc.detail}{hint}", messages.ERROR)
            else:
                if getattr(entry, "replayed", False):
                    self.message_user(request, f"{member}: this adjustment was already posted.", messages.WARNING)
                else:
                    posted.append(member)
        if posted:
            verb = f"Added {plural(points, 'point')} to" if points > 0 else f"Removed {plural(-points, 'point')} from"
            self.message_user(request, f"{verb} {done_with(posted, 'member')}.", messages.SUCCESS)


admin.site.unregister(Member)
admin.site.register(Member, LedgerMemberAdmin)


# --- Ledger entries and lots (read-only) ------------------------------------------------


class ReadOnlyAdminMixin:
    """Viewing only: the ledger is append-only, corrections are new adjustments."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
    fields = ["lot", "lot_occurred_at", "lot_expires_at", "amount", "created_at"]
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
    fields = ["entry", "entry_kind", "amount", "created_at"]
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
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
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
    fields = [
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
    ]
    readonly_fields = fields
    inlines = [LotUsesInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("program", "member", "entry")

    def has_view_permission(self, request: HttpRequest, obj: Lot | None = None) -> bool:
        # Lots are part of the ledger: whoever may read entries may read them.
        return super().has_view_permission(request, obj) or request.user.has_perm("loyalty.view_entry")
