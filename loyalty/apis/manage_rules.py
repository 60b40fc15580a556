"""Manager API for earning rules, tiers, purchases, returns and tier history: /api/manage/v1/.

Scoped like the rest of the manager surface: a rule, tier, purchase, return or
member of a program the user does not manage answers 404. Rules and tiers are
written through `loyalty.services.rules` (which bumps the program's config
version, so every process recompiles the rules); pins through `tier_pin`.
A model's validation errors (`EarningRule.clean()`, `full_clean()`) answer 400
`validation_error` with per-field `errors`, and nothing is written.
"""

from typing import Any

import django_filters
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_filters import rest_framework as drf_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ManageAPIView, parse, problems
from members.models import Program
from members.selectors import member_get

from ..models import Account, Channel, EarningRule, Purchase, Return, Tier, TierChangeReason, TierHistory
from ..services.rules import earning_rule_deactivate, earning_rule_save, tier_save
from ..services.tiers import tier_pin
from .manage import ManagedMembersView
from .rule_serializers import (
    PurchaseDetailOutput,
    PurchaseOutput,
    ReturnOutput,
    RuleCreateInput,
    RuleDeactivateInput,
    RuleInput,
    RuleOutput,
    RulePreviewInput,
    RulePreviewOutput,
    TierCreateInput,
    TierHistoryOutput,
    TierInput,
    TierOutput,
    TierPinInput,
    TierPinOutput,
    rules_preview,
)

RULE_TAGS = ["Manager: rules and tiers"]
PURCHASE_TAGS = ["Manager: purchases"]
MAX_ID = 2**63 - 1


def requires(*permissions: str) -> str:
    return "Requires the Django permission " + " and ".join(f"`{name}`" for name in permissions) + "."


# --- Errors ---------------------------------------------------------------------------------------


def field_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A model's validation errors by API field (`__all__` becomes `non_field_errors`)."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": list(exc.messages)}
    return {
        ("non_field_errors" if field == NON_FIELD_ERRORS else field): list(messages)
        for field, messages in exc.message_dict.items()
    }


def _rule_saved(rule: EarningRule, tiers: list[Tier] | None, errors: dict[str, list[str]]) -> EarningRule:
    """Saves through the service; the API's own checks (`errors`) are reported with the model's."""
    if rule.budget_total is not None and rule.budget_total < rule.budget_used:
        errors["budget_total"] = [f"The rule has given {rule.budget_used} points already."]
    try:
        if errors:
            rule.full_clean(exclude=["budget_used"])
            raise serializers.ValidationError(errors)
        return earning_rule_save(rule=rule, tiers=tiers)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({**field_errors(exc), **errors}) from exc


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


def _program_tiers(program: Program, ids: list[int]) -> tuple[list[Tier], dict[str, list[str]]]:
    tiers = list(Tier.objects.filter(program=program, pk__in=ids))
    missing = sorted(set(ids) - {tier.pk for tier in tiers})
    errors = {"tiers": [f"No tier of {program.slug} has the id {pk}." for pk in missing]} if missing else {}
    return tiers, errors


# --- Filters --------------------------------------------------------------------------------------


def _id_filter(field: str, help_text: str) -> django_filters.NumberFilter:
    return django_filters.NumberFilter(field_name=field, min_value=1, max_value=MAX_ID, help_text=help_text)


class RuleFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")
    kind = django_filters.MultipleChoiceFilter(choices=EarningRule.KIND_CHOICES)
    is_active = drf_filters.BooleanFilter()
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Part of the name.")

    class Meta:
        model = EarningRule
        fields = ["program", "kind", "is_active"]


class TierFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")

    class Meta:
        model = Tier
        fields = ["program"]


class PurchaseFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")
    member = _id_filter("member_id", "Member id.")
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices)
    store = django_filters.CharFilter(help_text="Store code.")
    external_id = django_filters.CharFilter(help_text="The receipt's external id.")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Purchase
        fields = ["program", "member", "channel", "store", "external_id"]


class ReturnFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")
    member = _id_filter("member_id", "Member id.")
    purchase = _id_filter("purchase_id", "Purchase id.")
    external_id = django_filters.CharFilter(help_text="The return's external id.")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Return
        fields = ["program", "member", "purchase", "external_id"]


