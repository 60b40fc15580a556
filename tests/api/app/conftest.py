import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from members.app_auth import member_app_login, member_app_user_set
from members.models import Member
from tests.factories import MemberFactory

PASSWORD = "plum-tree-harbour-42"


@pytest.fixture(autouse=True)
def _fast_hashing_and_fresh_counters(settings):
    """A cheap hasher keeps the many sign-ins fast; throttle counters live in the cache."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def client_for(member: Member) -> APIClient:
    """An app client signed in as `member` (given a password first when needed)."""
    if member.user_id is None:
        member_app_user_set(member=member, password=PASSWORD)
    _, token = member_app_login(program_slug=member.program.slug, email=member.email, password=PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def app_member(program):
    member = MemberFactory(program=program, email="jana@example.com", card="400012345678", phone="+420111222333")
    member_app_user_set(member=member, password=PASSWORD)
    return member


@pytest.fixture
def app_client(app_member):
    return client_for(app_member)


@pytest.fixture
def client():
    """An app client without a token (DRF's, so bodies go as JSON)."""
    return APIClient()
