"""Member app API for rewards and vouchers: /api/app/v1/me/rewards/ and me/vouchers/ (see urls.py)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.app import AppAPIView
from config.api.input import parse
from config.api.problems import problems
from members.exceptions import DomainError
from members.ids import row_id
from rewards.apis.app_serializers import AppRewardOutput, AppVoucherOutput, RedeemInput
from rewards.apis.serializers import RedemptionOutput, redemption_body
from rewards.attainability import member_reward_list, rewards_on_offer
from rewards.exceptions import RewardNotFound
from rewards.models import Reward, Voucher
from rewards.selectors import reward_get
from rewards.services import reward_redeem

TAGS = ["Member app"]


class MeRewardListView(AppAPIView):
    queryset = Reward.objects.none()  # for the schema; requests use rewards_on_offer()

    @extend_schema(
        operation_id="app_me_rewards",
        tags=TAGS,
        responses={200: AppRewardOutput(many=True), **problems(401, 403, 429)},
        summary="The rewards on offer, with how close the member is to each",
        description="Cheapest first. `attainability` compares the cost with the member's available points and "
        "estimates, from the member's earning pace over the program's window (points earned less returned, per "
        "day), when the gap closes and how many of the member's points expire before then; `blocked_by` tells "
        "why a reward cannot be redeemed now. Answered in a fixed number of queries, whatever the number of "
        "rewards.",
    )
    def get(self, request: Request) -> Response:
        member, now = self.member, timezone.now()
        assert member is not None  # IsAppMember let the request through
        rewards = self.paginate_queryset(rewards_on_offer(program_id=member.program_id, now=now))
        assert rewards is not None  # the view paginates (AppAPIView.pagination_class)
        items = member_reward_list(member=member, rewards=rewards, now=now)
        return self.get_paginated_response(AppRewardOutput(items, many=True).data)


class RewardCostChanged(DomainError):
    code = "reward_cost_changed"
    title = "The reward's cost changed since the app showed it"


class MeRewardRedeemView(AppAPIView):
    @extend_schema(
        operation_id="app_me_reward_redeem",
        tags=TAGS,
        request=RedeemInput,
        responses={201: RedemptionOutput, 200: RedemptionOutput, **problems(400, 401, 403, 404, 409, 422, 429)},
        summary="Redeem a reward: spend the points, get a voucher",
        description="Errors: reward_not_found (404, also for another program's reward), reward_inactive, "
        "reward_out_of_stock, reward_limit_reached, reward_tier_required, insufficient_points, "
        "member_suspended, reward_cost_changed (422), unknown_field or validation_error (400). With an "
        "Idempotency-Key a retry returns the same voucher "
        "and spends nothing more.",
    )
    def post(self, request: Request, reward_id: str) -> Response:
        member = self.member
        assert member is not None  # IsAppMember let the request through
        reward = reward_get(program=member.program, reward_id=row_id(reward_id, RewardNotFound))
        expected = parse(RedeemInput, request.data).get("expected_points_cost")
        if expected is not None and expected != reward.points_cost:
            raise RewardCostChanged(points_cost=reward.points_cost)
        result = reward_redeem(
            member=member, reward=reward, key=self.ledger_key(request), savepoint=not self.in_request_transaction
        )
        return Response(RedemptionOutput(redemption_body(result)).data, status=200 if result.replayed else 201)


class MeVoucherListView(AppAPIView):
    queryset = Voucher.objects.none()  # for the schema; requests use the member's vouchers

    @extend_schema(
        operation_id="app_me_vouchers",
        tags=TAGS,
        responses={200: AppVoucherOutput(many=True), **problems(401, 403, 429)},
        summary="The member's vouchers, newest first",
        description="Codes are grouped for display (XXXX-XXXX-XXXX). An issued voucher past its expiry is "
        "shown as expired.",
    )
    def get(self, request: Request) -> Response:
        assert self.member is not None  # IsAppMember let the request through
        vouchers = Voucher.objects.filter(member_id=self.member.pk).select_related("reward")
        page = self.paginate_queryset(vouchers.order_by("-issued_at", "-id"))
        data = AppVoucherOutput(page, many=True, context={"now": timezone.now()}).data
        return self.get_paginated_response(data)
