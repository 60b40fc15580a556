"""Manager API: authentication, staff status and Django permissions on every endpoint."""

import pytest
from rest_framework.test import APIClient, APIRequestFactory

from config.api.manage import IsProgramStaff
from members.tokens import access_token_create
from tests.api.utils import MANAGE_MEMBERS_URL, PROBLEM, adjust_url, assert_problem, db_state, manage_member_url
from tests.clients import pos_client_for, staff_client
from tests.factories import MemberFactory, StaffFactory


@pytest.fixture
def roster(program, other_program):
    """Ana and Bob of the manager's program; Ana's namesake in another program."""
    ana = MemberFactory(program=program, first_name="Ana", email="ana@example.com")
    bob = MemberFactory(program=program, first_name="Bob", email="bob@example.com")
    outsider = MemberFactory(program=other_program, first_name="Ana", email="ana@example.com")
    return {"ana": ana, "bob": bob, "outsider": outsider}


def _ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


MANAGE_READS = [
    pytest.param(lambda roster: MANAGE_MEMBERS_URL, id="list"),
    pytest.param(lambda roster: manage_member_url(roster["ana"].pk), id="detail"),
]


@pytest.mark.parametrize("url", MANAGE_READS)
def test_anonymous_is_not_authenticated(roster, url):
    response = APIClient().get(url(roster))

    # DRF answers 403 when the first authentication class (session) has no WWW-Authenticate challenge
    assert response.status_code in (401, 403)
    assert_problem(response, response.status_code, "not_authenticated")
    assert "ana@example.com" not in response.content.decode()


def test_anonymous_cannot_adjust(roster):
    before = db_state()

    response = APIClient().post(adjust_url(roster["ana"].pk), {"points": 10, "reason": "x"}, format="json")

    assert response.status_code in (401, 403)
    assert_problem(response, response.status_code, "not_authenticated")
    assert db_state() == before


@pytest.mark.parametrize("url", MANAGE_READS)
def test_staff_without_permission_is_denied(program, roster, url):
    user = StaffFactory(permissions=[], programs=[program])

    response = staff_client(user).get(url(roster))

    assert_problem(response, 403, "permission_denied")
    assert "ana@example.com" not in response.content.decode()


@pytest.mark.parametrize("url", MANAGE_READS)
def test_non_staff_user_is_denied_even_with_permissions(program, roster, url):
    user = StaffFactory(is_staff=False, programs=[program])

    assert_problem(staff_client(user).get(url(roster)), 403, "permission_denied")


@pytest.mark.parametrize("url", MANAGE_READS)
def test_inactive_staff_is_denied(program, roster, url):
    user = StaffFactory(is_active=False, programs=[program])

    assert_problem(staff_client(user).get(url(roster)), 403, "permission_denied")


def test_viewing_does_not_allow_adjusting(program, roster):
    viewer = StaffFactory(permissions=["view_member"], programs=[program])
    client = staff_client(viewer)
    assert client.get(manage_member_url(roster["ana"].pk)).status_code == 200
    before = db_state()

    response = client.post(adjust_url(roster["ana"].pk), {"points": 10, "reason": "Goodwill"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert db_state() == before


def test_non_staff_cannot_adjust(program, roster):
    user = StaffFactory(is_staff=False, programs=[program])
    before = db_state()

    response = staff_client(user).post(adjust_url(roster["ana"].pk), {"points": 10, "reason": "x"}, format="json")

    assert_problem(response, 403, "permission_denied")
    assert db_state() == before


def test_token_authentication(manager, roster):
    token = access_token_create(user=manager)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert _ids(client.get(MANAGE_MEMBERS_URL)) == [roster[n].pk for n in ("ana", "bob")]


def test_invalid_token_is_rejected(roster):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = client.get(MANAGE_MEMBERS_URL)

    assert response.status_code in (401, 403)
    assert_problem(response, response.status_code, "authentication_failed")


def test_session_authentication(manager, roster):
    client = APIClient()
    client.force_login(manager)

    assert _ids(client.get(MANAGE_MEMBERS_URL)) == [roster[n].pk for n in ("ana", "bob")]


def test_pos_api_key_does_not_open_the_manager_api(program, roster):
    response = pos_client_for(program).get(MANAGE_MEMBERS_URL)

    assert response.status_code in (401, 403)
    assert response["Content-Type"] == PROBLEM
    assert "ana@example.com" not in response.content.decode()


# --- Declared permissions fail closed ---------------------------------------------------------------


class _DeclaresOnlyPost:
    """A view that answers GET, POST, PATCH and OPTIONS but declares permissions for POST only."""

    required_permissions = {"POST": ("loyalty.adjust_points",)}

    def options(self): ...

    def get(self): ...

    def post(self): ...

    def patch(self): ...


@pytest.mark.parametrize(
    ("method", "perms", "allowed"),
    [
        ("POST", [], False),
        ("POST", ["adjust_points"], True),
        ("GET", ["adjust_points"], False),  # nothing declared for GET: refused, whatever the user holds
        ("PATCH", ["adjust_points"], False),
        ("OPTIONS", [], False),  # OPTIONS of a write-only view needs what its writes need
        ("OPTIONS", ["adjust_points"], True),
    ],
)
def test_a_method_without_declared_permissions_is_refused(db, method, perms, allowed):
    request = APIRequestFactory().generic(method, "/")
    request.user = StaffFactory(permissions=perms)

    assert IsProgramStaff().has_permission(request, _DeclaresOnlyPost()) is allowed


def test_options_of_a_write_only_endpoint_is_refused_without_its_permission(program, roster):
    user = StaffFactory(permissions=[], programs=[program])

    response = staff_client(user).options(adjust_url(roster["ana"].pk))

    assert_problem(response, 403, "permission_denied")


def test_options_answers_the_endpoint_without_a_server_error(manager, roster):
    response = staff_client(manager).options(adjust_url(roster["ana"].pk))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "name": "Manage Adjustment",
        "description": "",
        "renders": ["application/json"],
        "parses": ["application/json"],
    }
