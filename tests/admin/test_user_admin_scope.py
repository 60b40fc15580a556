"""Users and groups span programs: only superusers reach them in the admin."""

import pytest

from members.app_auth import member_app_user_set
from tests.admin.utils import grant, url
from tests.clients import PASSWORD
from tests.factories import MemberFactory, ProgramFactory, StaffFactory, SuperuserFactory


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def other_members_user(db):
    member = MemberFactory(program=ProgramFactory(), email="bea@example.com")
    return member_app_user_set(member=member, password=PASSWORD)


@pytest.fixture
def user_manager(client, manager):
    """A manager of one program holding every auth permission on users and groups."""
    manager = grant(manager, "view_user", "change_user", "add_user", "delete_user", "view_group", "change_group")
    client.force_login(manager)
    return manager


def test_a_manager_with_user_permissions_sees_no_user_list(client, user_manager, other_members_user):
    response = client.get(url("auth_user_changelist"))

    assert response.status_code == 403
    assert b"bea@example.com" not in response.content
    assert client.get(url("auth_user_change", other_members_user.pk)).status_code == 403
    assert client.get(url("auth_group_changelist")).status_code == 403
    index = client.get(url("index"))
    assert index.status_code == 200 and b"/admin/auth/user/" not in index.content


def test_a_manager_cannot_set_another_programs_member_password(client, user_manager, other_members_user):
    password_url = url("auth_user_password_change", other_members_user.pk)

    assert client.get(password_url).status_code == 403
    response = client.post(password_url, {"password1": "taken-over-9-long", "password2": "taken-over-9-long"})

    assert response.status_code == 403
    other_members_user.refresh_from_db()
    assert other_members_user.check_password(PASSWORD)


def test_a_manager_cannot_make_themselves_superuser(client, user_manager):
    change_url = url("auth_user_change", user_manager.pk)
    response = client.post(change_url, {"username": user_manager.username, "is_superuser": "on"})

    assert response.status_code == 403
    user_manager.refresh_from_db()
    assert not user_manager.is_superuser


def test_a_superuser_manages_users(client, other_members_user):
    client.force_login(SuperuserFactory(email="", password=PASSWORD))

    listing = client.get(url("auth_user_changelist"))
    password_url = url("auth_user_password_change", other_members_user.pk)
    changed = client.post(password_url, {"password1": "new-long-secret-19", "password2": "new-long-secret-19"})

    assert listing.status_code == 200 and b"bea@example.com" in listing.content
    assert changed.status_code == 302
    other_members_user.refresh_from_db()
    assert other_members_user.check_password("new-long-secret-19")


def test_a_plain_staff_user_without_permissions_sees_no_user_admin(client, db):
    client.force_login(StaffFactory(permissions=[]))

    assert client.get(url("auth_user_changelist")).status_code == 403


def test_admin_sign_in_records_are_for_superusers_only(client, manager):
    client.force_login(grant(manager, "view_accessattempt", "view_accesslog", "view_accessfailurelog"))

    for name in ("accessattempt", "accesslog", "accessfailurelog"):
        assert client.get(url(f"axes_{name}_changelist")).status_code == 403
