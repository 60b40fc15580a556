"""Manager API: the reward catalog (list, create, change, switch off) and vouchers (list, detail, cancel)."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from config.api.input import UNKNOWN_FIELD_MESSAGE
from loyalty.models import Account
from rewards.exceptions import RewardInactive
from rewards.models import Reward, RewardKind, Voucher, VoucherStatus
from rewards.selectors import campaign_members
from rewards.services import campaign_issue, reward_save, voucher_redeem
from tests.api.manage.catalog import (
    PERMISSIONS,
    REWARDS_URL,
    VOUCHERS_URL,
    cancel_url,
    catalog_state,
    reward_url,
    voucher_url,
)
from tests.api.utils import assert_problem
from tests.builders import fund, redeem, tier
from tests.clients import staff_client
from tests.factories import MemberFactory, RewardFactory, StaffFactory


@pytest.fixture
def api(catalog_manager):
    return staff_client(catalog_manager)


@pytest.fixture
def tiers(program):
    return {
        "silver": tier(program, "Silver", rank=1, threshold=100),
        "gold": tier(program, "Gold", rank=2, threshold=500),
    }


@pytest.fixture
def foreign_tier(other_program):
    return tier(other_program, "Gold", rank=2, threshold=500)


@pytest.fixture
def catalog(program, other_program, tiers):
    return {
        "coffee": RewardFactory(
            program=program, name="Free coffee", kind=RewardKind.FREE_PRODUCT, sku="CF-1", points_cost=50
        ),
        "five_off": RewardFactory(program=program, name="5 EUR off", points_cost=100),
        "ten_pct": RewardFactory(
            program=program, name="10 % off", kind=RewardKind.PERCENT_DISCOUNT, value=Decimal(10), points_cost=300
        ),
        "mug": RewardFactory(
            program=program, name="Gold mug", kind=RewardKind.GIFT, value=None, points_cost=800, min_tier=tiers["gold"]
        ),
        "retired": RewardFactory(program=program, name="Old coffee deal", points_cost=40, is_active=False),
        "foreign": RewardFactory(program=other_program, name="Foreign coffee", points_cost=10),
    }


def names(response):
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


# --- Reward list ------------------------------------------------------------------------------------


def test_list_shows_the_managed_programs_rewards_by_points_cost(api, program, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = api.get(REWARDS_URL)

    assert names(response) == ["Old coffee deal", "Free coffee", "5 EUR off", "10 % off", "Gold mug"]
    body = response.json()
    assert body["count"] == 5
    mug = body["results"][-1]
    assert mug == {
        **mug,
        "id": catalog["mug"].pk,
        "program": program.slug,
        "kind": "gift",
        "kind_label": "Gift",
        "value": None,
        "points_cost": 800,
        "min_tier": {"id": catalog["mug"].min_tier_id, "name": "Gold"},
        "stock": None,
        "voucher_valid_days": 30,
        "is_active": True,
    }
    assert body["results"][2]["value"] == "5.00"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"is_active": "false"}, ["Old coffee deal"]),
        ({"is_active": "true"}, ["Free coffee", "5 EUR off", "10 % off", "Gold mug"]),
        ({"kind": "free_product"}, ["Free coffee"]),
        ({"kind": ["percent_discount", "gift"]}, ["10 % off", "Gold mug"]),
        ({"q": "COFFEE"}, ["Old coffee deal", "Free coffee"]),
        ({"q": "coffee", "is_active": "true"}, ["Free coffee"]),
        ({"page_size": 2}, ["Old coffee deal", "Free coffee"]),
    ],
)
def test_list_filters(api, catalog, query, expected):
    assert names(api.get(REWARDS_URL, query)) == expected


def test_list_filters_by_min_tier_and_program(api, program, catalog, tiers):
    assert names(api.get(REWARDS_URL, {"min_tier": tiers["gold"].pk})) == ["Gold mug"]
    assert names(api.get(REWARDS_URL, {"min_tier": tiers["silver"].pk})) == []
    assert len(names(api.get(REWARDS_URL, {"program": program.slug}))) == 5


def test_list_of_an_unknown_or_unmanaged_program_is_not_found(api, other_program, catalog):
    assert_problem(api.get(REWARDS_URL, {"program": "no-such-program"}), 404, "program_not_found")
    assert_problem(api.get(REWARDS_URL, {"program": other_program.slug}), 404, "program_not_found")


@pytest.mark.parametrize("query", [{"kind": "voucher"}, {"min_tier": "gold"}, {"min_tier": 0}])
def test_list_refuses_bad_filters(api, catalog, query):
    body = assert_problem(api.get(REWARDS_URL, query), 400, "validation_error")

    assert set(body["errors"]) == set(query)


def test_superuser_sees_every_program(program, catalog):
    superuser = StaffFactory(is_superuser=True)

    assert "Foreign coffee" in names(staff_client(superuser).get(REWARDS_URL))


# --- Creating ---------------------------------------------------------------------------------------

NEW_REWARD = {
    "name": "Free croissant",
    "description": "Any croissant from the counter.",
    "kind": "free_product",
    "value": "2.50",
    "sku": "CR-1",
    "points_cost": 120,
    "active_from": "2026-01-01T00:00:00Z",
    "active_until": "2026-12-31T00:00:00Z",
    "stock": 50,
    "per_member_limit": 2,
    "voucher_valid_days": 14,
    "min_basket": "10.00",
}


def test_create_saves_the_reward(api, program, tiers):
    response = api.post(REWARDS_URL, {**NEW_REWARD, "program": program.slug, "min_tier": tiers["silver"].pk})

    assert response.status_code == 201, response.content
    reward = Reward.objects.get()
    body = response.json()
    assert body == {
        **body,
        "id": reward.pk,
        "program": program.slug,
        "name": "Free croissant",
        "kind": "free_product",
        "value": "2.50",
        "sku": "CR-1",
        "points_cost": 120,
        "min_tier": {"id": tiers["silver"].pk, "name": "Silver"},
        "stock": 50,
        "per_member_limit": 2,
        "voucher_valid_days": 14,
        "min_basket": "10.00",
        "is_active": True,
    }
    assert (reward.program, reward.min_tier, reward.value, reward.stock) == (
        program,
        tiers["silver"],
        Decimal("2.50"),
        50,
    )
    assert reward.active_until - reward.active_from == timedelta(days=364)
    assert datetime.fromisoformat(body["active_until"]) == reward.active_until


def test_create_with_only_the_required_fields_takes_the_model_defaults(api, program):
    response = api.post(REWARDS_URL, {"program": program.slug, "name": "Tote bag", "kind": "gift", "points_cost": 1})

    assert response.status_code == 201, response.content
    reward = Reward.objects.get()
    assert (reward.value, reward.min_tier, reward.stock, reward.per_member_limit, reward.voucher_valid_days) == (
        None,
        None,
        None,
        None,
        30,
    )
    assert reward.is_active is True


SERVER_OWNED = {"id", "program", "created_at", "updated_at"}  # refused as unknown fields, before any other check


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"points_cost": 0}, "points_cost"),
        ({"points_cost": -5}, "points_cost"),
        ({"points_cost": "many"}, "points_cost"),
        ({"points_cost": None}, "points_cost"),
        ({"kind": "percent_discount", "value": "150"}, "value"),
        ({"kind": "percent_discount", "value": None}, "value"),
        ({"kind": "fixed_discount", "value": "0"}, "value"),
        ({"value": "-1.00"}, "value"),
        ({"sku": ""}, "sku"),
        ({"active_until": "2025-06-01T00:00:00Z"}, "active_until"),
        ({"active_until": NEW_REWARD["active_from"]}, "active_until"),
        ({"stock": -1}, "stock"),
        ({"per_member_limit": 0}, "per_member_limit"),
        ({"voucher_valid_days": 0}, "voucher_valid_days"),
        ({"voucher_valid_days": 40000}, "voucher_valid_days"),
        ({"min_basket": "-5"}, "min_basket"),
        ({"kind": "voucher"}, "kind"),
        ({"name": ""}, "name"),
        ({"min_tier": 0}, "min_tier"),
        ({"is_active": "maybe"}, "is_active"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
        ({"id": 7}, "id"),
    ],
)
def test_create_refuses_invalid_rewards_and_writes_nothing(api, program, changes, field):
    before = catalog_state()

    response = api.post(REWARDS_URL, {**NEW_REWARD, "program": program.slug, **changes})

    body = assert_problem(response, 400, "unknown_field" if field in SERVER_OWNED else "validation_error")
    assert field in body["errors"], body
    assert catalog_state() == before


def test_create_refuses_a_tier_of_another_program(api, program, foreign_tier):
    response = api.post(REWARDS_URL, {**NEW_REWARD, "program": program.slug, "min_tier": foreign_tier.pk})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"min_tier": [f"No tier of {program.slug} has the id {foreign_tier.pk}."]}
    assert not Reward.objects.exists()


def test_create_reports_the_tier_and_the_models_errors_together(api, program, foreign_tier):
    payload = {**NEW_REWARD, "program": program.slug, "min_tier": foreign_tier.pk, "sku": ""}

    body = assert_problem(api.post(REWARDS_URL, payload), 400, "validation_error")

    assert set(body["errors"]) == {"min_tier", "sku"}
    assert body["errors"]["sku"] == ["Give the SKU of the free product."]


def test_create_refuses_an_unknown_or_unmanaged_program(api, other_program):
    assert_problem(api.post(REWARDS_URL, {**NEW_REWARD, "program": "nope"}), 404, "program_not_found")
    assert_problem(api.post(REWARDS_URL, {**NEW_REWARD, "program": other_program.slug}), 404, "program_not_found")
    assert not Reward.objects.exists()


def test_create_without_a_program_is_a_validation_error(api):
    body = assert_problem(api.post(REWARDS_URL, NEW_REWARD), 400, "validation_error")

    assert body["errors"] == {"program": ["This field is required."]}


def test_create_with_an_idempotency_key_creates_once(api, program):
    payload = {**NEW_REWARD, "program": program.slug}

    first = api.post(REWARDS_URL, payload, HTTP_IDEMPOTENCY_KEY="reward-1")
    again = api.post(REWARDS_URL, payload, HTTP_IDEMPOTENCY_KEY="reward-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Reward.objects.count() == 1


# --- Permissions ------------------------------------------------------------------------------------


def test_each_endpoint_needs_its_permission(program, manager, catalog, member):
    fund(member, 1000)
    voucher = redeem(member, catalog["five_off"]).voucher
    before = catalog_state()
    client = staff_client(manager)  # staff of the program, without reward permissions

    for response in (
        client.get(REWARDS_URL),
        client.post(REWARDS_URL, {**NEW_REWARD, "program": program.slug}),
        client.get(reward_url(catalog["five_off"].pk)),
        client.patch(reward_url(catalog["five_off"].pk), {"points_cost": 1}),
        client.get(VOUCHERS_URL),
        client.get(voucher_url(voucher.pk)),
        client.post(cancel_url(voucher.pk), {}),
    ):
        assert_problem(response, 403, "permission_denied")
    assert catalog_state() == before


def test_reading_does_not_allow_writing(program, manager, catalog, member):
    fund(member, 1000)
    voucher = redeem(member, catalog["five_off"]).voucher
    manager.user_permissions.add(*Permission.objects.filter(codename__in=["view_reward", "view_voucher"]))
    client = staff_client(manager)
    before = catalog_state()

    assert client.get(REWARDS_URL).status_code == 200
    assert client.get(voucher_url(voucher.pk)).status_code == 200
    assert_problem(client.post(REWARDS_URL, {**NEW_REWARD, "program": program.slug}), 403, "permission_denied")
    assert_problem(client.patch(reward_url(catalog["five_off"].pk), {"points_cost": 1}), 403, "permission_denied")
    assert_problem(client.post(cancel_url(voucher.pk), {}), 403, "permission_denied")
    assert catalog_state() == before


def test_anonymous_and_non_staff_users_are_refused(catalog):
    user = StaffFactory(is_staff=False, permissions=PERMISSIONS)

    assert_problem(APIClient().get(REWARDS_URL), 401, "not_authenticated")
    assert_problem(staff_client(user).get(REWARDS_URL), 403, "permission_denied")


# --- Detail and changes -----------------------------------------------------------------------------


def test_detail(api, program, catalog):
    response = api.get(reward_url(catalog["ten_pct"].pk))

    assert response.status_code == 200
    assert response.json() == {
        **response.json(),
        "id": catalog["ten_pct"].pk,
        "program": program.slug,
        "name": "10 % off",
        "kind": "percent_discount",
        "value": "10.00",
        "points_cost": 300,
        "min_tier": None,
    }


@pytest.mark.parametrize("reward_id", ["999999", "abc", "0", "-1", "1.5", str(2**64)])
def test_unknown_reward_is_not_found(api, catalog, reward_id):
    assert_problem(api.get(reward_url(reward_id)), 404, "reward_not_found")
    assert_problem(api.patch(reward_url(reward_id), {"points_cost": 1}), 404, "reward_not_found")


def test_a_reward_of_another_program_is_not_found(api, catalog):
    before = catalog_state()

    assert_problem(api.get(reward_url(catalog["foreign"].pk)), 404, "reward_not_found")
    assert_problem(api.patch(reward_url(catalog["foreign"].pk), {"points_cost": 1}), 404, "reward_not_found")
    assert catalog_state() == before


def test_patch_changes_only_the_fields_sent(api, catalog, tiers):
    reward = catalog["five_off"]
    created_at = reward.created_at

    response = api.patch(reward_url(reward.pk), {"points_cost": 150, "min_tier": tiers["silver"].pk, "stock": 7})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["points_cost"], body["min_tier"], body["stock"], body["name"], body["value"]) == (
        150,
        {"id": tiers["silver"].pk, "name": "Silver"},
        7,
        "5 EUR off",
        "5.00",
    )
    reward.refresh_from_db()
    assert (reward.points_cost, reward.min_tier, reward.stock, reward.name, reward.kind) == (
        150,
        tiers["silver"],
        7,
        "5 EUR off",
        RewardKind.FIXED_DISCOUNT,
    )
    assert reward.created_at == created_at
    assert reward.updated_at > created_at


def test_patch_can_clear_the_tier_and_change_the_kind(api, catalog):
    response = api.patch(reward_url(catalog["mug"].pk), {"min_tier": None, "kind": "percent_discount", "value": "15"})

    assert response.status_code == 200, response.content
    mug = Reward.objects.get(pk=catalog["mug"].pk)
    assert (mug.min_tier, mug.kind, mug.value) == (None, RewardKind.PERCENT_DISCOUNT, Decimal("15.00"))


@pytest.mark.parametrize(
    ("reward_name", "payload", "field"),
    [
        ("five_off", {"points_cost": 0}, "points_cost"),
        ("five_off", {"points_cost": -10}, "points_cost"),
        ("five_off", {"value": None}, "value"),
        ("ten_pct", {"value": "100.01"}, "value"),
        ("five_off", {"kind": "percent_discount", "value": "0"}, "value"),
        ("coffee", {"sku": ""}, "sku"),
        ("five_off", {"active_from": "2026-05-01T00:00:00Z", "active_until": "2026-04-01T00:00:00Z"}, "active_until"),
        ("five_off", {"program": "elsewhere"}, "program"),
        ("five_off", {"updated_at": "2026-01-01T00:00:00Z"}, "updated_at"),
        ("five_off", {"name": None}, "name"),
    ],
)
def test_patch_refuses_invalid_changes_and_writes_nothing(api, catalog, reward_name, payload, field):
    before = catalog_state()

    response = api.patch(reward_url(catalog[reward_name].pk), payload)

    body = assert_problem(response, 400, "unknown_field" if field in SERVER_OWNED else "validation_error")
    assert field in body["errors"], body
    assert catalog_state() == before


def test_patch_refuses_an_end_before_the_stored_start(api, catalog):
    reward = catalog["five_off"]
    Reward.objects.filter(pk=reward.pk).update(active_from=timezone.now())
    before = catalog_state()

    response = api.patch(reward_url(reward.pk), {"active_until": (timezone.now() - timedelta(days=1)).isoformat()})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"]["active_until"] == ["The end must be after the start."]
    assert catalog_state() == before


def test_patch_refuses_a_tier_of_another_program(api, catalog, foreign_tier):
    before = catalog_state()

    body = assert_problem(
        api.patch(reward_url(catalog["five_off"].pk), {"min_tier": foreign_tier.pk}), 400, "validation_error"
    )

    assert list(body["errors"]) == ["min_tier"]
    assert catalog_state() == before


def test_deactivating_a_reward_stops_redemptions_and_keeps_its_vouchers(api, catalog, member):
    fund(member, 1000)
    voucher = redeem(member, catalog["five_off"]).voucher

    response = api.patch(reward_url(catalog["five_off"].pk), {"is_active": False})

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    reward = Reward.objects.get(pk=catalog["five_off"].pk)
    assert reward.is_active is False
    assert names(api.get(REWARDS_URL, {"is_active": "false"})) == ["Old coffee deal", "5 EUR off"]
    with pytest.raises(RewardInactive):
        redeem(member, reward)
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.ISSUED
    assert Account.objects.get(pk=member.pk).available == 900


def test_rewards_cannot_be_deleted(api, catalog):
    assert_problem(api.delete(reward_url(catalog["five_off"].pk)), 405, "method_not_allowed")
    assert Reward.objects.filter(pk=catalog["five_off"].pk).exists()


# --- The service the API and the admin share ---------------------------------------------------------


def test_reward_save_keeps_the_stock_redemptions_moved_since_the_copy_was_read(program, member):
    reward = RewardFactory(program=program, stock=10)
    stale = Reward.objects.get(pk=reward.pk)
    fund(member, 1000)
    redeem(member, reward)  # stock 10 -> 9 behind the stale copy's back

    stale.name = "5 EUR off, renamed"
    reward_save(reward=stale, fields=["name"])

    reward.refresh_from_db()
    assert (reward.name, reward.stock) == ("5 EUR off, renamed", 9)
    assert stale.stock == 9


def test_reward_save_validates_with_the_models_rules(program, other_program, foreign_tier):
    reward = RewardFactory(program=program)
    reward.min_tier = foreign_tier
    reward.points_cost = 0

    with pytest.raises(ValidationError) as error:
        reward_save(reward=reward, fields=["min_tier", "points_cost"])

    assert set(error.value.message_dict) == {"min_tier", "points_cost"}
    reward.refresh_from_db()
    assert (reward.min_tier, reward.points_cost) == (None, 100)
    with pytest.raises(ValueError, match="program"):
        reward_save(reward=reward, fields=["program"])


# --- Vouchers ---------------------------------------------------------------------------------------


@pytest.fixture
def vouchers(program, other_program, catalog):
    """Two members' redemptions (one used at a till), a campaign, and a voucher of another program."""
    alice, bob = MemberFactory(program=program), MemberFactory(program=program)
    fund(alice, 1000)
    fund(bob, 1000)
    coffee = redeem(alice, catalog["coffee"]).voucher
    five_off = redeem(alice, catalog["five_off"]).voucher
    used = redeem(bob, catalog["five_off"]).voucher
    voucher_redeem(program=program, code=used.code, reference="TILL1-77")
    campaign_issue(
        program=program,
        reward=catalog["ten_pct"],
        members_queryset=campaign_members(program=program, member_ids=[bob.pk]),
        campaign="Spring",
    )
    foreign_member = MemberFactory(program=other_program)
    fund(foreign_member, 100)
    foreign = redeem(foreign_member, catalog["foreign"]).voucher
    # Issue times one hour apart, oldest first, so the order and the time filters are certain.
    now = timezone.now()
    rows = [coffee, five_off, used, Voucher.objects.get(campaign="Spring"), foreign]
    for hours, voucher in zip(range(len(rows), 0, -1), rows, strict=True):
        Voucher.objects.filter(pk=voucher.pk).update(issued_at=now - timedelta(hours=hours))
    return {
        "alice": alice,
        "bob": bob,
        "coffee": coffee,
        "five_off": five_off,
        "used": used,
        "spring": rows[3],
        "foreign": foreign,
        "now": now,
    }


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_voucher_list_is_newest_first_and_scoped(api, vouchers, django_assert_max_num_queries):
    v = vouchers

    with django_assert_max_num_queries(6):
        response = api.get(VOUCHERS_URL)

    assert ids(response) == [v["spring"].pk, v["used"].pk, v["five_off"].pk, v["coffee"].pk]
    assert response.json()["count"] == 4