class TierHistoryFilter(django_filters.FilterSet):
    program = django_filters.CharFilter(field_name="program__slug", help_text="Program slug.")
    member = _id_filter("member_id", "Member id.")
    reason = django_filters.MultipleChoiceFilter(choices=TierChangeReason.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = TierHistory
        fields = ["program", "member", "reason"]


# --- Base -----------------------------------------------------------------------------------------


class ProgramRowsView(ManageAPIView):
    """Rows of the programs the user manages; `get_object()` answers 404 for any other."""

    model: Any = None
    lookup_field = "pk"

    def get_queryset(self) -> QuerySet:
        return self.model.objects.filter(program__in=self.programs()).select_related("program")

    def list_response(self, output: type[serializers.Serializer]) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(output(page, many=True).data)


# --- Earning rules --------------------------------------------------------------------------------

VIEW_RULE, ADD_RULE, CHANGE_RULE = "loyalty.view_earningrule", "loyalty.add_earningrule", "loyalty.change_earningrule"


class RuleView(ProgramRowsView):
    model = EarningRule
    queryset = EarningRule.objects.none()  # for the schema; requests use get_queryset()
    lookup_url_kwarg = "rule_id"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().prefetch_related("tiers").order_by("program__slug", "priority", "id")


class RuleListView(RuleView):
    required_permissions = {"GET": (VIEW_RULE,), "POST": (ADD_RULE,), "*": (VIEW_RULE,)}
    filterset_class = RuleFilter
    serializer_class = RuleOutput

    @extend_schema(
        operation_id="manage_rule_list",
        tags=RULE_TAGS,
        responses={200: RuleOutput(many=True), **problems(400, 401, 403)},
        summary="Earning rules of the programs you manage",
        description="By program, then priority. Filter by program slug, kind, is_active or part of the name (q). "
        + requires(VIEW_RULE),
    )
    def get(self, request: Request) -> Response:
        return self.list_response(RuleOutput)

    @extend_schema(
        operation_id="manage_rule_create",
        tags=RULE_TAGS,
        request=RuleCreateInput,
        responses={201: RuleOutput, **problems(400, 401, 403, 409, 415)},
        summary="Create an earning rule",
        description="Validated as in the admin: e.g. a base rate needs a rate above 0, a multiplier one above 1, "
        "bonus and event rules points, only event rules an event. Errors answer 400 validation_error per field. "
        "Applies to purchases from the moment it is saved. " + requires(ADD_RULE),
    )
    def post(self, request: Request) -> Response:
        data = parse(RuleCreateInput, request.data, programs=self.programs())
        program = data.pop("program")
        tiers, errors = _program_tiers(program, data.pop("tiers", []))
        rule = _rule_saved(EarningRule(program=program, **data), tiers, errors)
        return Response(RuleOutput(rule).data, status=201)


class RuleDetailView(RuleView):
    required_permissions = {"GET": (VIEW_RULE,), "PATCH": (CHANGE_RULE,), "*": (VIEW_RULE,)}

    @extend_schema(
        operation_id="manage_rule_detail",
        tags=RULE_TAGS,
        responses={200: RuleOutput, **problems(401, 403, 404)},
        summary="An earning rule",
        description=requires(VIEW_RULE),
    )
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(RuleOutput(self.get_object()).data)

    @extend_schema(
        operation_id="manage_rule_update",
        tags=RULE_TAGS,
        request=RuleInput,
        responses={200: RuleOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Change an earning rule",
        description="Only the fields sent change; `tiers` replaces the list. The program, `budget_used` and the "
        "timestamps cannot be set. The whole rule is validated again. " + requires(CHANGE_RULE),
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = self.get_object()
        serializer = RuleInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tier_ids = data.pop("tiers", None)
        for name, value in data.items():
            setattr(rule, name, value)
        tiers, errors = _program_tiers(rule.program, tier_ids) if tier_ids is not None else (None, {})
        rule = _rule_saved(rule, tiers, errors)
        return Response(RuleOutput(rule).data)


class RuleDeactivateView(RuleView):
    required_permissions = {"POST": (CHANGE_RULE,), "*": (CHANGE_RULE,)}

    @extend_schema(
        operation_id="manage_rule_deactivate",
        tags=RULE_TAGS,
        request=RuleDeactivateInput,
        responses={200: RuleOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Switch an earning rule off",
        description="Rules are never deleted (awards point at them). A deactivated rule gives no more points; "
        "PATCH is_active=true switches it on again. " + requires(CHANGE_RULE),
    )
    def post(self, request: Request, rule_id: int) -> Response:
        rule = self.get_object()
        parse(RuleDeactivateInput, request.data)
        return Response(RuleOutput(earning_rule_deactivate(rule=rule)).data)


class RulePreviewView(ManageAPIView):
    required_permissions = {"POST": (VIEW_RULE,), "*": (VIEW_RULE,)}

    @extend_schema(
        operation_id="manage_rule_preview",
        tags=RULE_TAGS,
        request=RulePreviewInput,
        responses={200: RulePreviewOutput, **problems(400, 401, 403, 404, 415)},
        summary="Points a sample basket would earn (writes nothing)",
        description="Evaluates the program's compiled rules (with live budgets) on a basket, for a new member "
        "or for a given one (their tier, purchase count and daily/monthly caps). `rule_id` adds a switched-off "
        "rule to try it. Nothing is recorded. " + requires(VIEW_RULE),
    )
    def post(self, request: Request) -> Response:
        data = parse(RulePreviewInput, request.data, programs=self.programs())
        program = data["program"]
        rule = None
        if "rule_id" in data:
            rule = EarningRule.objects.filter(program=program, pk=data["rule_id"]).first()
            if rule is None:
                raise serializers.ValidationError({"rule_id": [f"No rule of {program.slug} has this id."]})
        member = None
        if "member" in data:
            ((field, value),) = data["member"].items()
            member = member_get(program=program, field=field, value=value)
        preview = rules_preview(
            program=program,
            lines=data["lines"],
            occurred_at=data.get("occurred_at") or timezone.now(),
            channel=data["channel"],
            store=data["store"],
            total=data.get("total"),
            member=member,
            rule=rule,
        )
        body = {
            "program": program.slug,
            "member_id": member.pk if member else None,
            "total": preview.total,
            "eligible_amount": preview.eligible_amount,
            "points": preview.points,
            "awards": preview.awards,
            "rules": preview.rules,
            "notes": preview.notes,
        }
        return Response(RulePreviewOutput(body).data)


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
        data = parse(TierCreateInput, request.data, programs=self.programs())
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
