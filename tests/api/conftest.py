import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from loyalty.services.ledger import ledger_credit
from members.expiry import ExpiryPolicy
from tests.factories import ProgramFactory


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


@pytest.fixture
def funded(member):
    """`member` with 100 available points."""
    ledger_credit(member=member, amount=100)
    return member


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    """The OpenAPI schema as JSON, fetched once per module."""
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content
    return json.loads(response.content)
