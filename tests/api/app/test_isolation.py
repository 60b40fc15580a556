"""A member's token reaches that member's data only: another member's ids read nothing and write nothing."""

from decimal import Decimal

import pytest

from loyalty.services.ledger import ledger_credit
from members.models import Member
from rewards.models import Voucher
from rewards.services import reward_redeem
from tests.api.app.utils import EXPORT_URL, LEDGER_URL, ME_URL, REWARDS_URL, TIER_URL, VOUCHERS_URL, redeem_url, state
from tests.api.utils import assert_problem
from tests.clients import app_client_for
from tests.factories import MemberFactory, ProgramFactory, RewardFactory


@pytest.fixture
def neighbour(program):
    """Member B of the same program, with points, a voucher and an app account."""
    member = MemberFactory(program=program, first_name="Bara", email="bara@example.com")
    ledger_credit(member=member, amount=5000, reason="B's points")
    reward_redeem(member=member, reward=RewardFactory(program=program, name="B's reward", points_cost=100))
    app_client_for(member)
    return member


@pytest.fixture
def stranger():
    """Member C of another program, with points, a reward and a voucher."""
    program = ProgramFactory()
    member = MemberFactory(program=program, email="jana@example.com")  # the same email elsewhere
    ledger_credit(member=member, amount=5000)
    reward = RewardFactory(program=program, name="C's reward", points_cost=10)
    reward_redeem(member=member, reward=reward)
    app_client_for(member)
    return member


def test_member_a_never_sees_or_changes_b_or_c(app_client, app_member, neighbour, stranger):
    ledger_credit(member=app_member, amount=20, reason="A's points")
    others = (neighbour.pk, stranger.pk)
    foreign_reward = Voucher.objects.get(member=stranger).reward
    before = state()

    # Ids in the query string or the body are ignored or refused, never followed.
    me = app_client.get(ME_URL, {"id": neighbour.pk, "member": neighbour.pk})
    ledger = app_client.get(LEDGER_URL, {"member": neighbour.pk, "member_id": stranger.pk})
    tier = app_client.get(TIER_URL, {"member": neighbour.pk})
    rewards = app_client.get(REWARDS_URL, {"program": stranger.program.slug})
    vouchers = app_client.get(VOUCHERS_URL, {"member": neighbour.pk})
    export = app_client.get(EXPORT_URL, {"member": neighbour.pk})
    patch = app_client.patch(ME_URL, {"id": neighbour.pk, "member": neighbour.pk, "first_name": "Hacked"})
    redeem = app_client.post(redeem_url(foreign_reward.pk), {"member_id": stranger.pk})

    assert me.json()["id"] == app_member.pk and me.json()["balances"]["available"] == 20
    assert [e["reason"] for e in ledger.json()["results"]] == ["A's points"]
    assert tier.status_code == 200
    assert "C's reward" not in {r["name"] for r in rewards.json()["results"]}
    assert {r["name"] for r in rewards.json()["results"]} == {"B's reward"}  # same program: on offer to A too
    assert vouchers.json()["results"] == []
    assert export.json()["member"]["id"] == app_member.pk and export.json()["member"]["email"] == "jana@example.com"
    assert [e["points"] for e in export.json()["ledger"]["entries"]] == [20]
    assert_problem(patch, 400, "unknown_field")
    assert_problem(redeem, 404, "reward_not_found")
    secrets = [neighbour.email, neighbour.card, "Bara", "B's points", stranger.card, "C's reward"]
    secrets += [f'"member_id":{pk}' for pk in others] + [
        code for code in Voucher.objects.values_list("code", flat=True)
    ]
    for response in (me, ledger, tier, rewards, vouchers, export, patch, redeem):
        assert not any(secret in response.content.decode() for secret in secrets), response.content
    assert state() == before
    assert Member.objects.get(pk=neighbour.pk).first_name == "Bara"


def test_vouchers_and_ledger_show_only_the_members_own_rows(app_client, app_member, neighbour, program):
    ledger_credit(member=app_member, amount=500)
    voucher = reward_redeem(
        member=app_member, reward=RewardFactory(program=program, name="A's pick", points_cost=100)
    ).voucher

    vouchers = app_client.get(VOUCHERS_URL).json()["results"]
    entries = app_client.get(LEDGER_URL).json()["results"]

    assert [v["id"] for v in vouchers] == [voucher.pk]
    assert sorted(e["points"] for e in entries) == [-100, 500]


def test_the_same_idempotency_key_of_two_members_does_not_collide(app_client, app_member, neighbour, program):
    ledger_credit(member=app_member, amount=1000)
    reward = RewardFactory(program=program, name="Shared", points_cost=100, value=Decimal("1.00"))
    b_client = app_client_for(neighbour)

    b = b_client.post(redeem_url(reward.pk), HTTP_IDEMPOTENCY_KEY="k-1")
    a = app_client.post(redeem_url(reward.pk), HTTP_IDEMPOTENCY_KEY="k-1")

    assert (a.status_code, b.status_code) == (201, 201), (a.content, b.content)
    assert "Idempotent-Replayed" not in a
    assert a.json()["member_id"] == app_member.pk and a.json()["code"] != b.json()["code"]
    assert Voucher.objects.filter(reward=reward, member=app_member).count() == 1