def test_voucher_list_filters(api, catalog, vouchers):
    v = vouchers

    assert ids(api.get(VOUCHERS_URL, {"status": "redeemed"})) == [v["used"].pk]
    assert ids(api.get(VOUCHERS_URL, {"status": ["redeemed", "issued"]})) == [
        v["spring"].pk,
        v["used"].pk,
        v["five_off"].pk,
        v["coffee"].pk,
    ]
    assert ids(api.get(VOUCHERS_URL, {"status": "cancelled"})) == []
    assert ids(api.get(VOUCHERS_URL, {"reward": catalog["five_off"].pk})) == [v["used"].pk, v["five_off"].pk]
    assert ids(api.get(VOUCHERS_URL, {"member": v["alice"].pk})) == [v["five_off"].pk, v["coffee"].pk]
    assert ids(api.get(VOUCHERS_URL, {"member": v["bob"].pk, "reward": catalog["ten_pct"].pk})) == [v["spring"].pk]
    assert ids(api.get(VOUCHERS_URL, {"campaign": "Spring"})) == [v["spring"].pk]
    assert ids(api.get(VOUCHERS_URL, {"campaign": "Autumn"})) == []
    assert ids(api.get(VOUCHERS_URL, {"code": v["coffee"].display_code.lower()})) == [v["coffee"].pk]
    cutoff = (v["now"] - timedelta(hours=4, minutes=30)).isoformat()
    assert ids(api.get(VOUCHERS_URL, {"issued_after": cutoff})) == [v["spring"].pk, v["used"].pk, v["five_off"].pk]
    assert ids(api.get(VOUCHERS_URL, {"issued_before": cutoff})) == [v["coffee"].pk]
    assert ids(api.get(VOUCHERS_URL, {"reward": catalog["foreign"].pk})) == []


