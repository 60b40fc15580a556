"""Manager API for tiers, tier history and tier pins: /api/manage/v1/tiers/, tier-history/ and
members/<id>/tier-pin/. Scoped and validated as the rest of the manager surface (see `manage_rules`)."""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.filters import id_filter, program_filter
from config.api.input import parse
from config.api.manage import ProgramRowsView, field_errors, requires
from config.api.problems import problems
from loyalty.apis.manage import ManagedMembersView
from loyalty.apis.manage_rules import RULE_TAGS
from loyalty.apis.tier_serializers import (
    TierCreateInput,
    TierHistoryOutput,
    TierInput,
    TierOutput,
    TierPinInput,
    TierPinOutput,
)
from loyalty.models import Account, Tier, TierChangeReason, TierHistory
from loyalty.services.tiers import tier_pin, tier_save


def _tier_saved(tier: Tier) -> Tier:
    others = Tier.objects.filter(program_id=tier.program_id).exclude(pk=tier.pk)
    errors = {
        field: [f"Another tier of this program has this {field}."]
        for field in ("rank", "name")
        if others.filter(**{field: getattr(tier, field)}).exists()
    }
    try:
        if errors:
            raise serializers.ValidationError(errors)
        return tier_save(tier=tier)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(field_errors(exc)) from exc


# --- Filters --------------------------------------------------------------------------------------


class TierFilter(django_filters.FilterSet):
    program = program_filter()

    class Meta:
        model = Tier
        fields = ["program"]


class TierHistoryFilter(django_filters.FilterSet):
    program = program_filter()
    member = id_filter("member_id", "Member id.")
    reason = django_filters.MultipleChoiceFilter(choices=TierChangeReason.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = TierHistory
        fields = ["program", "member", "reason"]


# --- Tiers ----------------------------------------------------------------------------------------

VIEW_TIER, ADD_TIER, CHANGE_TIER = "loyalty.view_tier", "loyalty.add_tier", "loyalty.change_tier"


class TierView(ProgramRowsView):
    model = Tier
    queryset = Tier.objects.none()
    lookup_url_kwarg = "tier_id"

    def get_queryset(self) -> QuerySet:
        holders = Account.objects.filter(tier=OuterRef("pk")).order_by().values("tier").annotate(n=Count("pk"))
        tiers = super().get_queryset().annotate(member_count=Coalesce(Subquery(holders.values("n")), 0))
        return tiers.order_by("program__slug", "rank")


class TierListView(TierView):
    required_permissions = {"GET": (VIEW_TIER,), "POST": (ADD_TIER,), "*": (VIEW_TIER,)}
    filterset_class = TierFilter
    serializer_class = TierOutput

    @extend_schema(
        operation_id="manage_tier_list",
        tags=RULE_TAGS,
        responses={200: TierOutput(many=True), **problems(400, 401, 403)},
        summary="Tiers of the programs you manage",
        description="By program, then rank, with the number of members holding each. " + requires(VIEW_TIER),
    )
    def get(self, request: Request) -> Response:
        return self.list_response(TierOutput)

    @extend_schema(
        operation_id="manage_tier_create",
        tags=RULE_TAGS,
        request=TierCreateInput,
        responses={201: TierOutput, **problems(400, 401, 403, 409, 415)},
        summary="Create a tier",
        description="Rank and name are unique in the program. Members reach the tier with their next purchase "
        "that crosses the threshold. " + requires(ADD_TIER),
    )
    def post(self, request: Request) -> Response:
        data = parse(TierCreateInput, request.data, user=request.user)
        tier = _tier_saved(Tier(**data))
        return Response(TierOutput(self.get_queryset().get(pk=tier.pk)).data, status=201)


class TierDetailView(TierView):
    required_permissions = {"GET": (VIEW_TIER,), "PATCH": (CHANGE_TIER,), "*": (VIEW_TIER,)}

    @extend_schema(
        operation_id="manage_tier_detail",
        tags=RULE_TAGS,
        responses={200: TierOutput, **problems(401, 403, 404)},
        summary="A tier",
        description=requires(VIEW_TIER),
    )
    def get(self, request: Request, tier_id: int) -> Response:
        return Response(TierOutput(self.get_object()).data)

    @extend_schema(
        operation_id="manage_tier_update",
        tags=RULE_TAGS,
        request=TierInput,
        responses={200: TierOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Change a tier",
        description="Only the fields sent change; the program cannot. A changed threshold counts from each "
        "member's next purchase or review. " + requires(CHANGE_TIER),
    )
    def patch(self, request: Request, tier_id: int) -> Response:
        tier = self.get_object()
        serializer = TierInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        for name, value in serializer.validated_data.items():
            setattr(tier, name, value)
        _tier_saved(tier)
        return Response(TierOutput(self.get_queryset().get(pk=tier.pk)).data)


# --- Tier history and pins ------------------------------------------------------------------------

VIEW_TIER_HISTORY, CHANGE_ACCOUNT = "loyalty.view_tierhistory", "loyalty.change_account"


class TierHistoryListView(ProgramRowsView):
    model = TierHistory
    queryset = TierHistory.objects.none()
    required_permissions = {"GET": (VIEW_TIER_HISTORY,), "*": (VIEW_TIER_HISTORY,)}
    filterset_class = TierHistoryFilter
    serializer_class = TierHistoryOutput

    def get_queryset(self) -> QuerySet:
        rows = super().get_queryset().select_related("from_tier", "to_tier", "actor")
        return rows.order_by("-created_at", "-id")

    @extend_schema(
        operation_id="manage_tier_history_list",
        tags=RULE_TAGS,
        responses={200: TierHistoryOutput(many=True), **problems(400, 401, 403)},
        summary="Members' tier changes, newest first",
        description="Promotions, reviews, returns and pins with their reason, metric value and, for pins, the "
        "manager and note. Filter by program slug, member id, reason or time. " + requires(VIEW_TIER_HISTORY),
    )
    def get(self, request: Request) -> Response:
        return self.list_response(TierHistoryOutput)


class MemberTierPinView(ManagedMembersView):
    required_permissions = {"POST": (CHANGE_ACCOUNT,), "*": (CHANGE_ACCOUNT,)}

    @extend_schema(
        operation_id="manage_member_tier_pin",
        tags=RULE_TAGS,
        request=TierPinInput,
        responses={200: TierPinOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Keep a member in a tier until a date",
        description="Whatever their purchases and returns say, until `until`; then the tier is reviewed as usual. "
        "Recorded in the tier history with you as the actor and the note. The member's tier lives on their "
        "points account: " + requires(CHANGE_ACCOUNT),
    )
    def post(self, request: Request, member_id: str) -> Response:
        member = self.get_member()
        data = parse(TierPinInput, request.data)
        errors: dict[str, list[str]] = {}
        tier = None
        if data["tier"] is not None:
            tier = Tier.objects.filter(program_id=member.program_id, pk=data["tier"]).first()
            if tier is None:
                errors["tier"] = [f"No tier of {member.program.slug} has this id."]
        if data["until"] <= timezone.now():
            errors["until"] = ["The pin must end in the future."]
        if errors:
            raise serializers.ValidationError(errors)
        account = tier_pin(member=member, tier=tier, until=data["until"], actor=request.user, note=data["note"])
        history = TierHistory.objects.filter(member=member).select_related("program", "from_tier", "to_tier", "actor")
        body = {
            "member_id": member.pk,
            "tier": tier,
            "pinned_until": account.tier_pinned_until,
            "review_at": account.tier_review_at,
            "history": history.order_by("-created_at", "-id").first(),
        }
        return Response(TierPinOutput(body).data)
