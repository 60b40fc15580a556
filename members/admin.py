"""The program manager's admin: programs, members and API keys.

- Scoping: a superuser sees everything; any other staff user sees only the
  programs `config.api.managed_programs` gives them and the rows of those
  programs, and can pick only those programs in forms.
- Writes go through `members.services`; actions ask for confirmation first.
  The buttons on a change page post the same actions for that one object, so
  each action has one implementation and one permission check.
- The points part of the member page (balances, ledger, adjustments) lives in
  `loyalty.admin`, which extends `MemberAdmin`: imports point one way
  (members <- loyalty).
"""

import zoneinfo
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.db.models import Count, Model, OuterRef, Q, QuerySet, Subquery
from django.forms import ChoiceField, Media, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from config.api import managed_programs

from .exceptions import DomainError, MemberAlreadyExists
from .models import ApiKey, Member, MemberStatus, Program
from .services import (
    api_key_create,
    api_key_revoke,
    format_card,
    member_close,
    member_create,
    member_erase,
    member_identifiers_check,
    member_reactivate,
    member_suspend,
    member_update,
    normalize_card,
    normalize_email,
    normalize_phone,
    program_create,
)

ACTION_PAGE_SHOWN = 20  # objects listed by name on a confirmation page; the rest are counted


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def done_with(objects: list[Any], noun: str) -> str:
    """Who an action was done to, for its message: the one object's name, or how many."""
    return str(objects[0]) if len(objects) == 1 else plural(len(objects), noun)


def adopt(target: Model, source: Model) -> None:
    """Gives the admin's unsaved instance the row a service created, so that the
    admin's log entry, related-field saving and redirect use the real row."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def member_search_q(term: str, prefix: str = "") -> Q | None:
    """Exact matches for what a manager types to find one member: a card number
    with or without separators, a phone number, an external id or a member id."""
    term = term.strip()
    if not term:
        return None
    q = Q(**{f"{prefix}external_id": term})
    if card := normalize_card(term):
        q |= Q(**{f"{prefix}card": card})
    if (phone := normalize_phone(term)) and phone.lstrip("+"):
        q |= Q(**{f"{prefix}phone": phone})
    if term.isascii() and term.isdigit() and int(term) < 2**63:
        q |= Q(**{f"{prefix}pk": int(term)})
    return q


# --- Shared pieces ---------------------------------------------------------------


class ManagedProgramFilter(admin.SimpleListFilter):
    """Filter by program, offering only the programs the user manages (and hidden when that is one)."""

    title = "program"
    parameter_name = "program"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in managed_programs(request.user).values_list("pk", "name")]

    def has_output(self) -> bool:
        return len(self.lookup_choices) > 1

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if value not in {key for key, _ in self.lookup_choices}:
            return queryset.none()
        return queryset.filter(program_id=int(value))


class ProgramScopedAdmin(admin.ModelAdmin):
    """Only rows of the programs the user manages; Program choices limited the same way."""

    program_lookup = "program"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        programs = managed_programs(request.user)
        return super().get_queryset(request).filter(**{f"{self.program_lookup}__in": programs})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Program:
            kwargs["queryset"] = managed_programs(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_display(self, request: HttpRequest) -> Any:
        # A manager of one program does not need a column repeating its name.
        columns = super().get_list_display(request)
        if "program" in columns and managed_programs(request.user).count() <= 1:
            return [column for column in columns if column != "program"]
        return columns


class ObjectActionsAdmin(admin.ModelAdmin):
    """Shows some of the list's actions as buttons on the change page.

    A button posts to the changelist exactly as the action dropdown would, with
    `_from_object` set so that the action returns to the object afterwards.
    """

    object_actions: tuple[str, ...] = ()
    object_action_labels: dict[str, str] = {}  # shorter labels for one object; the list's description otherwise
    change_form_template = "admin/members/change_form_with_actions.html"

    def object_action_applies(self, obj: Any, name: str) -> bool:
        return True

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
            actions = self.get_actions(request)
            context["object_actions"] = [
                (name, self.object_action_labels.get(name, actions[name][2]))
                for name in self.object_actions
                if name in actions and self.object_action_applies(obj, name)
            ]
            context["changelist_url"] = self.changelist_url()
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_url(self) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=self.admin_site.name)

    def action_page(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        title: str,
        intro: str,
        button: str,
        form: Any = None,
        danger: bool = False,
        template: str = "admin/members/action_confirmation.html",
    ) -> TemplateResponse:
        """The page between choosing an action and running it: a confirmation, or a form."""
        request.current_app = self.admin_site.name
        count = queryset.count()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "button": button,
            "danger": danger,
            "action": action,
            "form": form,
            "media": self.media + (form.media if form is not None else Media()),
            "objects": list(queryset[:ACTION_PAGE_SHOWN]),
            "more": max(count - ACTION_PAGE_SHOWN, 0),
            "selected": list(queryset.values_list("pk", flat=True)),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "from_object": request.POST.get("_from_object", ""),
            "changelist_url": self.changelist_url(),
        }
        return TemplateResponse(request, template, context)

    def after_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Back to the object when the action was started from its page, else to the list."""
        if not request.POST.get("_from_object"):
            return None
        pks = list(queryset.values_list("pk", flat=True)[:2])
        if len(pks) != 1:
            return None
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pks[0]], current_app=self.admin_site.name)
        )

    def run_each(
        self, request: HttpRequest, queryset: QuerySet, service: Callable[[Any], Any], done: str, noun: str
    ) -> None:
        """Calls `service` on every selected object; domain errors become error messages."""
        succeeded = []
        for obj in queryset:
            try:
                service(obj)
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.detail}", messages.ERROR)
            else:
                succeeded.append(obj)
        if succeeded:
            self.message_user(request, f"{done} {done_with(succeeded, noun)}.", messages.SUCCESS)


