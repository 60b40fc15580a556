"""Manager API: the program's reward attainability report and its what-if, under /api/manage/v1/analytics/."""

from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.input import InputSerializer, parse
from config.api.manage import ManageAPIView
from config.api.problems import problems
from config.api.queries import UnboundedProgramQuery
from rewards.attainability import WhatIf, program_report, rewards_on_offer

TAGS = ["Manage: analytics"]
DESCRIPTION = (
    "Over the program's active members, from each member's earning pace over the program's attainability "
    "window (net points earned per day, at least 30 days, at most the window, from enrolment): the share who can "
    "redeem a reward open to their tier now, the share within 20 % of the cheapest one (not yet redeemable, gap "
    "at most a fifth of its cost), the median and 75th percentile of days to it (a member's value, null when "
    "it is 'never'), and per reward on offer how many members can redeem it now, in 1–30 days, in 31–365 "
    "days, later, never at their pace, or not with their tier (the six counts add up to the members). "
    "Sold-out rewards are left out; per-member limits are not taken into account. `warning` is set when "
    "the median exceeds the program's `attainability_target_days`. Computed with a few set-based queries, "
    "whatever the number of members."
)


class AttainabilityRewardOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    points_cost = serializers.IntegerField(help_text="The cost used (the proposed one in a what-if).")
    now = serializers.IntegerField(help_text="Members who can redeem it now.")
    days_1_30 = serializers.IntegerField(help_text="Members who reach it in 1 to 30 days at their pace.")
    days_31_365 = serializers.IntegerField(help_text="In 31 to 365 days.")
    over_a_year = serializers.IntegerField(help_text="In more than a year.")
    never = serializers.IntegerField(help_text="Never at their pace (they earn nothing).")
    tier_locked = serializers.IntegerField(help_text="Members whose tier is below the reward's minimum tier.")


class AttainabilitySummaryOutput(serializers.Serializer):
    active_members = serializers.IntegerField()
    share_redeemable_now = serializers.FloatField(help_text="0–1, 4 decimals.")
    share_within_20_percent = serializers.FloatField(help_text="0–1, 4 decimals.")
    days_to_first_reward_median = serializers.IntegerField(allow_null=True, help_text="Null: never.")
    days_to_first_reward_p75 = serializers.IntegerField(allow_null=True, help_text="Null: never.")
    members_never_at_pace = serializers.IntegerField()
    target_days = serializers.IntegerField()
    warning = serializers.CharField(allow_null=True)
    rewards = AttainabilityRewardOutput(many=True)


class AttainabilityReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    as_of = serializers.DateTimeField()
    window_days = serializers.IntegerField(help_text="The program's attainability window.")
    current = AttainabilitySummaryOutput()
    proposed = AttainabilitySummaryOutput(allow_null=True, help_text="The report under the proposal (what-if only).")


class RewardCostInput(InputSerializer):
    reward_id = serializers.IntegerField(min_value=1)
    points_cost = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class WhatIfInput(InputSerializer, UnboundedProgramQuery):
    base_rate_multiplier = serializers.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=Decimal(100),
        required=False,
        help_text="Scales the points members earned through base-rate and multiplier rules (1.5: half as much "
        "again); fixed bonuses stay.",
    )
    reward_costs = RewardCostInput(many=True, required=False, help_text="Proposed costs of rewards on offer.")
    schema_required_groups = ("anyOf", [("base_rate_multiplier",), ("reward_costs",)])  # config.api.openapi

    def validate(self, data: dict) -> dict:
        if "base_rate_multiplier" not in data and not data.get("reward_costs"):
            raise serializers.ValidationError("Propose a base_rate_multiplier, reward_costs or both.")
        ids = [item["reward_id"] for item in data.get("reward_costs", [])]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError({"reward_costs": ["Each reward at most once."]})
        return data


class ReportView(ManageAPIView):
    required_permissions = {"GET": ("rewards.view_reward",), "POST": ("rewards.view_reward",)}


class AttainabilityView(ReportView):
    @extend_schema(
        operation_id="manage_attainability_report",
        tags=TAGS,
        parameters=[UnboundedProgramQuery],
        responses={200: AttainabilityReportOutput, **problems(400, 401, 403, 404)},
        summary="How close the program's members are to its rewards",
        description=DESCRIPTION + " Errors: validation_error (400, no program), program_not_found (404).",
    )
    def get(self, request: Request) -> Response:
        program = self.managed_program(parse(UnboundedProgramQuery, request.query_params)["program"])
        return Response(AttainabilityReportOutput(program_report(program=program)).data)


class AttainabilityWhatIfView(ReportView):
    @extend_schema(
        operation_id="manage_attainability_what_if",
        tags=TAGS,
        request=WhatIfInput,
        responses={200: AttainabilityReportOutput, **problems(400, 401, 403, 404, 415)},
        summary="The attainability report under a proposed base rate or reward costs (writes nothing)",
        description=DESCRIPTION + " `proposed` recomputes it from the same members' recorded pace with the "
        "rate-proportional part of their earnings scaled by `base_rate_multiplier` and the named rewards at "
        "their proposed costs; balances and tiers stay as they are. Errors: validation_error (400; also a "
        "reward that is not on offer in the program), program_not_found (404).",
    )
    def post(self, request: Request) -> Response:
        data = parse(WhatIfInput, request.data)
        program = self.managed_program(data["program"])
        costs = {item["reward_id"]: item["points_cost"] for item in data.get("reward_costs", [])}
        now = timezone.now()
        on_offer = set(rewards_on_offer(program_id=program.pk, now=now).values_list("pk", flat=True))
        if unknown := sorted(set(costs) - on_offer):
            raise serializers.ValidationError(
                {"reward_costs": [f"Not a reward on offer in {program.slug}: {', '.join(map(str, unknown))}."]}
            )
        what_if = WhatIf(base_rate_multiplier=data.get("base_rate_multiplier"), reward_costs=costs)
        return Response(AttainabilityReportOutput(program_report(program=program, what_if=what_if, now=now)).data)
