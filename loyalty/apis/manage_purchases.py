"""Manager API for purchases and returns (read-only): /api/manage/v1/purchases/ and returns/.
Scoped as the rest of the manager surface (see `manage_rules`)."""

import django_filters
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.filters import id_filter, program_filter
from config.api.manage import ProgramRowsView, requires
from config.api.problems import problems
from loyalty.apis.purchase_output_serializers import PurchaseDetailOutput, PurchaseOutput, ReturnOutput
from loyalty.models import Channel, Purchase, Return

PURCHASE_TAGS = ["Manager: purchases"]


# --- Filters --------------------------------------------------------------------------------------


class PurchaseFilter(django_filters.FilterSet):
    program = program_filter()
    member = id_filter("member_id", "Member id.")
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices)
    store = django_filters.CharFilter(help_text="Store code.")
    external_id = django_filters.CharFilter(help_text="The receipt's external id.")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Purchase
        fields = ["program", "member", "channel", "store", "external_id"]


class ReturnFilter(django_filters.FilterSet):
    program = program_filter()
    member = id_filter("member_id", "Member id.")
    purchase = id_filter("purchase_id", "Purchase id.")
    external_id = django_filters.CharFilter(help_text="The return's external id.")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Return
        fields = ["program", "member", "purchase", "external_id"]


# --- Purchases and returns ------------------------------------------------------------------------

VIEW_PURCHASE, VIEW_RETURN = "loyalty.view_purchase", "loyalty.view_return"


class PurchaseListView(ProgramRowsView):
    model = Purchase
    queryset = Purchase.objects.none()
    required_permissions = {"GET": (VIEW_PURCHASE,), "*": (VIEW_PURCHASE,)}
    filterset_class = PurchaseFilter
    serializer_class = PurchaseOutput

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().order_by("-occurred_at", "-id")

    @extend_schema(
        operation_id="manage_purchase_list",
        tags=PURCHASE_TAGS,
        responses={200: PurchaseOutput(many=True), **problems(400, 401, 403)},
        summary="Purchases of the programs you manage, newest first",
        description="Filter by program slug, member id, channel, store, external id or time. "
        + requires(VIEW_PURCHASE),
    )
    def get(self, request: Request) -> Response:
        return self.list_response(PurchaseOutput)


class PurchaseDetailView(ProgramRowsView):
    model = Purchase
    queryset = Purchase.objects.none()
    lookup_url_kwarg = "purchase_id"
    required_permissions = {"GET": (VIEW_PURCHASE,), "*": (VIEW_PURCHASE,)}

    def get_queryset(self) -> QuerySet:
        returns = Return.objects.select_related("program", "purchase").order_by("occurred_at", "id")
        return super().get_queryset().prefetch_related("lines", Prefetch("returns", queryset=returns))

    @extend_schema(
        operation_id="manage_purchase_detail",
        tags=PURCHASE_TAGS,
        responses={200: PurchaseDetailOutput, **problems(401, 403, 404)},
        summary="A purchase with its lines, awards and returns",
        description=requires(VIEW_PURCHASE),
    )
    def get(self, request: Request, purchase_id: int) -> Response:
        return Response(PurchaseDetailOutput(self.get_object()).data)


class ReturnListView(ProgramRowsView):
    model = Return
    queryset = Return.objects.none()
    required_permissions = {"GET": (VIEW_RETURN,), "*": (VIEW_RETURN,)}
    filterset_class = ReturnFilter
    serializer_class = ReturnOutput

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("purchase").order_by("-occurred_at", "-id")

    @extend_schema(
        operation_id="manage_return_list",
        tags=PURCHASE_TAGS,
        responses={200: ReturnOutput(many=True), **problems(400, 401, 403)},
        summary="Returns of the programs you manage, newest first",
        description="Filter by program slug, member id, purchase id, external id or time. " + requires(VIEW_RETURN),
    )
    def get(self, request: Request) -> Response:
        return self.list_response(ReturnOutput)
