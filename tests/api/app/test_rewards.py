"""Rewards and vouchers through the member app: attainability, redeeming, the member's vouchers."""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.models import Account
from members.services.members import member_suspend
from rewards.models import Voucher, VoucherStatus
from tests.api.app.utils import REWARDS_URL, VOUCHERS_URL, redeem_url, state
from tests.api.utils import assert_problem
from tests.builders import fund, redeem, tier
from tests.factories import ProgramFactory, RewardFactory


def by_name(body):
    return {item["name"]: item for item in body["results"]}


def test_rewards_show_how_close_the_member_is(app_client, app_member, program):
    fund(app_member, 300)
    gold = tier(program, "Gold", rank=2, threshold=1000)
    RewardFactory(program=program, name="Coffee", points_cost=100)
    RewardFactory(program=program, name="Cinema", points_cost=1200)
    RewardFactory(program=program, name="Lounge", points_cost=50, min_tier=gold)
    RewardFactory(program=program, name="Sold out", points_cost=10, stock=0)
    RewardFactory(program=program, name="Retired", is_active=False)
    RewardFactory(program=program, name="Later", active_from=timezone.now() + timedelta(days=1))
    RewardFactory(program=program, name="Over", active_until=timezone.now() - timedelta(days=1))
    RewardFactory(program=ProgramFactory(), name="Elsewhere", points_cost=1)

    response = app_client.get(REWARDS_URL)

    assert response.status_code == 200, response.content
    today = timezone.now().astimezone(program.tz).date()
    items = by_name(response.json())
    assert [item["name"] for item in response.json()["results"]] == ["Sold out", "Lounge", "Coffee", "Cinema"]
    assert items["Coffee"]["attainability"] == {
        "cost": 100,
        "available": 300,
        "gap": 0,
        "progress": 1.0,
        "redeemable_now": True,
        "pace_per_day": "10.00",  # 300 points earned today, averaged over the 30-day minimum
        "days": 0,
        "date": today.isoformat(),
        "expiring_before": 0,
    }
    assert items["Coffee"]["blocked_by"] is None
    assert items["Cinema"]["attainability"] == {
        "cost": 1200,
        "available": 300,
        "gap": 900,
        "progress": 0.25,
        "redeemable_now": False,
        "pace_per_day": "10.00",
        "days": 90,
        "date": (today + timedelta(days=90)).isoformat(),
        "expiring_before": 0,  # the program's points never expire
    }
    assert items["Cinema"]["blocked_by"] == "insufficient_points"
    assert items["Lounge"]["blocked_by"] == "reward_tier_required"
    assert items["Lounge"]["min_tier"] == {"id": gold.pk, "name": "Gold"}
    assert items["Sold out"]["blocked_by"] == "reward_out_of_stock"


def test_a_reward_at_its_per_member_limit_is_not_redeemable(app_client, app_member, program):
    fund(app_member, 1000)
    reward = RewardFactory(program=program, name="Once", per_member_limit=1)
    redeem(app_member, reward)

    item = by_name(app_client.get(REWARDS_URL).json())["Once"]

    assert item["blocked_by"] == "reward_limit_reached" and not item["attainability"]["redeemable_now"]


def test_rewards_list_takes_the_same_queries_for_1_and_50_rewards(
    app_client, app_member, program, django_assert_max_num_queries
):
    fund(app_member, 500)
    gold = tier(program, "Gold", rank=2, threshold=1000)
    RewardFactory(program=program, name="Reward 0", per_member_limit=2, min_tier=gold)
    app_client.get(REWARDS_URL)  # compiles the program's ruleset once, as a running server has
    with CaptureQueriesContext(connection) as one:
        assert len(app_client.get(REWARDS_URL).json()["results"]) == 1
    for n in range(1, 50):
        RewardFactory(
            program=program,
            name=f"Reward {n}",
            points_cost=10 + n,
            per_member_limit=2,
            min_tier=gold if n % 2 else None,
        )

    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(app_client.get(REWARDS_URL).json()["results"]) == 50


def test_redeeming_spends_points_and_issues_a_voucher(app_client, app_member, program):
    fund(app_member, 1000)
    reward = RewardFactory(program=program, name="Coffee", points_cost=250, stock=3)

    response = app_client.post(redeem_url(reward.pk))

    assert response.status_code == 201, response.content
    body = response.json()
    voucher = Voucher.objects.get()
    assert (voucher.member_id, voucher.reward_id, voucher.status) == (app_member.pk, reward.pk, "issued")
    assert body["code"] == voucher.display_code and body["member_id"] == app_member.pk
    assert body["points_spent"] == 250 and body["balances"] == {"available": 750, "pending": 0, "debt": 0}
    assert Account.objects.get(pk=app_member.pk).available == 750
    reward.refresh_from_db()
    assert reward.stock == 2


