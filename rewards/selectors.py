"""Reads of rewards and vouchers that are more than a one-line queryset."""

from collections.abc import Sequence
from datetime import datetime

from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce

from members.ids import row_id
from members.models import Member, MemberStatus, Program
from rewards.exceptions import HoldNotFound, RewardNotFound
from rewards.models import Hold, Reward


def reward_get(*, program: Program, reward_id: int) -> Reward:
    """The program's reward with this id, or RewardNotFound (another program's reward included)."""
    reward = Reward.objects.filter(program=program, pk=reward_id).first()
    if reward is None:
        raise RewardNotFound()
    return reward


def hold_get(*, program: Program, hold_id: object) -> Hold:
    """The program's hold with this id, or HoldNotFound (another program's hold included)."""
    pk = row_id(hold_id, HoldNotFound)
    hold = Hold.objects.filter(program=program, pk=pk).select_related("member").first()
    if hold is None:
        raise HoldNotFound()
    return hold


def campaign_members(
    *,
    program: Program,
    status: str | None = MemberStatus.ACTIVE,
    enrolled_before: datetime | None = None,
    enrolled_after: datetime | None = None,
    available_min: int | None = None,
    available_max: int | None = None,
    member_ids: Sequence[int] | None = None,
) -> QuerySet[Member]:
    """The program's members a campaign targets; every filter left out matches everyone.
    A member without an account yet has 0 points available."""
    members = Member.objects.filter(program=program)
    if status is not None:
        members = members.filter(status=status)
    if enrolled_before is not None:
        members = members.filter(enrolled_at__lt=enrolled_before)
    if enrolled_after is not None:
        members = members.filter(enrolled_at__gte=enrolled_after)
    if available_min is not None or available_max is not None:
        members = members.annotate(points_available=Coalesce("account__available", Value(0)))
        if available_min is not None:
            members = members.filter(points_available__gte=available_min)
        if available_max is not None:
            members = members.filter(points_available__lte=available_max)
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    return members
