"""Shared pieces of the manager's admin, also used by the admin of the apps above:
program scoping (`ProgramScopedAdmin`, `ManagedProgramFilter`), list filters
(`OfferedIdFilter`, `RangeListFilter`), actions shown as buttons on the change page
with their confirmation pages (`ObjectActionsAdmin`), and small helpers for messages
and searches.
"""

from collections.abc import Callable
from contextlib import nullcontext
from functools import partial, reduce
from typing import Any, TypedDict, cast

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.db.models import DateTimeField, Model, Q, QuerySet
from django.forms import Media
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from members.access import managed_programs
from members.exceptions import DomainError
from members.identifiers import normalize_card, normalize_phone
from members.ids import whole_number
from members.models import Program

PROGRAM_TIME_HELP = "In the program's time zone."
ACTION_PAGE_SHOWN = 20  # objects listed by name on a confirmation page; the rest are counted


class MemberCount(TypedDict):
    """What an admin's `get_queryset` annotates for its "Members" column (`WithAnnotations[Tier, MemberCount]`)."""

    member_count: int


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
    if (pk := whole_number(term)) is not None:
        q |= Q(**{f"{prefix}pk": pk})
    return q


# --- Shared pieces ---------------------------------------------------------------


class OfferedIdFilter(admin.SimpleListFilter):
    """A list filter on the id of a row chosen from `lookups` (`field`: the lookup it filters on); an id the
    user was not offered (another program's, typed into the address) shows nothing."""

    field = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if value not in {key for key, _ in self.lookup_choices}:
            return queryset.none()
        return queryset.filter(**{self.field: int(value)})


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

    def expected_parameters(self) -> list[str]:  # type: ignore[override]  # names, never None
        return [f"{self.prefix}_min", f"{self.prefix}_max"]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        lookups = dict(zip(self.expected_parameters(), ("gte", "lt"), strict=True))
        try:
            bounds = {
                f"{self.field}__{lookups[name]}": float(cast(str, value))  # from the query string (__init__)
                for name, value in self.used_parameters.items()
            }
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


class ManagedProgramFilter(OfferedIdFilter):
    """Filter by program, offering only the programs the user manages (and hidden when that is one)."""

    title = "program"
    parameter_name = "program"
    field = "program_id"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in managed_programs(request.user).values_list("pk", "name")]

    def has_output(self) -> bool:
        return len(self.lookup_choices) > 1


def _in_time_zone(program: Program | None, view: Callable[[], HttpResponse]) -> HttpResponse:
    """The view's response, rendered with the program's time zone active (the current one without a program)."""
    with timezone.override(program.tz) if program else nullcontext():
        response = view()
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            response.render()  # while the time zone is active, not after the view returned
    return response


def _only_program(programs: QuerySet) -> Program | None:
    only = list(programs[:2])
    return only[0] if len(only) == 1 else None


class ProgramScopedAdmin(admin.ModelAdmin):
    """Only rows of the programs the user manages; Program choices limited the same way.

    A change page reads and shows times in the time zone of the object's program (DESIGN.md: times a manager
    enters are in the program's time zone): Django's date-time fields and read-only times use the active time
    zone, so the whole view, rendering included, runs with the program's activated. A local time the clock
    change skips or repeats is refused by the field. Lists do the same when the user runs one program."""

    program_lookup = "program"

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        program = self.program_of_page(request, object_id)
        return _in_time_zone(program, partial(super().changeform_view, request, object_id, form_url, extra_context))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One program: its times and date filters ("Today") are in its time zone. Several: each row's own
        # program may differ, so columns that matter convert explicitly (a rule's window, a voucher's expiry).
        program = _only_program(managed_programs(request.user))
        return _in_time_zone(program, partial(super().changelist_view, request, extra_context))

    def program_of_page(self, request: HttpRequest, object_id: str | None) -> Program | None:
        """The object's program; on an add page the program posted, else the only one the user manages."""
        programs = managed_programs(request.user)
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            return reduce(getattr, self.program_lookup.split("__"), obj) if obj is not None else None
        posted = request.POST.get("program", "")
        if (pk := whole_number(posted)) is not None:
            return programs.filter(pk=pk).first()
        return _only_program(programs)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if isinstance(db_field, DateTimeField) and formfield is not None:
            formfield.help_text = " ".join(filter(None, [str(formfield.help_text), PROGRAM_TIME_HELP]))
        return formfield

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
            # get_actions leaves out the actions it cannot find: no value is None, as the stubs allow.
            actions = cast(dict[str, tuple[Callable[..., Any], str, str]], self.get_actions(request))
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


class ReadOnlyAdminMixin:
    """Viewing only: these rows are written by services (the ledger, purchases, returns, tier
    history) and never edited; a correction is a new adjustment."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
