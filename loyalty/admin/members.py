"""The member page's loyalty part: balances and the latest ledger entries, the tier
(current tier, review date, pin, latest history), manual point adjustments and
pinning a tier. Each action calls one service: `ledger_adjust`, `tier_pin`.
"""

import uuid
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from loyalty.exceptions import InsufficientPoints
from loyalty.models import MAX_POINTS_PER_ENTRY, Account, Entry, Tier, TierHistory
from loyalty.selectors import ledger_entries_for_member, member_balances, member_tier_summary
from loyalty.services.enrollment import member_enroll
from loyalty.services.ledger import ledger_adjust
from loyalty.services.tiers import tier_pin
from members.admin import MemberAdmin, done_with, plural
from members.exceptions import DomainError, IdempotencyKeyReused
from members.models import Member

LEDGER_ENTRIES_ON_MEMBER_PAGE = 50
TIER_HISTORY_ON_MEMBER_PAGE = 10

# --- Forms of the actions -------------------------------------------------------------------------


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


class PinTierForm(forms.Form):
    tier = forms.ModelChoiceField(
        queryset=Tier.objects.none(),
        help_text="The member keeps this tier until the day below, whatever they earn or return meanwhile.",
    )
    until = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day of the pin, in the program's time zone. After it the tier is reviewed as usual.",
    )
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Kept in the tier history with your name, e.g. “Compensation for complaint 1234”.",
    )

    def __init__(self, *args: Any, program: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.program = program
        self.fields["tier"].queryset = Tier.objects.filter(program=program).order_by("rank")

    def clean_until(self) -> Any:
        until = self.cleaned_data["until"]
        if until < timezone.now().astimezone(self.program.tz).date():
            raise forms.ValidationError("Choose today or a later day.")
        return until

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("Say why the tier is pinned.")
        return note

    def pinned_until(self) -> datetime:
        """The end of the chosen day (midnight after it) in the program's time zone."""
        return datetime.combine(self.cleaned_data["until"] + timedelta(days=1), time.min, tzinfo=self.program.tz)


# --- The member admin -----------------------------------------------------------------------------


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


class LoyaltyMemberAdmin(MemberAdmin):
    list_display = ["card_number", "name", "available", "pending", "debt", "status", "email", "program"]
    list_filter = [*MemberAdmin.list_filter, DebtFilter]
    list_select_related = [*MemberAdmin.list_select_related, "account"]
    readonly_fields = [*MemberAdmin.readonly_fields, "balances", "tier_status"]
    actions = ["adjust_points", "pin_tier", *MemberAdmin.actions]
    object_actions = ("adjust_points", "pin_tier", *MemberAdmin.object_actions)
    object_action_labels = {
        **MemberAdmin.object_action_labels,
        "adjust_points": "Adjust points",
        "pin_tier": "Pin tier",
    }
    change_form_template = "admin/loyalty/member_tier_change_form.html"

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

    @admin.display(description="Tier")
    def tier_status(self, member: Member) -> str:
        context = {
            "summary": member_tier_summary(member=member),
            "account": _account(member),
            "program": member.program,
            "now": timezone.now(),
        }
        return render_to_string("admin/loyalty/tier_status.html", context)

    def get_fieldsets(self, request: HttpRequest, obj: Member | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        return [
            fieldsets[0],
            ("Points", {"fields": ["balances"]}),
            ("Tier", {"fields": ["tier_status"]}),
            *fieldsets[1:],
        ]

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
                **self._tier_history_context(request, obj),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tier_history_context(self, request: HttpRequest, member: Member) -> dict[str, Any]:
        history = TierHistory.objects.filter(member=member).select_related("from_tier", "to_tier", "actor")
        can_view = self.admin_site.get_model_admin(TierHistory).has_view_permission(request)
        changelist = reverse("admin:loyalty_tierhistory_changelist", current_app=self.admin_site.name)
        return {
            "tier_history": list(history[:TIER_HISTORY_ON_MEMBER_PAGE]),
            "tier_history_limit": TIER_HISTORY_ON_MEMBER_PAGE,
            "tier_history_changelist_url": f"{changelist}?member__id__exact={member.pk}" if can_view else "",
        }

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

    def has_pin_tier_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.change_account")  # the tier lives on the member's account

    @admin.action(description="Pin a tier…", permissions=["pin_tier"])
    def pin_tier(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        programs = list(queryset.order_by().values_list("program", flat=True).distinct()[:2])
        if len(programs) != 1:
            self.message_user(
                request, "Pin members of one program at a time: tiers belong to a program.", messages.ERROR
            )
            return None
        program = queryset.select_related("program").first().program
        bound = request.POST.get("post") == "yes"
        form = PinTierForm(request.POST if bound else None, program=program)
        if not form.fields["tier"].queryset.exists():
            self.message_user(request, f"{program} has no tiers yet: add them under Tiers first.", messages.ERROR)
            return None
        if not (bound and form.is_valid()):
            intro = (
                "Keep the selected members in a tier until a date, whatever their purchases and returns say, "
                "e.g. as a goodwill gesture or for a status match. The pin is recorded in the tier history with "
                "your name and the note; after the last day the tier is reviewed as usual."
            )
            return self.action_page(
                request,
                queryset.select_related("account__tier"),
                action="pin_tier",
                title="Pin a tier",
                intro=intro,
                button="Pin the tier",
                form=form,
                template="admin/loyalty/pin_tier.html",
            )
        tier, until, note = form.cleaned_data["tier"], form.cleaned_data["until"], form.cleaned_data["note"]
        pinned = []
        for member in queryset.select_related("program"):
            tier_pin(member=member, tier=tier, until=form.pinned_until(), actor=request.user, note=note)
            pinned.append(member)
        self.message_user(
            request, f"Pinned {done_with(pinned, 'member')} to {tier} until {until:%Y-%m-%d}.", messages.SUCCESS
        )
        return self.after_action(request, queryset)


admin.site.unregister(Member)
admin.site.register(Member, LoyaltyMemberAdmin)
