"""Earning rules in the admin, for a program manager who is not a programmer.

Every write goes through `loyalty.services.rules` (`earning_rule_save`,
`earning_rule_deactivate`), which bumps the program's config version so every
process recompiles the rules on its next purchase. Rules are never deleted
(awards point at them): they are deactivated. "Test this rule" evaluates a
sample basket with the program's compiled rules and writes nothing.
"""

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from loyalty.models import Channel, EarningRule, Tier, split_list
from loyalty.rules import Line
from loyalty.selectors import rules_preview
from loyalty.services.rules import earning_rule_deactivate, earning_rule_save
from members.access import managed_programs
from members.admin import ManagedProgramFilter, ObjectActionsAdmin, ProgramScopedAdmin, member_search_q
from members.models import Member

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldsetSpec

# --- Earning rules: the form ----------------------------------------------------------------------

KIND_HELP = """
<p>The kind decides which fields matter; the others are hidden and ignored.</p>
<ul>
  <li><b>Base rate</b>: <i>rate</i> points per currency unit of the basket, rounded down, not counting the
    excluded SKUs and categories (gift cards, tobacco). Most programs have one.</li>
  <li><b>Multiplier</b>: multiplies the base-rate points of the lines with the chosen SKUs or categories (of every
    line when none is chosen), e.g. double points on books, in the e-shop or at weekends.</li>
  <li><b>Fixed bonus</b>: a fixed number of <i>points</i> when every condition holds, e.g. 100 points for a
    basket of 1000 or more, for the first purchase, or when the basket holds a given SKU.</li>
  <li><b>Event</b>: <i>points</i> when something happens outside a purchase: signup, birthday, referral,
    profile completed, NPS answer or a custom event your shop sends.</li>
</ul>
<p>After saving, “Test this rule” at the top of the page shows what a sample basket would earn.</p>
"""

BASKET_CONDITIONS = ["channels", "stores", "weekdays", "min_basket", "first_purchase", "nth_purchase"]
# The fields each kind uses; the change page hides the others (tiers, the window and the limits apply to all).
KIND_FIELDS = {
    "base_rate": ["rate", "excluded_skus", "excluded_categories", *BASKET_CONDITIONS],
    "multiplier": ["multiplier", "skus", "categories", "excluded_skus", "excluded_categories", *BASKET_CONDITIONS],
    "bonus": ["points", "skus", "categories", *BASKET_CONDITIONS],
    "event": ["event", "points"],
}
KIND_DEPENDENT = sorted({field for fields in KIND_FIELDS.values() for field in fields})

RULE_FIELDSETS: "_FieldsetSpec" = [
    ("What", {"fields": ["program", "name", "kind"], "description": KIND_HELP}),
    (
        "When it applies",
        {
            "fields": ["is_active", "active_from", "active_until", "priority", "stop_further"],
            "description": "Rules run one after another, lowest priority number first, within their active window.",
        },
    ),
    (
        "Conditions",
        {
            "fields": [
                "event",
                "skus",
                "categories",
                "excluded_skus",
                "excluded_categories",
                "channels",
                "stores",
                "weekdays",
                "tiers",
                "min_basket",
                "first_purchase",
                "nth_purchase",
            ],
            "description": "Every condition you fill in must hold; empty ones do not restrict the rule. "
            "Lists are separated by commas, e.g. <code>books, comics</code>.",
        },
    ),
    (
        "Points",
        {
            "fields": ["rate", "multiplier", "points"],
            "description": "A member's tier multiplier is applied on top of the points of all rules.",
        },
    ),
    (
        "Limits",
        {
            "fields": ["cap_per_purchase", "cap_per_member_day", "cap_per_member_month", "budget_total", "budget_used"],
            "description": "Empty means no limit. Days and months are counted in the program's time zone.",
        },
    ),
    ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
]

