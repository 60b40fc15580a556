"""Reads of rewards and vouchers that are more than a one-line queryset."""

from members.models import Program

from .exceptions import RewardNotFound
from .models import Reward


def reward_get(*, program: Program, reward_id: int) -> Reward:
    """The program's reward with this id, or RewardNotFound (another program's reward included)."""
    reward = Reward.objects.filter(program=program, pk=reward_id).first()
    if reward is None:
        raise RewardNotFound()
    return reward
