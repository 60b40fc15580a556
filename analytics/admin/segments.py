"""The RFM grid (editable) and members' segment history (read-only) in the admin.

A program's grid is edited one segment at a time, and every save keeps it whole: the form checks the grid as
it would be after the save (ranges, unique names, every R × FM cell covered), and a segment can be deleted
only when the rest still covers every cell (or nothing is left: the program goes back to the default grid).
A program that still uses the default grid gets it copied into rows on its first saved segment, so the new
segment is tried among the default ones by its priority. Members get the changed segments at the next
analytics refresh. The manager API replaces a whole grid at once (`PUT analytics/rfm/segments/`).
"""

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from analytics.models import MemberAnalytics, RfmSegment, SegmentChange
from analytics.rfm import DEFAULT_GRID, SegmentSpec, grid_problems
from analytics.services.rfm import rfm_segment_save
from loyalty.admin.purchases import ProgramRowsAdmin
from members.access import managed_programs
from members.admin import ManagedProgramFilter, ProgramScopedAdmin
from members.admin.base import MemberCount

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


def _grid_with(program: Any, segment: RfmSegment | None, *, without: int | None = None) -> list[SegmentSpec]:
    """The program's grid with `segment` saved (added, or replacing its stored row) and the row `without`
    removed, in the order the refresh tries them: priority, then older rows first."""
    rows = list(RfmSegment.objects.filter(program=program).exclude(pk__in=[without, getattr(segment, "pk", None)]))
    ranked: list[tuple[tuple[int, float], SegmentSpec]]  # (priority, pk): a new segment's pk is infinity
    if not RfmSegment.objects.filter(program=program).exists():
        ranked = [((priority, index), spec) for index, (priority, spec) in enumerate(enumerate(DEFAULT_GRID, 1))]
    else:
        ranked = [((row.priority, row.pk), SegmentSpec.of(row)) for row in rows]
    if segment is not None:
        ranked.append(((segment.priority, segment.pk or float("inf")), SegmentSpec.of(segment)))
    return [spec for _, spec in sorted(ranked, key=lambda item: item[0])]


class RfmSegmentForm(forms.ModelForm):
    class Meta:
        model = RfmSegment
        fields = ["program", "name", "priority", "r_min", "r_max", "fm_min", "fm_max", "description"]
        help_texts = {
            "program": "A program without segments of its own uses the default grid; its first saved segment "
            "copies the default grid in, then adds this one.",
            "fm_min": "FM is the mean of the F and M scores: 1.0 to 5.0 in steps of 0.5.",
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what super().clean() returned (typed: the stubs allow None)
        program = cleaned.get("program") or (self.instance.program if self.instance.program_id else None)
        if program is None or self.errors:
            return cleaned
        candidate = RfmSegment(
            pk=self.instance.pk, **{name: cleaned[name] for name in self.Meta.fields if name != "program"}
        )
        for problem in grid_problems(_grid_with(program, candidate)):
            self.add_error(None, problem)
        return cleaned


@admin.register(RfmSegment)
class RfmSegmentAdmin(ProgramScopedAdmin):
    form = RfmSegmentForm
    list_display = ["name", "priority", "r_range", "fm_range", "members", "description", "program"]
    list_filter = [ManagedProgramFilter]
    list_select_related = ["program"]
    ordering = ["program__name", "priority", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        holders = (
            MemberAnalytics.objects.filter(program=OuterRef("program"), segment=OuterRef("name"))
            .order_by()
            .values("program")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(member_count=Coalesce(Subquery(holders), 0))

    @admin.display(description="R")
    def r_range(self, segment: RfmSegment) -> str:
        return f"{segment.r_min}–{segment.r_max}"

    @admin.display(description="FM")
    def fm_range(self, segment: RfmSegment) -> str:
        return f"{Decimal(segment.fm_min):.1f}–{Decimal(segment.fm_max):.1f}"

    @admin.display(description="Members (last refresh)", ordering="member_count")
    def members(self, segment: "WithAnnotations[RfmSegment, MemberCount]") -> int:
        return segment.member_count

    def get_readonly_fields(self, request: HttpRequest, obj: RfmSegment | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "program"] if obj is not None else readonly

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one segment at a time, keeping the grid whole
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: RfmSegment | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        if not allowed or obj is None:
            return allowed
        rest = _grid_with(obj.program, None, without=obj.pk)
        return not rest or not grid_problems(rest)

    def save_model(self, request: HttpRequest, obj: RfmSegment, form: forms.ModelForm, change: bool) -> None:
        rfm_segment_save(segment=obj)


class SegmentFilter(admin.SimpleListFilter):
    """The segment entered: names of the managed programs' grids and the default grid."""

    title = "entered segment"
    parameter_name = "to_segment"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        own = RfmSegment.objects.filter(program__in=managed_programs(request.user)).values_list("name", flat=True)
        names = sorted({*own, *(segment.name for segment in DEFAULT_GRID)})
        return [(name, name) for name in names] + [("-", "None (no purchase left)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(to_segment="" if value == "-" else value)


@admin.register(SegmentChange)
class SegmentChangeAdmin(ProgramRowsAdmin):
    list_display = ["changed_at", "member", "card", "from_segment", "to_segment", "program"]
    list_display_links = ["changed_at"]
    list_filter = [SegmentFilter, ("changed_at", admin.DateFieldListFilter), ManagedProgramFilter]
    list_select_related = ["member", "program"]
    search_help_text = "The member's card (with or without dashes), id or external id."
    own_external_id = ()
    fields = ("changed_at", "program", "member", "from_segment", "to_segment")
    readonly_fields = fields