RULE_LABELS = {
    "is_active": "Active",
    "active_from": "Starts",
    "active_until": "Ends",
    "stop_further": "Stop further rules",
    "skus": "SKUs",
    "excluded_skus": "Excluded SKUs",
    "min_basket": "Minimum basket",
    "first_purchase": "First purchase only",
    "nth_purchase": "Only on purchase number",
    "cap_per_purchase": "Per purchase",
    "cap_per_member_day": "Per member and day",
    "cap_per_member_month": "Per member and month",
    "budget_total": "Total budget",
}

RULE_HELP = {
    "is_active": "Untick to switch the rule off; it keeps the points it gave. “Deactivate” does the same.",
    "active_from": "Leave empty to start at once.",
    "active_until": "The rule stops at this moment. Leave empty for no end.",
    "priority": "Lower numbers run first. Leave gaps (100, 200, …) to slot rules in later.",
    "stop_further": "When this rule applies, the rules after it do not run (e.g. a promotion replacing the base rate).",
    "event": "Event rules: signup, birthday, referral, profile_completed, nps_answer, or the name of a custom "
    "event your shop sends (lower case, e.g. app_review).",
    "skus": "Multiplier: the lines it multiplies. Fixed bonus: the basket must hold one of them. Empty: every line.",
    "categories": "As SKUs, by product category.",
    "excluded_skus": "Base rate and multiplier: lines that never earn, e.g. gift cards.",
    "excluded_categories": "Base rate and multiplier: categories that never earn, e.g. tobacco.",
    "channels": "Only purchases made here: pos (till), eshop, app, other. Empty: everywhere.",
    "stores": "Only purchases in these stores, by the store code the tills send. Empty: every store.",
    "weekdays": "Only on these days: 1 = Monday … 7 = Sunday, e.g. 6, 7 for weekends. Empty: every day.",
    "tiers": "Only members in one of these tiers. None ticked: every member.",
    "min_basket": "Only when the purchase total is at least this much, in the program's currency.",
    "first_purchase": "Only on the member's first purchase.",
    "nth_purchase": "Only on the member's n-th purchase, e.g. 10 for the tenth.",
    "rate": "Base rate: points per currency unit, rounded down. 0.1 = one point per 10; 1 = one point per unit.",
    "multiplier": "Multiplier: 2 = double points on the matching lines, 1.5 = half as many again.",
    "points": "Fixed bonus and event rules: points given each time.",
    "cap_per_purchase": "At most this many points from this rule on one purchase.",
    "cap_per_member_day": "At most this many points from this rule per member and day.",
    "cap_per_member_month": "At most this many points from this rule per member and calendar month.",
    "budget_total": "The rule stops giving points once it has given this many in all.",
}

SERVER_FIELDS = ["budget_used", "created_at", "updated_at"]  # shown, never edited
TEXT_LISTS = ["skus", "categories", "excluded_skus", "excluded_categories", "stores"]