def test_voucher_list_program_filter(api, program, other_program, vouchers):
    assert len(ids(api.get(VOUCHERS_URL, {"program": program.slug}))) == 4
    assert_problem(api.get(VOUCHERS_URL, {"program": other_program.slug}), 404, "program_not_found")
    assert_problem(api.get(VOUCHERS_URL, {"program": "nope"}), 404, "program_not_found")


@pytest.mark.parametrize(
    "query", [{"status": "lost"}, {"member": "alice"}, {"reward": 0}, {"issued_after": "yesterday"}]
)
def test_voucher_list_refuses_bad_filters(api, vouchers, query):
    body = assert_problem(api.get(VOUCHERS_URL, query), 400, "validation_error")

    assert set(body["errors"]) == set(query)


def test_voucher_detail(api, program, catalog, vouchers):
    used = vouchers["used"]

    response = api.get(voucher_url(used.pk))

    assert response.status_code == 200
    body = response.json()
    assert body == {
        **body,
        "id": used.pk,
        "program": program.slug,
        "code": used.display_code,
        "member_id": vouchers["bob"].pk,
        "reward": {"id": catalog["five_off"].pk, "name": "5 EUR off"},
        "campaign": "",
        "kind": "fixed_discount",
        "value": "5.00",
        "status": "redeemed",
        "points_cost": 100,
        "redeemed_reference": "TILL1-77",
        "redeemed_discount": "5.00",
        "cancelled_at": None,
        "cancelled_by": None,
    }
    assert len(body["code"]) == 14 and body["code"][4] == "-"