def test_redeeming_with_an_idempotency_key_spends_once(app_client, app_member, program):
    fund(app_member, 1000)
    reward = RewardFactory(program=program, points_cost=300)

    first = app_client.post(redeem_url(reward.pk), HTTP_IDEMPOTENCY_KEY="tap-1")
    again = app_client.post(redeem_url(reward.pk), HTTP_IDEMPOTENCY_KEY="tap-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert Voucher.objects.count() == 1 and Account.objects.get(pk=app_member.pk).available == 700


def test_redeeming_without_enough_points_changes_nothing(app_client, app_member, program):
    fund(app_member, 50)
    reward = RewardFactory(program=program, points_cost=100)
    before = state()

    assert_problem(app_client.post(redeem_url(reward.pk)), 422, "insufficient_points")

    assert state() == before


def test_a_suspended_member_can_read_but_not_redeem(app_client, app_member, program):
    fund(app_member, 1000)
    reward = RewardFactory(program=program, name="Coffee", points_cost=100)
    redeem(app_member, reward)
    member_suspend(member=app_member)
    before = state()

    rewards = app_client.get(REWARDS_URL)
    response = app_client.post(redeem_url(reward.pk))

    assert rewards.status_code == 200
    assert by_name(rewards.json())["Coffee"]["blocked_by"] == "member_suspended"
    assert len(app_client.get(VOUCHERS_URL).json()["results"]) == 1
    assert_problem(response, 422, "member_suspended")
    assert state() == before


def test_vouchers_list_the_members_own_vouchers(app_client, app_member, program):
    fund(app_member, 1000)
    coffee = RewardFactory(program=program, name="Coffee", points_cost=100, value=Decimal("3.00"))
    old = redeem(app_member, coffee).voucher
    used = redeem(app_member, coffee).voucher
    Voucher.objects.filter(pk=old.pk).update(
        issued_at=timezone.now() - timedelta(days=40), expires_at=timezone.now() - timedelta(days=10)
    )
    Voucher.objects.filter(pk=used.pk).update(status=VoucherStatus.REDEEMED, redeemed_at=timezone.now())

    response = app_client.get(VOUCHERS_URL)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(v["id"], v["status"]) for v in results] == [(used.pk, "redeemed"), (old.pk, "expired")]
    first = results[0]
    assert first["code"] == used.display_code and len(first["code"]) == 14 and first["code"][4] == "-"
    assert first["reward"] == {"id": coffee.pk, "name": "Coffee"}
    assert (first["value"], first["points_spent"], first["kind"]) == ("3.00", 100, "fixed_discount")
    assert first["redeemed_at"] and first["expires_at"]


def test_bad_reward_ids_are_not_found(app_client, app_member):
    for reward_id in ("0", "1.5", "abc", str(10**30), "99999"):
        assert_problem(app_client.post(redeem_url(reward_id)), 404, "reward_not_found")


def test_a_changed_cost_is_refused_when_the_app_sends_what_it_showed(app_client, app_member, program):
    fund(app_member, 1000)
    reward = RewardFactory(program=program, points_cost=300)
    before = state()

    response = app_client.post(redeem_url(reward.pk), {"expected_points_cost": 100})

    body = assert_problem(response, 422, "reward_cost_changed")
    assert body["points_cost"] == 300
    assert state() == before
    assert app_client.post(redeem_url(reward.pk), {"expected_points_cost": 300}).status_code == 201


def test_rewards_and_vouchers_show_where_a_voucher_applies(app_client, app_member, program):
    """A member holding "10 % off books" sees that it is for books only, before and after redeeming."""
    fund(app_member, 1000)
    books = RewardFactory(
        program=program,
        name="10 % off books",
        kind="percent_discount",
        value=Decimal("10.00"),
        scope_categories=["books"],
        scope_skus=["BK-101"],
    )
    whole = RewardFactory(program=program, name="Coffee", points_cost=200)
    redeem(app_member, books)

    rewards = by_name(app_client.get(REWARDS_URL).json())
    vouchers = app_client.get(VOUCHERS_URL).json()["results"]

    assert rewards["10 % off books"]["scope"] == {"skus": ["BK-101"], "categories": ["books"]}
    assert rewards[whole.name]["scope"] == {"skus": [], "categories": []}
    assert [v["scope"] for v in vouchers] == [{"skus": ["BK-101"], "categories": ["books"]}]