# --- Programs --------------------------------------------------------------------

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


TIER_FIELDS = [
    "tier_metric",
    "tier_window",
    "tier_window_days",
    "tier_validity_days",
    "tier_grace_days",
    "tier_downgrade",
]


ANALYTICS_FIELDS = ["margin_rate", "inactive_days", "clv_horizon_months", "clv_discount_rate", "clv_time_unit"]


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
    def member_count(self, program: Program) -> str:
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
                obj.save(update_fields=fields)
            return
        fields = {name: value for name, value in form.cleaned_data.items() if name != "managers"}
        adopt(obj, program_create(**fields))  # managers are saved with the form's relations


# --- Members ---------------------------------------------------------------------

PROFILE_FIELDS = [
    "card",
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "acquisition_channel",
    "consent_email",
    "consent_sms",
    "consent_push",
]
IDENTIFIERS = ["card", "external_id", "email", "phone"]


class MemberForm(ModelForm):
    """Profile fields, normalised as the services store them; duplicates are form errors."""

    class Meta:
        model = Member
        fields = ["program", *PROFILE_FIELDS]
        help_texts = {
            "card": "With or without spaces or dashes; stored as letters and digits only. Leave empty to generate one.",
            "phone": "With the country code, e.g. +420 777 123 456.",
            "external_id": "The shop's customer id, if the shop has one.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "card" in self.fields:
            self.fields["card"].required = self.instance.pk is not None
            if self.instance.pk is not None:
                self.initial["card"] = format_card(self.instance.card)

    def clean_card(self) -> str:
        raw = self.cleaned_data.get("card") or ""
        card = normalize_card(raw)
        if raw and not card:
            raise ValidationError("Use letters and digits.")
        return card

    def clean_external_id(self) -> str | None:
        return (self.cleaned_data.get("external_id") or "").strip() or None

    def clean_email(self) -> str | None:
        return normalize_email(self.cleaned_data.get("email"))

    def clean_phone(self) -> str | None:
        raw = self.cleaned_data.get("phone") or ""
        phone = normalize_phone(raw)
        if raw.strip() and not (phone or "").lstrip("+"):
            raise ValidationError("Enter a phone number with digits.")
        return phone

    def clean_birth_date(self) -> Any:
        value = self.cleaned_data.get("birth_date")
        if value and value > timezone.localdate():
            raise ValidationError("The birth date cannot be in the future.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        program = cleaned.get("program") if "program" in self.fields else getattr(self.instance, "program", None)
        if program is None:
            return cleaned
        values = {field: cleaned.get(field) for field in IDENTIFIERS if field in self.fields}
        try:
            member_identifiers_check(program=program, values=values, exclude_pk=self.instance.pk)
        except MemberAlreadyExists as exc:
            for field in exc.extra.get("fields", []):
                self.add_error(field, f"Another member of {program} already has this {field.replace('_', ' ')}.")
        return cleaned


class MemberStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*MemberStatus.choices, ("erased", "Erased (GDPR)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "erased":
            return queryset.filter(erased_at__isnull=False)
        if value in MemberStatus.values:
            return queryset.filter(status=value)
        return queryset


# Analytics filters. `loyalty` writes the analytics (imports point members <- loyalty), so these reach its
# rows through the reverse relations `analytics` and `nps_answers` only.


class SegmentFilter(admin.SimpleListFilter):
    title = "RFM segment"
    parameter_name = "segment"
    NONE = "-"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        analytics = Member._meta.get_field("analytics").related_model
        names = (
            analytics.objects.filter(program__in=managed_programs(request.user))
            .exclude(segment="")
            .order_by("segment")
            .values_list("segment", flat=True)
            .distinct()
        )
        return [(name, name) for name in names] + [(self.NONE, "No purchase yet")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.NONE:
            return queryset.filter(Q(analytics__isnull=True) | Q(analytics__segment=""))
        return queryset if value is None else queryset.filter(analytics__segment=value)


class RangeListFilter(admin.ListFilter):
    """Members whose `field` is at least `<prefix>_min` and below `<prefix>_max` (either may be left out):
    the choices are preset ranges; a query string may carry any bounds."""

    field = ""
    prefix = ""
    ranges: list[tuple[str, str | None, str | None]] = []  # (label, min, max)

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: admin.ModelAdmin) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.expected_parameters():
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value

    def expected_parameters(self) -> list[str]:
        return [f"{self.prefix}_min", f"{self.prefix}_max"]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        lookups = dict(zip(self.expected_parameters(), ("gte", "lt"), strict=True))
        try:
            bounds = {f"{self.field}__{lookups[name]}": float(value) for name, value in self.used_parameters.items()}
        except ValueError as exc:
            raise IncorrectLookupParameters(exc) from exc
        return queryset.filter(**bounds)

    def choices(self, changelist: Any):
        low, high = self.expected_parameters()
        current = (self.used_parameters.get(low), self.used_parameters.get(high))
        yield {
            "selected": current == (None, None),
            "query_string": changelist.get_query_string(remove=[low, high]),
            "display": "All",
        }
        yield from (
            {
                "selected": current == (minimum, maximum),
                "query_string": changelist.get_query_string(
                    {name: value for name, value in ((low, minimum), (high, maximum)) if value is not None},
                    [name for name, value in ((low, minimum), (high, maximum)) if value is None],
                ),
                "display": label,
            }
            for label, minimum, maximum in self.ranges
        )


class PAliveFilter(RangeListFilter):
    title = "probability active (P(alive))"
    field = "analytics__p_alive"
    prefix = "p_alive"
    ranges = [
        ("Below 20 %", None, "0.2"),
        ("20–50 %", "0.2", "0.5"),
        ("50–80 %", "0.5", "0.8"),
        ("80 % or more", "0.8", None),
    ]


class ClvFilter(RangeListFilter):
    title = "predicted lifetime value"
    field = "analytics__clv_predicted"
    prefix = "clv"
    ranges = [
        ("Below 50", None, "50"),
        ("50–200", "50", "200"),
        ("200–1,000", "200", "1000"),
        ("1,000 or more", "1000", None),
    ]


class NpsGroupFilter(admin.SimpleListFilter):
    """By the member's latest NPS answer (on equal times, the later recorded), grouped as in
    `loyalty.analytics.nps`: promoters 9–10, passives 7–8, detractors 0–6."""

    title = "NPS group"
    parameter_name = "nps"
    GROUPS = {"promoter": (9, 11), "passive": (7, 9), "detractor": (0, 7)}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("promoter", "Promoters (9–10)"), ("passive", "Passives (7–8)"), ("detractor", "Detractors (0–6)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in self.GROUPS:
            return queryset
        low, high = self.GROUPS[self.value()]
        latest = (
            Member.objects.filter(pk=OuterRef("pk"), nps_answers__isnull=False)
            .order_by("-nps_answers__answered_at", "-nps_answers__id")
            .values("nps_answers__score")[:1]
        )
        return queryset.annotate(latest_nps=Subquery(latest)).filter(latest_nps__gte=low, latest_nps__lt=high)


@admin.register(Member)
class MemberAdmin(ObjectActionsAdmin, ProgramScopedAdmin):
    form = MemberForm
    list_display = ["card_number", "name", "email", "status", "program"]
    list_display_links = ["card_number", "name"]
    list_filter = [MemberStatusFilter, ManagedProgramFilter, SegmentFilter, PAliveFilter, ClvFilter, NpsGroupFilter]
    list_select_related = ["program"]
    list_per_page = 50
    ordering = ["-id"]
    search_fields = ["first_name", "last_name", "email", "=external_id"]
    search_help_text = "Name, email, phone, card number (with or without dashes), external id or member id."
    save_on_top = True
    fieldsets = [
        (None, {"fields": ["program", "card", "external_id", "status"]}),
        ("Person", {"fields": ["first_name", "last_name", "email", "phone", "birth_date"]}),
        ("Consents", {"fields": ["consent_email", "consent_sms", "consent_push"]}),
        ("Enrollment", {"fields": ["enrolled_at", "acquisition_channel", "referral_code", "referred_by", "user"]}),
        ("Record", {"fields": ["status_changed_at", "erased_at", "updated_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        "status",
        "enrolled_at",
        "referral_code",
        "referred_by",
        "user",
        "status_changed_at",
        "erased_at",
        "updated_at",
    ]
    actions = ["suspend", "reactivate", "close", "erase"]
    object_actions = ("suspend", "reactivate", "close", "erase")
    object_action_labels = {"suspend": "Suspend", "reactivate": "Reactivate", "close": "Close", "erase": "Erase (GDPR)"}

    @admin.display(description="Card", ordering="card")
    def card_number(self, member: Member) -> str:
        return format_html('<span style="white-space: nowrap">{}</span>', format_card(member.card))

    @admin.display(description="Name", ordering="last_name")
    def name(self, member: Member) -> str:
        return member.full_name or "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Member | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        # A member's points live in their program: they never move to another one.
        return [*readonly, "program"] if obj is not None else readonly

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if (exact := member_search_q(search_term)) is not None:
            results = results | queryset.filter(exact)
        return results, may_have_duplicates

    def has_change_permission(self, request: HttpRequest, obj: Member | None = None) -> bool:
        # Erased members stay anonymous: nobody types personal data back in.
        return super().has_change_permission(request, obj) and (obj is None or obj.erased_at is None)

    def has_delete_permission(self, request: HttpRequest, obj: Member | None = None) -> bool:
        return False  # members keep their history; erase (GDPR) or close them instead

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("members.delete_member")

    def create_member(self, **fields: Any) -> Member:
        return member_create(**fields)

    def save_model(self, request: HttpRequest, obj: Member, form: ModelForm, change: bool) -> None:
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name in PROFILE_FIELDS}
            if fields:
                member_update(member=obj, **fields)
            return
        fields = {name: form.cleaned_data.get(name) for name in ["program", *PROFILE_FIELDS] if name in form.fields}
        fields["card"] = fields.get("card") or None
        fields["first_name"] = fields.get("first_name") or ""
        fields["last_name"] = fields.get("last_name") or ""
        adopt(obj, self.create_member(**fields))

    def object_action_applies(self, obj: Member, name: str) -> bool:
        applies = {
            "suspend": obj.status == MemberStatus.ACTIVE,
            "reactivate": obj.status == MemberStatus.SUSPENDED,
            "close": obj.status != MemberStatus.CLOSED,
            "erase": obj.erased_at is None,
        }
        return applies.get(name, True)

    def _status_action(
        self, request: HttpRequest, queryset: QuerySet, *, name: str, service: Callable, title: str, intro: str
    ) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            return self.action_page(request, queryset, action=name, title=title, intro=intro, button=f"Yes, {name}")
        done = {"suspend": "Suspended", "reactivate": "Reactivated", "close": "Closed"}[name]
        self.run_each(request, queryset, lambda member: service(member=member), done, "member")
        return self.after_action(request, queryset)

    @admin.action(description="Suspend selected members", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        intro = "Suspended members can neither earn nor spend points until they are reactivated."
        return self._status_action(
            request, queryset, name="suspend", service=member_suspend, title="Suspend members", intro=intro
        )

    @admin.action(description="Reactivate selected members", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        intro = "Reactivated members can earn and spend points again."
        return self._status_action(
            request, queryset, name="reactivate", service=member_reactivate, title="Reactivate members", intro=intro
        )

    @admin.action(description="Close selected members", permissions=["change"])
    def close(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        intro = "Closing is final: a closed member cannot earn or spend any more, but keeps their history."
        return self._status_action(
            request, queryset, name="close", service=member_close, title="Close members", intro=intro
        )

    @admin.action(description="Erase personal data (GDPR)", permissions=["erase"])
    def erase(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            intro = (
                "This cannot be undone. Names, email, phone, birth date, external id, consents and the card number "
                "are removed and the member is closed. Their points history stays, without personal data, so the "
                "program's books still add up."
            )
            return self.action_page(
                request,
                queryset,
                action="erase",
                title="Erase personal data",
                intro=intro,
                button="Yes, erase",
                danger=True,
            )
        self.run_each(
            request, queryset, lambda member: member_erase(member=member), "Erased the personal data of", "member"
        )
        return self.after_action(request, queryset)


# --- API keys ----------------------------------------------------------------------


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

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
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
                obj.save(update_fields=form.changed_data)
            return
        api_key, plain = api_key_create(
            program=form.cleaned_data["program"],
            name=form.cleaned_data["name"],
            store=form.cleaned_data.get("store") or "",
            created_by=request.user,
        )
        adopt(obj, api_key)
        obj.plain_key = plain  # shown once by response_add, stored nowhere

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
            "plain_key": obj.plain_key,
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
