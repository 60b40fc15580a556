"""Member app API for rewards and vouchers: /api/app/v1/me/rewards/ and me/vouchers/ (see app_urls)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import AppAPIView, parse, problems
from loyalty.models import Account
from loyalty.ruleset import program_ruleset
from members.exceptions import DomainError
from members.models import Member, MemberStatus

from ..exceptions import RewardNotFound
from ..models import Reward, Voucher, VoucherStatus
from ..selectors import reward_get
from ..services import reward_redeem
from .app_serializers import AppRewardOutput, AppVoucherOutput, RedeemInput
from .serializers import RedemptionOut

TAGS = ["Member app"]


def visible_rewards(*, member: Member, now: datetime) -> QuerySet[Reward]:
    """The rewards of the member's program on offer now, cheapest first. Rewards for a higher
    tier are listed too (what the member is working towards), marked as not redeemable."""
    return (
        Reward.objects.filter(program_id=member.program_id, is_active=True)
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=now))
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=now))
        .select_related("min_tier")
        .order_by("points_cost", "id")
    )


@dataclass(frozen=True)
class MemberStanding:
    """What decides, for any reward, whether the member can redeem it now: read once per list."""

    suspended: bool
    available: int
    tier_rank: int | None
    held: dict[int, int]  # reward id -> vouchers held (not cancelled)

    @classmethod
    def of(cls, member: Member, rewards: list[Reward]) -> "MemberStanding":
        account = Account.objects.select_related("tier").filter(pk=member.pk).first()
        ruleset = program_ruleset(member.program)
        tier = (ruleset.tier(account.tier_id) or account.tier) if account and account.tier_id else None
        limited = [reward.pk for reward in rewards if reward.per_member_limit is not None]
        held = (
            Voucher.objects.filter(member_id=member.pk, reward_id__in=limited)
            .exclude(status=VoucherStatus.CANCELLED)
            .values("reward_id")
            .annotate(count=Count("id"))
            if limited
            else []
        )
        return cls(
            suspended=member.status != MemberStatus.ACTIVE,
            available=account.available if account else 0,
            tier_rank=tier.rank if tier else None,
            held={row["reward_id"]: row["count"] for row in held},
        )

    def blocked_by(self, reward: Reward, required_rank: int | None) -> str | None:
        """The error redeeming would answer, checked in the order reward_redeem checks."""
        if self.suspended:
            return "member_suspended"
        if required_rank is not None and (self.tier_rank is None or self.tier_rank < required_rank):
            return "reward_tier_required"
        if reward.stock is not None and reward.stock <= 0:
            return "reward_out_of_stock"
        if reward.per_member_limit is not None and self.held.get(reward.pk, 0) >= reward.per_member_limit:
            return "reward_limit_reached"
        if self.available < reward.points_cost:
            return "insufficient_points"
        return None


def reward_item(reward: Reward, standing: MemberStanding, required_rank: int | None) -> dict:
    cost, available = reward.points_cost, standing.available
    blocked_by = standing.blocked_by(reward, required_rank)
    return {
        "id": reward.pk,
        "name": reward.name,
        "description": reward.description,
        "kind": reward.kind,
        "value": reward.value,
        "points_cost": cost,
        "min_tier": {"id": reward.min_tier.pk, "name": reward.min_tier.name} if reward.min_tier else None,
        "min_basket": reward.min_basket,
        "active_until": reward.active_until,
        "stock": reward.stock,
        "voucher_valid_days": reward.voucher_valid_days,
        "blocked_by": blocked_by,
        "attainability": {
            "cost": cost,
            "available": available,
            "gap": max(0, cost - available),
            "progress": round(min(1.0, available / cost), 4),
            "redeemable_now": blocked_by is None,
        },
    }


class MeRewardListView(AppAPIView):
    queryset = Reward.objects.none()  # for the schema; requests use visible_rewards()

    @extend_schema(
        operation_id="app_me_rewards",
        tags=TAGS,
        responses={200: AppRewardOutput(many=True), **problems(401, 403, 429)},
        summary="The rewards on offer, with how close the member is to each",
        description="Cheapest first. `attainability` compares the cost with the member's available points; "
        "`blocked_by` tells why a reward cannot be redeemed now. Answered in a fixed number of queries.",
    )
    def get(self, request: Request) -> Response:
        member = self.member
        rewards = self.paginate_queryset(visible_rewards(member=member, now=timezone.now()))
        standing = MemberStanding.of(member, rewards)
        ruleset = program_ruleset(member.program)
        items = []
        for reward in rewards:
            required = ruleset.tier(reward.min_tier_id) or reward.min_tier if reward.min_tier_id else None
            items.append(reward_item(reward, standing, required.rank if required else None))
        return self.get_paginated_response(AppRewardOutput(items, many=True).data)


class RewardCostChanged(DomainError):
    code = "reward_cost_changed"
    title = "The reward's cost changed since the app showed it"


def _reward_id(value: str) -> int:
    """A reward id from the URL, or RewardNotFound: never a 500 for '1.5' or 10**30."""
    if not (value.isascii() and value.isdigit() and int(value) < 2**63):
        raise RewardNotFound()
    return int(value)


class MeRewardRedeemView(AppAPIView):
    @extend_schema(
        operation_id="app_me_reward_redeem",
        tags=TAGS,
        request=RedeemInput,
        responses={201: RedemptionOut, 200: RedemptionOut, **problems(401, 403, 404, 409, 422, 429)},
        summary="Redeem a reward: spend the points, get a voucher",
        description="Errors: reward_not_found (404, also for another program's reward), reward_inactive, "
        "reward_out_of_stock, reward_limit_reached, reward_tier_required, insufficient_points, "
        "member_suspended, reward_cost_changed (422). With an Idempotency-Key a retry returns the same voucher "
        "and spends nothing more.",
    )
    def post(self, request: Request, reward_id: str) -> Response:
        member = self.member
        reward = reward_get(program=member.program, reward_id=_reward_id(reward_id))
        expected = parse(RedeemInput, request.data).get("expected_points_cost")
        if expected is not None and expected != reward.points_cost:
            raise RewardCostChanged(points_cost=reward.points_cost)
        result = reward_redeem(member=member, reward=reward, key=self.ledger_key(request))
        voucher = result.voucher
        body = {
            "id": voucher.pk,
            "code": voucher.display_code,
            "member_id": member.pk,
            "reward": {"id": reward.pk, "name": reward.name},
            "kind": voucher.kind,
            "value": voucher.value,
            "min_basket": voucher.min_basket,
            "status": voucher.status,
            "expires_at": voucher.expires_at,
            "points_spent": voucher.points_cost,
            "balances": result.balances,
        }
        return Response(RedemptionOut(body).data, status=200 if result.replayed else 201)


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
        vouchers = Voucher.objects.filter(member_id=self.member.pk).select_related("reward")
        page = self.paginate_queryset(vouchers.order_by("-issued_at", "-id"))
        data = AppVoucherOutput(page, many=True, context={"now": timezone.now()}).data
        return self.get_paginated_response(data)
