"""The admin sign-in lockout (django-axes): per username and trusted client address, with a cool-off."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from tests.factories import SuperuserFactory

LOGIN_URL = "/admin/login/?next=/admin/"
PASSWORD = "admin-long-secret-17"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(db):
    return SuperuserFactory(username="alice", email="alice@example.com", password=PASSWORD)


def sign_in(password, username="alice", ip="10.0.0.1", **headers):
    client = Client()
    response = client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=ip, **headers)
    return client, response


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def fail(times, **kwargs):
    """Failed sign-ins; the statuses answered (200: the form again, 429: the lockout page)."""
    return [sign_in("wrong-password", **kwargs)[1].status_code for _ in range(times)]


def test_five_failures_lock_the_username_from_that_address_even_with_the_right_password(admin_user):
    assert fail(5) == [200, 200, 200, 200, 429]  # the fifth failure locks

    client, response = sign_in(PASSWORD)

    assert response.status_code == 429
    assert b"Sign-in temporarily locked" in response.content
    assert b"for 15 minutes after the last failure" in response.content  # the cool-off, in words
    assert not signed_in(client)
    assert AccessAttempt.objects.get(username="alice", ip_address="10.0.0.1").failures_since_start >= 5


def test_the_lock_is_per_username_and_address(admin_user):
    fail(5)

    other_address, _ = sign_in(PASSWORD, ip="10.0.0.2")

    assert signed_in(other_address)
    assert fail(1, username="bob") == [200]  # another username from the locked address is still judged on its own
    assert AccessAttempt.objects.get(username="bob").failures_since_start == 1


def test_a_forged_forwarded_for_does_not_escape_the_lock(admin_user, settings):
    settings.NUM_PROXIES = 0
    for n in range(5):
        sign_in("wrong-password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    client, response = sign_in(PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert response.status_code == 429 and not signed_in(client)


def test_behind_a_proxy_the_lock_keys_on_the_address_it_saw(admin_user, settings):
    settings.NUM_PROXIES = 1
    fail(5, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")

    locked, response = sign_in(PASSWORD, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7")
    free, _ = sign_in(PASSWORD, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.8")

    assert response.status_code == 429
    assert AccessAttempt.objects.filter(ip_address="198.51.100.7").exists()
    assert signed_in(free)


def test_the_lock_ends_after_the_cool_off(admin_user):
    fail(5)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))

    client, response = sign_in(PASSWORD)

    assert signed_in(client)


def test_axes_reset_lifts_the_lock(admin_user):
    fail(5)

    call_command("axes_reset_username", "alice")

    client, _ = sign_in(PASSWORD)
    assert signed_in(client)
