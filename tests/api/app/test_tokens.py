"""Sign-in tokens: stored as digests, with a lifetime, and ended by every password change."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from members.app_auth import member_app_user_set
from members.models import AccessToken
from members.tokens import access_token_create, token_digest
from tests.api.app.utils import ME_URL
from tests.api.utils import assert_problem
from tests.clients import PASSWORD
from tests.factories import StaffFactory, SuperuserFactory

MANAGE_URL = "/api/manage/v1/members/"


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def signed_in_token(client: APIClient) -> str:
    return client._credentials["HTTP_AUTHORIZATION"].removeprefix("Token ")


@pytest.fixture
def superuser_client(db):
    client = Client()
    client.force_login(SuperuserFactory(email="", password=PASSWORD))
    return client


@pytest.fixture
def manager_token(manager):
    manager.set_password(PASSWORD)
    manager.save()
    return access_token_create(user=manager)


def test_only_digests_are_stored(app_client, app_member):
    token = signed_in_token(app_client)

    (row,) = AccessToken.objects.filter(user=app_member.user).values_list("digest", flat=True)
    assert row == token_digest(token) and token not in row
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM members_accesstoken WHERE digest = %s", [token])
        assert cursor.fetchone() == (0,)


def test_a_password_reset_in_the_admin_ends_the_members_tokens(superuser_client, app_client, app_member):
    assert app_client.get(ME_URL).status_code == 200
    password_url = f"/admin/auth/user/{app_member.user_id}/password/"

    new = {"password1": "new-long-secret-19", "password2": "new-long-secret-19"}
    response = superuser_client.post(password_url, new)

    assert response.status_code == 302
    assert_problem(app_client.get(ME_URL), 401, "authentication_failed")
    assert not AccessToken.objects.filter(user=app_member.user).exists()


def test_a_password_change_at_admin_password_change_ends_the_managers_tokens(manager, manager_token):
    assert token_client(manager_token).get(MANAGE_URL).status_code == 200
    browser = Client()
    browser.force_login(manager)

    response = browser.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "new-long-secret-19", "new_password2": "new-long-secret-19"},
    )

    assert response.status_code == 302
    assert_problem(token_client(manager_token).get(MANAGE_URL), 401, "authentication_failed")


def test_the_member_apps_password_change_ends_every_token_of_that_user_only(program, app_client, app_member):
    other_token = access_token_create(user=StaffFactory())

    member_app_user_set(member=app_member, password="another-long-secret-9")

    assert_problem(app_client.get(ME_URL), 401, "authentication_failed")
    assert AccessToken.objects.filter(digest=token_digest(other_token)).exists()


def test_saving_a_user_without_a_new_password_keeps_the_tokens(app_client, app_member):
    user = User.objects.get(pk=app_member.user_id)
    user.first_name = "Jana"
    user.save()
    User.objects.get(pk=app_member.user_id).save(update_fields=["last_login"])

    assert app_client.get(ME_URL).status_code == 200


def test_an_expired_token_answers_401(app_client, app_member, settings):
    settings.ACCESS_TOKEN_LIFETIME_HOURS = 24
    AccessToken.objects.update(created_at=AccessToken.objects.get().created_at - timedelta(hours=24, seconds=1))

    response = app_client.get(ME_URL)

    body = assert_problem(response, 401, "authentication_failed")
    assert body["detail"] == "The token has expired; sign in again."
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_within_its_lifetime_answers(app_client, settings):
    settings.ACCESS_TOKEN_LIFETIME_HOURS = 24
    AccessToken.objects.update(created_at=AccessToken.objects.get().created_at - timedelta(hours=23))

    assert app_client.get(ME_URL).status_code == 200


def test_the_command_prints_a_manager_token_once(manager, capsys):
    call_command("create_access_token", manager.username)

    token = capsys.readouterr().out.strip()
    assert AccessToken.objects.get(user=manager).digest == token_digest(token)
    assert token_client(token).get(MANAGE_URL).status_code == 200


def test_a_password_rehashed_on_sign_in_is_no_change(settings, program, app_client, app_member):
    # given: the member's hash made by a hasher the project no longer prefers
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert User.objects.get(pk=app_member.user_id).password.startswith("md5$")

    # when: signing in again re-hashes it with the preferred hasher
    APIClient().post(
        "/api/app/v1/auth/token/", {"program": program.slug, "email": app_member.email, "password": PASSWORD}
    )

    assert User.objects.get(pk=app_member.user_id).password.startswith("pbkdf2_sha256$")
    assert app_client.get(ME_URL).status_code == 200  # the other device stays signed in
