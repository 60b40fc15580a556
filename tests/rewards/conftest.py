from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from loyalty.services.ledger import ledger_credit
from rewards.models import Reward, RewardKind


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The voucher-guess counters live in the cache, keyed by API key id and IP."""
    cache.clear()
    yield
    cache.clear()


def make_reward(program, **fields) -> Reward:
    defaults = {
        "name": "5 EUR off",
        "kind": RewardKind.FIXED_DISCOUNT,
        "value": Decimal("5.00"),
        "points_cost": 100,
    }
    return Reward.objects.create(program=program, **{**defaults, **fields})


def fund(member, amount: int, *, expires_in_days: int | None = None, age_days: int = 1):
    """A lot of `amount` points earned `age_days` ago, expiring `expires_in_days` from now (None: never)."""
    now = timezone.now()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
    return ledger_credit(
        member=member, amount=amount, occurred_at=now - timedelta(days=age_days), expires_at=expires_at
    )


@pytest.fixture
def reward(program):
    return make_reward(program)


@pytest.fixture
def funded_member(member):
    fund(member, 1000)
    return member
