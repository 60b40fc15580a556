"""API clients of the three audiences: a till (its API key), a manager (authenticated as the user), a member (an app
token)."""

from rest_framework.test import APIClient

from members.app_auth import member_app_login, member_app_user_set
from members.models import Member, Program
from tests.factories import ApiKeyFactory, StaffFactory

# The app password tests give members (the app tests speed hashing up with a cheap hasher).
PASSWORD = "plum-tree-harbour-42"


def pos_client_for(program: Program, name: str = "Till", store: str = "") -> APIClient:
    """A till of `program` with a key of its own (limited to `store` if given)."""
    return key_client(ApiKeyFactory(program=program, name=name, store=store).plain)


def key_client(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def staff_client(user) -> APIClient:
    """A manager API client authenticated as `user` (without a token)."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def app_client_for(member: Member) -> APIClient:
    """An app client signed in as `member` (given a password first when needed)."""
    if member.user_id is None:
        member_app_user_set(member=member, password=PASSWORD)
    _, token = member_app_login(program_slug=member.program.slug, email=member.email, password=PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def staff_client_for(program: Program, permissions: list[str] | None = None) -> APIClient:
    """A manager API client of a new manager of `program`, with `permissions` (None: the usual manager's)."""
    return staff_client(StaffFactory(programs=[program], permissions=permissions))
