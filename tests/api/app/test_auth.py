"""Member app sign-in and sign-out: tokens, failures, throttling, and who may use the app."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from members.app_auth import member_app_user_set
from members.models import AccessToken, MemberStatus
from members.services.members import member_close
from members.tokens import access_token_create, token_digest
from tests.api.app.utils import (
    EXPORT_URL,
    LEDGER_URL,
    LOGIN_URL,
    LOGOUT_URL,
    ME_URL,
    REWARDS_URL,
    TIER_URL,
    VOUCHERS_URL,
    redeem_url,
)
from tests.api.utils import assert_problem
from tests.clients import PASSWORD
from tests.factories import MemberFactory, ProgramFactory, StaffFactory


def login(client, program, password=PASSWORD, ip="10.0.0.1", HTTP_X_FORWARDED_FOR=None, **identifier):
    headers = {"HTTP_X_FORWARDED_FOR": HTTP_X_FORWARDED_FOR} if HTTP_X_FORWARDED_FOR else {}
    body = {"program": program.slug, **identifier, "password": password}
    return client.post(LOGIN_URL, body, REMOTE_ADDR=ip, **headers)


def test_signing_in_by_email_gives_a_token_that_names_the_member(client, program, app_member):
    response = login(client, program, email=" JANA@example.com ")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["member_id"] == app_member.pk
    assert AccessToken.objects.get(user=app_member.user).digest == token_digest(body["token"])  # never the token
    me = APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.status_code == 200 and me.json()["id"] == app_member.pk


def test_signing_in_by_card_as_printed(client, program, app_member):
    response = login(client, program, card="4000-1234-5678")

    assert response.status_code == 200, response.content
    assert response.json()["member_id"] == app_member.pk


def test_each_sign_in_gets_its_own_token_and_both_work(client, program, app_member):
    first = login(client, program, email="jana@example.com").json()["token"]
    second = login(client, program, email="jana@example.com").json()["token"]

    assert first != second and AccessToken.objects.count() == 2
    for token in (first, second):
        assert APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


@pytest.mark.parametrize(
    "case",
    ["wrong_password", "unknown_email", "other_program", "no_password_set", "closed", "inactive_program"],
)
def test_every_failed_sign_in_answers_alike_and_issues_no_token(client, program, app_member, case):
    identifier, password, target = {"email": "jana@example.com"}, PASSWORD, program
    if case == "wrong_password":
        password = "not-the-password"
    elif case == "unknown_email":
        identifier = {"email": "nobody@example.com"}
    elif case == "other_program":
        target = ProgramFactory()
    elif case == "no_password_set":
        identifier = {"email": MemberFactory(program=program).email}
    elif case == "closed":
        member_close(member=app_member)
    elif case == "inactive_program":
        program.is_active = False
        program.save(update_fields=["is_active"])

    response = login(client, target, password=password, **identifier)

    body = assert_problem(response, 401, "invalid_credentials")
    assert body["detail"] == "The program, email or card, or password is not valid"
    assert response["WWW-Authenticate"] == "Token"
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    "data",
    [{"password": PASSWORD}, {"email": "jana@example.com", "card": "400012345678", "password": PASSWORD}, {}],
)
def test_sign_in_needs_exactly_one_identifier(client, program, app_member, data):
    response = client.post(LOGIN_URL, {"program": program.slug, **data})

    assert_problem(response, 400, "validation_error")
    assert not AccessToken.objects.exists()


def test_ten_failures_from_one_address_throttle_every_sign_in_from_it(client, program, app_member):
    for n in range(10):
        assert_problem(
            login(client, program, password="wrong", email=f"guess{n}@example.com"), 401, "invalid_credentials"
        )

    response = login(client, program, email="jana@example.com")  # right password, same address

    assert_problem(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert not AccessToken.objects.exists()
    assert login(client, program, email="jana@example.com", ip="10.0.0.2").status_code == 200


def test_ten_failures_for_one_email_throttle_it_from_any_address(client, program, app_member):
    for n in range(10):
        login(client, program, password="wrong", email="jana@example.com", ip=f"10.0.1.{n}")

    assert_problem(login(client, program, email="JANA@example.com", ip="10.0.2.1"), 429, "throttled")
    assert login(client, program, card="400012345678", ip="10.0.2.2").status_code == 200  # others are not blocked


def test_successful_sign_ins_are_not_counted(client, program, app_member):
    for _ in range(12):
        assert login(client, program, email="jana@example.com").status_code == 200


def test_signing_out_deletes_the_token(app_client, app_member):
    assert app_client.get(ME_URL).status_code == 200

    response = app_client.post(LOGOUT_URL)

    assert response.status_code == 200 and response.json() == {"signed_out": True}
    assert not AccessToken.objects.filter(user=app_member.user).exists()
    assert_problem(app_client.get(ME_URL), 401, "authentication_failed")


def test_signing_out_needs_a_token(client):
    response = client.post(LOGOUT_URL)

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", ME_URL),
        ("patch", ME_URL),
        ("get", LEDGER_URL),
        ("get", TIER_URL),
        ("get", REWARDS_URL),
        ("post", redeem_url(1)),
        ("get", VOUCHERS_URL),
        ("get", EXPORT_URL),
    ],
)
def test_every_endpoint_needs_a_token(client, app_member, method, url):
    response = getattr(client, method)(url, {"first_name": "X"} if method == "patch" else None)

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    bad = getattr(client, method)(url, HTTP_AUTHORIZATION="Token not-a-token")
    assert_problem(bad, 401, "authentication_failed")


def test_a_token_without_a_member_is_refused(client, program):
    staff = StaffFactory()
    token = access_token_create(user=staff)

    response = client.get(ME_URL, HTTP_AUTHORIZATION=f"Token {token}")

    assert_problem(response, 403, "permission_denied")


def test_a_closed_member_loses_the_app_but_may_sign_out(app_client, app_member):
    member_close(member=app_member)

    assert_problem(app_client.get(ME_URL), 403, "permission_denied")
    assert app_client.post(LOGOUT_URL).status_code == 200


def test_setting_a_password_creates_and_links_one_user(program):
    member = MemberFactory(program=program)

    user = member_app_user_set(member=member, password=PASSWORD)

    member.refresh_from_db()
    assert member.user == user and user.check_password(PASSWORD)
    assert not user.is_staff and not user.is_superuser
    again = member_app_user_set(member=member, password="another-long-secret-9")
    assert again.pk == user.pk and User.objects.count() == 1
    assert again.check_password("another-long-secret-9") and not again.check_password(PASSWORD)


def test_changing_the_password_signs_out_every_device(app_client, app_member):
    member_app_user_set(member=app_member, password="another-long-secret-9")

    assert_problem(app_client.get(ME_URL), 401, "authentication_failed")


def test_weak_passwords_are_refused(program):
    member = MemberFactory(program=program)

    with pytest.raises(ValidationError):
        member_app_user_set(member=member, password="123")

    member.refresh_from_db()
    assert member.user is None and not User.objects.exists()


def test_a_suspended_member_may_sign_in(client, program, app_member):
    app_member.status = MemberStatus.SUSPENDED
    app_member.save(update_fields=["status"])

    assert login(client, program, email="jana@example.com").status_code == 200


def test_signing_out_with_another_token_in_the_body_is_refused(app_client, app_member):
    response = app_client.post(LOGOUT_URL, {"token": "someone-elses-token"})

    assert_problem(response, 400, "validation_error")
    assert AccessToken.objects.filter(user=app_member.user).exists()
    token = app_client._credentials["HTTP_AUTHORIZATION"].removeprefix("Token ")
    assert app_client.post(LOGOUT_URL, {"token": token}).status_code == 200


def test_a_slug_spelled_with_spaces_counts_against_the_same_account(client, program, app_member):
    # given: ten failures for one email, each from its own address and with the slug padded differently
    for n in range(10):
        response = client.post(
            LOGIN_URL,
            {"program": f"{program.slug}{' ' * n}", "email": "jana@example.com", "password": "wrong"},
            REMOTE_ADDR=f"10.0.3.{n}",
        )
        assert_problem(response, 401, "invalid_credentials")

    # then: the account is throttled, whatever the spelling of the slug
    assert_problem(login(client, program, email="jana@example.com", ip="10.0.4.1"), 429, "throttled")
    padded = {"program": f" {program.slug} ", "email": "jana@example.com", "password": PASSWORD}
    assert_problem(client.post(LOGIN_URL, padded, REMOTE_ADDR="10.0.4.2"), 429, "throttled")
    assert not AccessToken.objects.exists()


def test_a_forged_forwarded_for_does_not_give_fresh_address_counters(client, program, app_member, settings):
    settings.NUM_PROXIES = 0  # no proxy in front: the header is the client's own text
    for n in range(10):
        response = client.post(
            LOGIN_URL,
            {"program": program.slug, "email": f"guess{n}@example.com", "password": "wrong"},
            REMOTE_ADDR="10.0.5.1",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
        assert_problem(response, 401, "invalid_credentials")

    forged = login(client, program, email="jana@example.com", ip="10.0.5.1", HTTP_X_FORWARDED_FOR="198.51.100.9")

    assert_problem(forged, 429, "throttled")
    assert not AccessToken.objects.exists()


def test_behind_a_proxy_the_address_it_saw_is_counted(client, program, app_member, settings):
    settings.NUM_PROXIES = 1
    for n in range(10):
        # the client prepends what it likes; the proxy appends the address it saw
        client.post(
            LOGIN_URL,
            {"program": program.slug, "email": f"guess{n}@example.com", "password": "wrong"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7",
        )

    jana = {"email": "jana@example.com", "ip": "10.9.9.9"}
    blocked = login(client, program, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7", **jana)
    other = login(client, program, HTTP_X_FORWARDED_FOR="198.51.100.8", **jana)

    assert_problem(blocked, 429, "throttled")
    assert other.status_code == 200