@pytest.mark.parametrize("voucher_id", ["999999", "abc", "0", str(2**64)])
def test_unknown_voucher_is_not_found(api, vouchers, voucher_id):
    before = catalog_state()

    assert_problem(api.get(voucher_url(voucher_id)), 404, "voucher_not_found")
    assert_problem(api.post(cancel_url(voucher_id), {}), 404, "voucher_not_found")
    assert catalog_state() == before


def test_a_voucher_of_another_program_is_not_found(api, vouchers):
    before = catalog_state()

    assert_problem(api.get(voucher_url(vouchers["foreign"].pk)), 404, "voucher_not_found")
    assert_problem(api.post(cancel_url(vouchers["foreign"].pk), {}), 404, "voucher_not_found")
    assert catalog_state() == before


def test_cancel_gives_the_points_back(api, catalog_manager, catalog, vouchers):
    alice = vouchers["alice"]
    Reward.objects.filter(pk=catalog["five_off"].pk).update(stock=3)
    assert Account.objects.get(pk=alice.pk).available == 850  # 1000 - 50 (coffee) - 100 (five off)

    response = api.post(cancel_url(vouchers["five_off"].pk), {})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["voucher"]["status"] == "cancelled"
    assert body["voucher"]["cancelled_by"] == catalog_manager.username
    assert body["balances"] == {"available": 950, "pending": 0, "debt": 0}
    assert Account.objects.get(pk=alice.pk).available == 950
    voucher = Voucher.objects.get(pk=vouchers["five_off"].pk)
    assert (voucher.status, voucher.cancelled_by, voucher.refund_entry.amount) == (
        VoucherStatus.CANCELLED,
        catalog_manager,
        100,
    )
    assert Reward.objects.get(pk=catalog["five_off"].pk).stock == 4


