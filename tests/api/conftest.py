import pytest
from django.core.cache import cache

from members.expiry import ExpiryPolicy

from ..factories import ProgramFactory


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle counters live in the cache, keyed by API key or user id, which the database may reuse."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def expiring_program(db):
    """Points expire 10 days after earning; members are warned 30 days ahead."""
    return ProgramFactory(expiry_policy=ExpiryPolicy.DAYS, expiry_period=10, expiry_warning_days=30)
