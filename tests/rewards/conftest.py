import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The voucher-guess counters live in the cache, keyed by API key id and IP."""
    cache.clear()
    yield
    cache.clear()