def test_cancel_a_campaign_voucher_refunds_nothing(api, vouchers):
    bob = vouchers["bob"]
    available = Account.objects.get(pk=bob.pk).available

    response = api.post(cancel_url(vouchers["spring"].pk))

    assert response.status_code == 200, response.content
    assert response.json()["balances"]["available"] == available
    assert Voucher.objects.get(pk=vouchers["spring"].pk).status == VoucherStatus.CANCELLED


def test_cancel_of_a_redeemed_voucher_is_refused(api, vouchers):
    before = catalog_state()

    response = api.post(cancel_url(vouchers["used"].pk), {})

    body = assert_problem(response, 409, "voucher_not_cancellable")
    assert body["voucher_status"] == "redeemed"
    assert catalog_state() == before
    assert Account.objects.get(pk=vouchers["bob"].pk).available == 900


def test_cancel_twice_is_refused_the_second_time(api, vouchers):
    assert api.post(cancel_url(vouchers["coffee"].pk), {}).status_code == 200
    before = catalog_state()

    body = assert_problem(api.post(cancel_url(vouchers["coffee"].pk), {}), 409, "voucher_not_cancellable")

    assert body["voucher_status"] == "cancelled"
    assert catalog_state() == before
    assert Account.objects.get(pk=vouchers["alice"].pk).available == 900


def test_cancel_of_an_expired_voucher_is_refused(api, vouchers):
    Voucher.objects.filter(pk=vouchers["coffee"].pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = catalog_state()

    assert_problem(api.post(cancel_url(vouchers["coffee"].pk), {}), 422, "voucher_expired")
    assert catalog_state() == before


def test_cancel_refuses_a_body_with_fields(api, vouchers):
    before = catalog_state()

    body = assert_problem(api.post(cancel_url(vouchers["coffee"].pk), {"refund": 5000}), 400, "unknown_field")

    assert body["errors"] == {"refund": [UNKNOWN_FIELD_MESSAGE]}
    assert catalog_state() == before
