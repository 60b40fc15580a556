"""Manager API for rewards: the catalog, vouchers and campaigns. Mounted under /api/manage/v1/ (see rewards.apis.urls).

Scoped like the rest of the manager surface: a reward or voucher of a program the user does not
manage answers 404 exactly like one that does not exist, and so does a `program` slug they do not
manage. Rewards are written through `reward_save` (the model's validators, `clean()` and check
constraints); its errors answer 400 `validation_error` per field and nothing is written. Vouchers
are read-only here except for cancelling, which goes through `voucher_cancel` as in the admin.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.input import parse
from config.api.manage import ManageAPIView, ProgramRowsView, field_errors, requires
from config.api.problems import problems
from loyalty.models import Tier
from loyalty.selectors import member_balances
from members.access import access_program_by_slug
from members.models import Program
from rewards.apis.filters import RewardFilter, VoucherFilter
from rewards.apis.manage_serializers import (
    RewardCreateInput,
    RewardInput,
    RewardOutput,
    VoucherCancelInput,
    VoucherCancelOutput,
    VoucherOutput,
)
from rewards.apis.serializers import CampaignInput, CampaignOutput
from rewards.exceptions import RewardNotFound, VoucherNotFound
from rewards.models import Reward, Voucher
from rewards.selectors import campaign_members, reward_get
from rewards.services import campaign_issue, reward_save, voucher_cancel

TAGS = ["Manage: rewards"]

VIEW_REWARD, ADD_REWARD, CHANGE_REWARD = "rewards.view_reward", "rewards.add_reward", "rewards.change_reward"
VIEW_VOUCHER, CANCEL_VOUCHER = "rewards.view_voucher", "rewards.cancel_voucher"


def path_id(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, OpenApiParameter.PATH, description=f"The {what}'s id.")


REWARD_ID, VOUCHER_ID = path_id("reward_id", "reward"), path_id("voucher_id", "voucher")


def _resolve_tier(data: dict[str, Any], program: Program) -> dict[str, list[str]]:
    """Replaces the `min_tier` id in `data` by the program's tier; an error when it has no such tier."""
    tier_id = data.get("min_tier")
    if tier_id is None:
        return {}
    tier = Tier.objects.filter(program=program, pk=tier_id).first()
    if tier is None:
        del data["min_tier"]
        return {"min_tier": [f"No tier of {program.slug} has the id {tier_id}."]}
    data["min_tier"] = tier
    return {}


def _saved(reward: Reward, fields: list[str] | None, errors: dict[str, list[str]]) -> Reward:
    """Saves through the service; the API's own checks (`errors`) are reported with the model's."""
    try:
        if errors:
            reward.full_clean(exclude=list(errors))
            raise serializers.ValidationError(errors)
        return reward_save(reward=reward, fields=fields)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({**field_errors(exc), **errors}) from exc


class ProgramFilterMixin:
    """A `program` filter naming a program the user does not manage is 404, not an empty page."""

    def check_program_filter(self, request: Request) -> None:
        slug = request.query_params.get("program")
        if slug is not None:
            access_program_by_slug(request.user, slug)


# --- Rewards --------------------------------------------------------------------------------------


class RewardView(ProgramFilterMixin, ProgramRowsView):
    model = Reward
    queryset = Reward.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("min_tier").order_by("program__slug", "points_cost", "id")

    def get_reward(self) -> Reward:
        return self.get_row("reward_id", RewardNotFound)


