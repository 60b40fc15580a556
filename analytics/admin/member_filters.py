"""The member list's filters on analytics figures: RFM segment, P(alive), predicted lifetime value, NPS group.
`analytics.admin.members` adds them to the member admin."""

from django.contrib import admin
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest

from analytics.models import MemberAnalytics, NpsAnswer
from members.access import managed_programs
from members.admin import RangeListFilter


class SegmentFilter(admin.SimpleListFilter):
    title = "RFM segment"
    parameter_name = "segment"
    NONE = "-"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        names = (
            MemberAnalytics.objects.filter(program__in=managed_programs(request.user))
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
    `analytics.nps`: promoters 9–10, passives 7–8, detractors 0–6."""

    title = "NPS group"
    parameter_name = "nps"
    GROUPS = {"promoter": (9, 11), "passive": (7, 9), "detractor": (0, 7)}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("promoter", "Promoters (9–10)"), ("passive", "Passives (7–8)"), ("detractor", "Detractors (0–6)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value not in self.GROUPS:
            return queryset
        low, high = self.GROUPS[value]
        latest = NpsAnswer.objects.filter(member=OuterRef("pk")).order_by("-answered_at", "-id").values("score")[:1]
        return queryset.annotate(latest_nps=Subquery(latest)).filter(latest_nps__gte=low, latest_nps__lt=high)
