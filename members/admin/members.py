"""Members: the profile form, the list's filters (status, program) and the status and
GDPR erase actions. The points part of the member page lives in `loyalty.admin`, which
extends `MemberAdmin`; the analytics filters in `analytics.admin`, which extends that.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html

from members.admin.base import ManagedProgramFilter, ObjectActionsAdmin, ProgramScopedAdmin, adopt, member_search_q
from members.exceptions import MemberAlreadyExists
from members.identifiers import format_card, normalize_card, normalize_email, normalize_phone
from members.models import Member, MemberStatus
from members.services.gdpr import member_erase
from members.services.members import (
    member_close,
    member_create,
    member_identifiers_check,
    member_reactivate,
    member_suspend,
    member_update,
)

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
        super().clean()
        cleaned = self.cleaned_data  # what super().clean() returned (typed: the stubs allow None)
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


@admin.register(Member)
class MemberAdmin(ObjectActionsAdmin, ProgramScopedAdmin):
    form = MemberForm
    list_display = ["card_number", "name", "email", "status", "program"]
    list_display_links = ["card_number", "name"]
    list_filter = [MemberStatusFilter, ManagedProgramFilter]
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
    object_actions: tuple[str, ...] = ("suspend", "reactivate", "close", "erase")  # subclasses add theirs
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