class EarningRuleForm(forms.ModelForm):
    class Meta:
        model = EarningRule
        fields = [name for _, options in RULE_FIELDSETS for name in options["fields"] if name not in SERVER_FIELDS]
        labels = RULE_LABELS
        help_texts = RULE_HELP
        widgets = {name: forms.Textarea(attrs={"rows": 2, "cols": 60}) for name in TEXT_LISTS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A ModelMultipleChoiceField (None when the admin leaves it out), whose label is replaced per instance.
        tiers: Any = self.fields.get("tiers")
        if tiers is None:
            return
        if self.instance.program_id:  # the rule's own program's tiers only
            tiers.queryset = tiers.queryset.filter(program_id=self.instance.program_id)
            tiers.label_from_instance = lambda tier: tier.name
        else:
            tiers.label_from_instance = lambda tier: f"{tier.name} ({tier.program})"

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what super().clean() returned (typed: the stubs allow None)
        program = cleaned.get("program") or (self.instance.program if self.instance.program_id else None)
        foreign = [tier.name for tier in cleaned.get("tiers") or [] if program and tier.program_id != program.pk]
        if foreign:
            self.add_error("tiers", f"Not tiers of {program}: {', '.join(foreign)}.")
        budget = cleaned.get("budget_total")
        if budget is not None and budget < self.instance.budget_used:
            # The database refuses a budget below what was given; the service does not check it.
            self.add_error("budget_total", f"The rule has given {self.instance.budget_used} points already.")
        return cleaned


# --- Earning rules: the "Test this rule" form -----------------------------------------------------

CENT = Decimal("0.01")
MAX_PREVIEW_LINES = 500


def _line(number: int, row: str) -> Line:
    parts = [part.strip() for part in row.split(",")]
    if len(parts) != 4 or not parts[0]:
        raise forms.ValidationError(f"Row {number}: give SKU, category, quantity and amount, separated by commas.")
    sku, category, quantity_text, amount_text = parts
    try:
        quantity, amount = Decimal(quantity_text), Decimal(amount_text)
    except InvalidOperation:
        raise forms.ValidationError(f"Row {number}: the quantity and the amount must be numbers.") from None
    if not (quantity.is_finite() and amount.is_finite()) or quantity <= 0 or amount < 0:
        raise forms.ValidationError(f"Row {number}: the quantity must be above 0 and the amount 0 or more.")
    if amount != amount.quantize(CENT):
        raise forms.ValidationError(f"Row {number}: the amount has at most two decimals.")
    return Line(
        sku=sku, category=category, quantity=quantity, unit_price=(amount / quantity).quantize(CENT), amount=amount
    )


class RulePreviewForm(forms.Form):
    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 70}),
        help_text="One receipt line per row: SKU, category, quantity, amount, e.g. “BK-991, books, 2, 600.00”. "
        "Without a category: “GC-1, , 1, 500”.",
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.POS)
    store = forms.CharField(required=False, max_length=64, help_text="The store code as the till sends it.")
    occurred_at = forms.DateTimeField(
        label="Time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    member = forms.CharField(
        required=False,
        help_text="Card number, member id or external id: their tier, purchase count and what they already "
        "earned today and this month then count. Empty: a new member without a tier.",
    )

    def __init__(self, *args: Any, program: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.program = program
        self.fields["occurred_at"].help_text = f"In the program's time zone ({program.timezone}); may be in the future."

    def clean_lines(self) -> list[Line]:
        rows = [(number, row) for number, row in enumerate(self.cleaned_data["lines"].splitlines(), 1) if row.strip()]
        if len(rows) > MAX_PREVIEW_LINES:
            raise forms.ValidationError(f"At most {MAX_PREVIEW_LINES} lines.")
        errors, lines = [], []
        for number, row in rows:
            try:
                lines.append(_line(number, row))
            except forms.ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise forms.ValidationError(errors)
        return lines

    def clean_member(self) -> Member | None:
        q = member_search_q(self.cleaned_data["member"])
        if q is None:
            return None
        found = list(Member.objects.filter(q, program=self.program).select_related("program")[:2])
        if len(found) != 1:
            message = "Several members match: use the card number." if found else "No member of this program matches."
            raise forms.ValidationError(message)
        return found[0]


# --- Earning rules: the admin ---------------------------------------------------------------------


@admin.register(EarningRule)
class EarningRuleAdmin(ObjectActionsAdmin, ProgramScopedAdmin):
    form = EarningRuleForm
    list_display = ["name", "kind", "priority", "active_window", "is_active", "budget", "program"]
    list_filter = ["kind", "is_active", ManagedProgramFilter]
    list_select_related = ["program"]
    search_fields = ["name"]
    ordering = ["program__name", "priority", "id"]
    fieldsets = RULE_FIELDSETS
    readonly_fields = SERVER_FIELDS
    actions = ["deactivate"]
    object_actions = ("deactivate",)
    object_action_labels = {"deactivate": "Deactivate"}
    change_form_template = "admin/loyalty/earningrule_change_form.html"

    @admin.display(description="Active window")
    def active_window(self, rule: EarningRule) -> str:
        tz = rule.program.tz  # as the rule is meant: in the program's time zone
        start = f"{rule.active_from.astimezone(tz):%Y-%m-%d %H:%M}" if rule.active_from else ""
        end = f"{rule.active_until.astimezone(tz):%Y-%m-%d %H:%M}" if rule.active_until else ""
        if not (start or end):
            return "always"
        return f"from {start}" if not end else f"until {end}" if not start else f"{start} – {end}"

    @admin.display(description="Budget used / total", ordering="budget_used")
    def budget(self, rule: EarningRule) -> str:
        return f"{rule.budget_used} / {rule.budget_total}" if rule.budget_total is not None else "no budget"

    def get_readonly_fields(self, request: HttpRequest, obj: EarningRule | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        # The rule's awards and tiers belong to its program: it never moves to another one.
        return [*readonly, "program"] if obj is not None else readonly

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tiers":
            programs = managed_programs(request.user)
            kwargs["queryset"] = Tier.objects.filter(program__in=programs).select_related("program")
            kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: EarningRule | None = None) -> bool:
        return False  # awards point at the rule: deactivate it instead

    def object_action_applies(self, obj: EarningRule, name: str) -> bool:
        return obj.is_active

    def save_model(self, request: HttpRequest, obj: EarningRule, form: forms.ModelForm, change: bool) -> None:
        # The rule and its tiers in one service call: one transaction, one config version bump.
        tiers = form.cleaned_data["tiers"] if "tiers" in form.cleaned_data else None
        earning_rule_save(rule=obj, tiers=tiers)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the tiers were set by earning_rule_save, not form.save_m2m()
            self.save_formset(request, form, formset, change=change)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["kind_fields"] = {"dependent": KIND_DEPENDENT, "by_kind": KIND_FIELDS}
        if obj is not None:
            context["preview_url"] = reverse(
                "admin:loyalty_earningrule_preview", args=[obj.pk], current_app=self.admin_site.name
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Deactivate selected rules", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            intro = (
                "Deactivated rules stop giving points from the moment you confirm. They stay listed with the points "
                "they gave; tick “Active” on a rule's page to switch it on again."
            )
            return self.action_page(
                request, queryset, action="deactivate", title="Deactivate rules", intro=intro, button="Yes, deactivate"
            )
        self.run_each(
            request,
            queryset.select_related("program"),
            lambda rule: earning_rule_deactivate(rule=rule),
            "Deactivated",
            "rule",
        )
        return self.after_action(request, queryset)

    def get_urls(self) -> list[Any]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="loyalty_earningrule_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """“Test this rule”: the points each rule of the program would give for a sample basket. Writes nothing."""
        rule = self.get_object(request, unquote(object_id))
        if rule is None:
            raise Http404("No such earning rule.")
        if not self.has_view_permission(request, rule):
            raise PermissionDenied
        program = rule.program
        request.current_app = self.admin_site.name
        with timezone.override(program.tz):  # times are typed and shown in the program's time zone
            initial = {"occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "lines": _sample_lines(rule)}
            form = RulePreviewForm(request.POST or None, program=program, initial=initial)
            preview = None
            if form.is_bound and form.is_valid():
                data = form.cleaned_data
                basket = {name: data[name] for name in ("lines", "channel", "store", "occurred_at", "member")}
                preview = rules_preview(program=program, rule=rule, **basket)
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"Test “{rule}”",
                "rule": rule,
                "program": program,
                "form": form,
                "preview": preview,
                "change_url": reverse("admin:loyalty_earningrule_change", args=[rule.pk]),
                "changelist_url": self.changelist_url(),
            }
            return TemplateResponse(request, "admin/loyalty/earningrule_preview.html", context).render()


def _sample_lines(rule: EarningRule) -> str:
    """A starting basket for the form: the rule's own SKU or category where it names one."""
    sku = next(iter(split_list(rule.skus)), "SKU-1")
    category = next(iter(split_list(rule.categories)), "general")
    return f"{sku}, {category}, 1, 100.00\nOTHER-1, other, 2, 50.00"
