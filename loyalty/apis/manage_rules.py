"""Manager API for earning rules and their preview: /api/manage/v1/rules/ (what every manager module shares,
`requires`, `field_errors`, `ProgramRowsView`, is in `config.api.manage`). Tiers, tier history and pins are in
`manage_tiers`, purchases and returns in `manage_purchases`.

Scoped like the rest of the manager surface: a rule, tier, purchase, return or
member of a program the user does not manage answers 404. Rules and tiers are
written through `loyalty.services.rules` (which bumps the program's config
version, so every process recompiles the rules); pins through `tier_pin`.
A model's validation errors (`EarningRule.clean()`, `full_clean()`) answer 400
`validation_error` with per-field `errors`, and nothing is written.
"""

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.filters import BooleanFilter, program_filter
from config.api.input import parse
from config.api.manage import ManageAPIView, ProgramRowsView, field_errors, requires
from config.api.problems import problems
from loyalty.apis.rule_serializers import (
    RuleCreateInput,
    RuleDeactivateInput,
    RuleInput,
    RuleOutput,
    RulePreviewInput,
    RulePreviewOutput,
)
from loyalty.models import EarningRule, Tier
from loyalty.selectors import rules_preview
from loyalty.services.rules import earning_rule_deactivate, earning_rule_save
from members.models import Program
from members.selectors import member_get

RULE_TAGS = ["Manager: rules and tiers"]


# --- Errors ---------------------------------------------------------------------------------------


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


def _program_tiers(program: Program, ids: list[int]) -> tuple[list[Tier], dict[str, list[str]]]:
    tiers = list(Tier.objects.filter(program=program, pk__in=ids))
    missing = sorted(set(ids) - {tier.pk for tier in tiers})
    errors = {"tiers": [f"No tier of {program.slug} has the id {pk}." for pk in missing]} if missing else {}
    return tiers, errors


# --- Filters --------------------------------------------------------------------------------------


class RuleFilter(django_filters.FilterSet):
    program = program_filter()
    kind = django_filters.MultipleChoiceFilter(choices=EarningRule.KIND_CHOICES)
    is_active = BooleanFilter()
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Part of the name.")

    class Meta:
        model = EarningRule
        fields = ["program", "kind", "is_active"]


# --- Base -----------------------------------------------------------------------------------------


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
        data = parse(RuleCreateInput, request.data, user=request.user)
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
        data = parse(RulePreviewInput, request.data, user=request.user)
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
