"""django-filter sets for the ledger and member lists."""

import django_filters
from django.db.models import OuterRef, Q, Subquery

from analytics.models import NpsAnswer
from analytics.nps import PASSIVE_MIN, PROMOTER_MIN
from config.api.filters import program_filter
from config.api.input import AwareIsoDateTimeFilter
from loyalty.models import Entry, EntryKind
from members.models import Member, MemberStatus

# A member's NPS group is that of their latest answer (on equal times, the later recorded).
NPS_GROUPS = {
    "promoter": Q(latest_nps__gte=PROMOTER_MIN),
    "passive": Q(latest_nps__gte=PASSIVE_MIN, latest_nps__lt=PROMOTER_MIN),
    "detractor": Q(latest_nps__lt=PASSIVE_MIN),
}


class EntryFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EntryKind.choices)
    occurred_after = AwareIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = AwareIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Entry
        fields = ["kind", "occurred_after", "occurred_before"]


class MemberFilter(django_filters.FilterSet):
    program = program_filter()
    status = django_filters.MultipleChoiceFilter(choices=MemberStatus.choices)
    available_min = django_filters.NumberFilter(field_name="account__available", lookup_expr="gte")
    available_max = django_filters.NumberFilter(field_name="account__available", lookup_expr="lte")
    debt_min = django_filters.NumberFilter(field_name="account__debt", lookup_expr="gte")
    enrolled_after = AwareIsoDateTimeFilter(field_name="enrolled_at", lookup_expr="gte")
    enrolled_before = AwareIsoDateTimeFilter(field_name="enrolled_at", lookup_expr="lt")
    q = django_filters.CharFilter(method="search", help_text="Name, email, phone, card or external id.")
    segment = django_filters.CharFilter(field_name="analytics__segment", help_text="RFM segment at the last refresh.")
    p_alive_min = django_filters.NumberFilter(
        field_name="analytics__p_alive", lookup_expr="gte", help_text="Probability the member is active, 0–1."
    )
    p_alive_max = django_filters.NumberFilter(field_name="analytics__p_alive", lookup_expr="lte")
    clv_min = django_filters.NumberFilter(
        field_name="analytics__clv_predicted", lookup_expr="gte", help_text="Predicted customer lifetime value."
    )
    clv_max = django_filters.NumberFilter(field_name="analytics__clv_predicted", lookup_expr="lte")
    nps = django_filters.ChoiceFilter(
        choices=[("promoter", "Promoter (9–10)"), ("passive", "Passive (7–8)"), ("detractor", "Detractor (0–6)")],
        method="nps_group",
        help_text="By the member's latest NPS answer.",
    )

    class Meta:
        model = Member
        fields = ["program", "status"]

    def nps_group(self, queryset, name, value):
        latest = NpsAnswer.objects.filter(member=OuterRef("pk")).order_by("-answered_at", "-id").values("score")[:1]
        return queryset.annotate(latest_nps=Subquery(latest)).filter(NPS_GROUPS[value])

    def search(self, queryset, name, value):
        value = value.strip()
        card = "".join(ch for ch in value if ch.isalnum()).upper()
        condition = (
            Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(email__icontains=value)
            | Q(phone__icontains=value)
            | Q(external_id=value)
        )
        return queryset.filter(condition | Q(card=card) if card else condition)
