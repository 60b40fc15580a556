"""GDPR: erasure reaches the member's login; the export holds everything kept about the member."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.services.nps import nps_record
from events.models import OutboxEvent
from loyalty.models import TierChangeReason, TierHistory
from loyalty.services.ledger import ledger_credit
from members.app_auth import member_app_authenticate, member_app_login, member_app_user_set
from members.exceptions import DomainError
from members.exports import member_export
from members.models import AccessToken
from members.services.gdpr import member_erase
from rewards.services import hold_create
from tests.api.utils import assert_problem
from tests.builders import redeem
from tests.clients import PASSWORD
from tests.factories import MemberAnalyticsFactory, MemberFactory, RewardFactory

ME_URL = "/api/app/v1/me/"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def app_member(program):
    member = MemberFactory(program=program, email="jana@example.com", first_name="Jana")
    user = member_app_user_set(member=member, password=PASSWORD)
    user.first_name = "Jana"
    user.save(update_fields=["first_name"])
    return member


def signed_in(member) -> str:
    return member_app_login(program_slug=member.program.slug, email=member.email, password=PASSWORD)[1]


def test_erasure_anonymises_and_deactivates_the_login_and_ends_its_tokens(app_member):
    token = signed_in(app_member)
    user_id = app_member.user_id

    member_erase(member=app_member)

    user = User.objects.get(pk=user_id)
    names = (user.username, user.email, user.first_name, user.last_name)
    assert names == (f"erased-member-{app_member.pk}", "", "", "")
    assert not user.is_active and not user.has_usable_password() and user.last_login is None
    assert not User.objects.filter(email="jana@example.com").exists()
    assert not AccessToken.objects.filter(user_id=user_id).exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert_problem(client.get(ME_URL), 401, "authentication_failed")
    with pytest.raises(DomainError):
        member_app_authenticate(program_slug=app_member.program.slug, email="jana@example.com", password=PASSWORD)


def test_erasing_a_member_without_a_login_leaves_other_users_alone(member, app_member):
    member_erase(member=member)

    assert User.objects.get(pk=app_member.user_id).email == "jana@example.com"


def test_the_export_holds_the_login_without_secrets(app_member):
    token = signed_in(app_member)

    data = member_export(member=app_member)

    login = data["login"]
    assert login["username"] == f"member-{app_member.pk}" and login["email"] == "jana@example.com"
    assert login["is_active"] is True and login["password_set"] is True
    (issued,) = login["tokens"]
    created = AccessToken.objects.get(user=app_member.user).created_at
    assert issued == {"created_at": created.isoformat(), "expires_at": (created + timedelta(hours=720)).isoformat()}
    text = json.dumps(data)
    assert token not in text and app_member.user.password not in text
    assert AccessToken.objects.get().digest not in text


def test_the_export_holds_the_purchases_and_their_lines(program, app_member, pos_client):
    occurred = (timezone.now() - timedelta(hours=1)).replace(microsecond=0).isoformat()
    line = {"sku": "BK-991", "category": "books", "quantity": "2", "unit_price": "30.00", "amount": "60.00"}
    body = {"external_id": "TILL7-1", "member": {"card": app_member.card}, "store": "PRAGUE-01", "channel": "pos",
            "occurred_at": occurred, "currency": "EUR", "total": "60.00", "lines": [line]}  # fmt: skip
    assert pos_client.post("/api/pos/v1/purchases/", body, format="json").status_code == 201

    part = member_export(member=app_member)["purchases"]

    purchases = [(p["external_id"], p["store"], p["total"]) for p in part["purchases"]]
    assert purchases == [("TILL7-1", "PRAGUE-01", "60.00")]
    assert [(x["sku"], x["amount"]) for x in part["lines"]] == [("BK-991", "60.00")]


def test_the_export_holds_every_part_kept_about_the_member(program, app_member):
    # given: points, a voucher, a hold, an NPS answer, tier history and analytics
    ledger_credit(member=app_member, amount=3000)
    voucher = redeem(app_member, RewardFactory(program=program)).voucher
    hold_create(member=app_member, basket_reference="cart-9", basket_amount=Decimal("100.00"), points=500)
    nps_record(member=app_member, score=9, comment="Lovely shop", source="app")
    TierHistory.objects.create(
        program=program, member=app_member, reason=TierChangeReason.values[0], metric_value=Decimal("120.00"),
        created_at=timezone.now(),
    )  # fmt: skip
    MemberAnalyticsFactory(member=app_member, program=program, computed_at=timezone.now(), segment="Champions")

    data = member_export(member=app_member)

    assert data["member"]["consents"] == {"email": False, "sms": False, "push": False}
    assert [v["code"] for v in data["rewards"]["vouchers"]] == [voucher.code]
    assert [(h["basket_reference"], h["points"]) for h in data["rewards"]["holds"]] == [("cart-9", 500)]
    assert [(a["score"], a["comment"]) for a in data["analytics"]["nps_answers"]] == [(9, "Lovely shop")]
    assert data["analytics"]["figures"]["segment"] == "Champions"
    assert [t["metric_value"] for t in data["tier_history"]] == ["120.00"]
    assert data["purchases"] == {"purchases": [], "lines": [], "returns": [], "awards": []}
    events = OutboxEvent.objects.filter(member=app_member).order_by("id")
    assert [e["event_id"] for e in data["events"]] == [e.event_id for e in events] and events.exists()
    json.dumps(data)  # plain JSON throughout
