import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from members.app_auth import member_app_user_set
from tests.clients import PASSWORD, app_client_for
from tests.factories import MemberFactory


@pytest.fixture(autouse=True)
def _fast_hashing_and_fresh_counters(settings):
    """A cheap hasher keeps the many sign-ins fast; throttle counters live in the cache."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def app_member(program):
    member = MemberFactory(program=program, email="jana@example.com", card="400012345678", phone="+420111222333")
    member_app_user_set(member=member, password=PASSWORD)
    return member


@pytest.fixture
def app_client(app_member):
    return app_client_for(app_member)


@pytest.fixture
def client():
    """An app client without a token (DRF's, so bodies go as JSON)."""
    return APIClient()