class RewardListView(RewardView):
    required_permissions = {"GET": (VIEW_REWARD,), "POST": (ADD_REWARD,), "*": (VIEW_REWARD,)}
    filterset_class = RewardFilter
    serializer_class = RewardOutput

    @extend_schema(
        operation_id="manage_reward_list",
        tags=TAGS,
        responses={200: RewardOutput(many=True), **problems(400, 401, 403, 404)},
        summary="Rewards of the programs you manage",
        description="By program, then points cost. Filter by program slug (404 program_not_found for one you do "
        "not manage), is_active, kind, min_tier (tier id) or part of the name (q). " + requires(VIEW_REWARD),
    )
    def get(self, request: Request) -> Response:
        self.check_program_filter(request)
        return self.list_response(RewardOutput)

    @extend_schema(
        operation_id="manage_reward_create",
        tags=TAGS,
        request=RewardCreateInput,
        responses={201: RewardOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Add a reward to a program's catalog",
        description="Validated as in the admin: points_cost at least 1, a percent discount above 0 and at most "
        "100, a value for fixed discounts and free products, a SKU for free products, active_until after "
        "active_from, min_tier a tier of the same program; scope_skus and scope_categories (distinct, non-empty; "
        "both empty: the voucher applies to the whole basket) and min_basket (on the amount in scope) say where "
        "a voucher of the reward applies at the till. Errors: validation_error (400, per field), "
        "program_not_found (404, also for a program you do not manage). " + requires(ADD_REWARD),
    )
    def post(self, request: Request) -> Response:
        data = parse(RewardCreateInput, request.data)
        program = self.managed_program(data.pop("program"))
        errors = _resolve_tier(data, program)
        reward = _saved(Reward(program=program, **data), None, errors)
        return Response(RewardOutput(reward).data, status=201)


class RewardDetailView(RewardView):
    required_permissions = {"GET": (VIEW_REWARD,), "PATCH": (CHANGE_REWARD,), "*": (VIEW_REWARD,)}

    @extend_schema(
        operation_id="manage_reward_detail",
        parameters=[REWARD_ID],
        tags=TAGS,
        responses={200: RewardOutput, **problems(401, 403, 404)},
        summary="A reward",
        description="Error: reward_not_found (404, also for a reward of a program you do not manage). "
        + requires(VIEW_REWARD),
    )
    def get(self, request: Request, reward_id: str) -> Response:
        return Response(RewardOutput(self.get_reward()).data)

    @extend_schema(
        operation_id="manage_reward_update",
        parameters=[REWARD_ID],
        tags=TAGS,
        request=RewardInput,
        responses={200: RewardOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Change or switch off a reward",
        description="Only the fields sent change, and the whole reward is validated again; the program cannot "
        "change. `is_active: false` switches the reward off: members can no longer redeem it, vouchers already "
        "issued stay valid. Rewards are never deleted (vouchers point at them). Vouchers keep the kind, value, "
        "minimum basket and scope they were issued with. " + requires(CHANGE_REWARD),
    )
    def patch(self, request: Request, reward_id: str) -> Response:
        reward = self.get_reward()
        serializer = RewardInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        errors = _resolve_tier(data, reward.program)
        for name, value in data.items():
            setattr(reward, name, value)
        reward = _saved(reward, list(data), errors)
        return Response(RewardOutput(reward).data)


# --- Vouchers -------------------------------------------------------------------------------------


class VoucherView(ProgramFilterMixin, ProgramRowsView):
    model = Voucher
    queryset = Voucher.objects.none()

    def get_queryset(self) -> QuerySet:
        rows = super().get_queryset().select_related("reward", "cancelled_by")
        return rows.order_by("-issued_at", "-id")

    def get_voucher(self) -> Voucher:
        return self.get_row("voucher_id", VoucherNotFound)


class VoucherListView(VoucherView):
    required_permissions = {"GET": (VIEW_VOUCHER,), "*": (VIEW_VOUCHER,)}
    filterset_class = VoucherFilter
    serializer_class = VoucherOutput

    @extend_schema(
        operation_id="manage_voucher_list",
        tags=TAGS,
        responses={200: VoucherOutput(many=True), **problems(400, 401, 403, 404)},
        summary="Vouchers of the programs you manage, newest first",
        description="Filter by program slug (404 program_not_found for one you do not manage), status, reward id, "
        "member id, campaign name, code or issue time. " + requires(VIEW_VOUCHER),
    )
    def get(self, request: Request) -> Response:
        self.check_program_filter(request)
        return self.list_response(VoucherOutput)


class VoucherDetailView(VoucherView):
    required_permissions = {"GET": (VIEW_VOUCHER,), "*": (VIEW_VOUCHER,)}

    @extend_schema(
        operation_id="manage_voucher_detail",
        parameters=[VOUCHER_ID],
        tags=TAGS,
        responses={200: VoucherOutput, **problems(401, 403, 404)},
        summary="A voucher",
        description="Error: voucher_not_found (404, also for a voucher of a program you do not manage). "
        + requires(VIEW_VOUCHER),
    )
    def get(self, request: Request, voucher_id: str) -> Response:
        return Response(VoucherOutput(self.get_voucher()).data)


class VoucherCancelView(VoucherView):
    required_permissions = {"POST": (CANCEL_VOUCHER,), "*": (CANCEL_VOUCHER,)}

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().select_related("member__program")

    @extend_schema(
        operation_id="manage_voucher_cancel",
        parameters=[VOUCHER_ID],
        tags=TAGS,
        request=VoucherCancelInput,
        responses={200: VoucherCancelOutput, **problems(400, 401, 403, 404, 409, 415, 422)},
        summary="Cancel an unused voucher and give its points back",
        description="As the admin's action: the points go back to the lots they came from (with their expiry) "
        "and the reward's stock gets the voucher back. Errors: voucher_not_found (404), voucher_not_cancellable "
        "(409, a redeemed, expired or already cancelled voucher), voucher_expired (422, past its expiry but not "
        "yet marked). " + requires(CANCEL_VOUCHER),
    )
    def post(self, request: Request, voucher_id: str) -> Response:
        voucher = self.get_voucher()
        parse(VoucherCancelInput, request.data)
        voucher = voucher_cancel(voucher=voucher, actor=request.user)
        balances = member_balances(member=voucher.member) if voucher.member else None
        return Response(VoucherCancelOutput({"voucher": voucher, "balances": balances}).data)


# --- Campaigns ------------------------------------------------------------------------------------


class CampaignView(ManageAPIView):
    required_permissions = {"POST": ("rewards.add_voucher",)}

    @extend_schema(
        operation_id="manage_campaign_issue",
        tags=TAGS,
        request=CampaignInput,
        responses={201: CampaignOutput, **problems(400, 401, 403, 404, 409, 415, 422, 429)},
        summary="Issue a reward's voucher to every member of a segment, without spending points",
        description="One voucher per member selected by `filters` (all active members when left out), in one "
        "transaction. Errors: program_not_found (404, also for a program you do not manage), reward_not_found "
        "(404), validation_error (400). With an Idempotency-Key a retry issues nothing more.",
    )
    def post(self, request: Request) -> Response:
        data = parse(CampaignInput, request.data)
        program = self.managed_program(data["program"])
        reward = reward_get(program=program, reward_id=data["reward_id"])
        issued = campaign_issue(
            program=program,
            reward=reward,
            members_queryset=campaign_members(program=program, **data.get("filters", {})),
            campaign=data["campaign"],
            valid_days=data.get("valid_days"),
            actor=request.user,
        )
        return Response(CampaignOutput({"issued": issued}).data, status=201)
