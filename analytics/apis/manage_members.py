"""The manager's member list: members found by status, balance, enrolment and search, and by what analytics
knows of them (RFM segment, P(alive), predicted CLV, latest NPS answer). It lives here, above loyalty, because
it filters on the figures this app computes."""

import django_filters
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.models import NpsAnswer
from analytics.nps import PASSIVE_MIN, PROMOTER_MIN
from config.api.filters import program_filter
from config.api.input import AwareIsoDateTimeFilter
from config.api.problems import problems
from loyalty.apis.manage import TAGS, ManagedMembersView
from loyalty.apis.serializers import MemberListOutput
from members.models import Member, MemberStatus

# A member's NPS group is that of their latest answer (on equal times, the later recorded).
NPS_GROUPS = {
    "promoter": Q(latest_nps__gte=PROMOTER_MIN),
    "passive": Q(latest_nps__gte=PASSIVE_MIN, latest_nps__lt=PROMOTER_MIN),
    "detractor": Q(latest_nps__lt=PASSIVE_MIN),
}


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


class ManageMemberListView(ManagedMembersView):
    required_permissions = {"GET": ("members.view_member",)}
    filterset_class = MemberFilter
    serializer_class = MemberListOutput

    @extend_schema(
        operation_id="manage_member_list",
        tags=TAGS,
        responses={200: MemberListOutput(many=True), **problems(400, 401, 403)},
        summary="Members of the programs you manage",
        description="Paginated with ?page= and ?page_size=; filter by program slug, status, balance range, "
        "enrollment date or a search term (q: name, email, phone, card, external id).",
    )
    def get(self, request: Request) -> Response:
        members = self.get_queryset().annotate(
            **{f"points_{name}": Coalesce(F(f"account__{name}"), 0) for name in ("available", "pending", "debt")}
        )
        page = self.paginate_queryset(self.filter_queryset(members.order_by("pk")))
        return self.get_paginated_response(MemberListOutput(page, many=True).data)
