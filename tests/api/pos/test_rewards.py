"""The reward and voucher endpoints through HTTP: status, body, and what the database holds afterwards."""

import json
from decimal import Decimal

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from loyalty.models import Account, Entry, EntryKind
from members.models import MemberStatus
from rewards.apis.throttling import GUESS_LIMIT
from rewards.models import Reward, Voucher, VoucherStatus
from tests.api.utils import POS, assert_problem, state_with_vouchers
from tests.builders import fund, redeem
from tests.clients import pos_client_for
from tests.factories import MemberFactory, RewardFactory

VALIDATE_URL = f"{POS}/vouchers/validate/"
REDEEM_URL = f"{POS}/vouchers/redeem/"


def redemptions_url(member_id) -> str:
    return f"{POS}/members/{member_id}/redemptions/"


@pytest.fixture
def voucher(program, funded_member):
    reward = RewardFactory(program=program, value=Decimal("10.00"), min_basket=Decimal("50.00"))
    return redeem(funded_member, reward).voucher


# --- Redemptions ----------------------------------------------------------------


def test_redeeming_a_reward_issues_a_voucher(pos_client, program, funded_member):
    reward = RewardFactory(program=program, name="Coffee", points_cost=250, stock=2)

    response = pos_client.post(redemptions_url(funded_member.pk), {"reward_id": reward.pk})

    assert response.status_code == 201, response.content
    body = response.json()
    voucher = Voucher.objects.get()
    assert body["code"] == voucher.display_code and len(body["code"]) == 14
    assert body["reward"] == {"id": reward.pk, "name": "Coffee"}
    assert (body["kind"], body["value"], body["points_spent"]) == ("fixed_discount", "5.00", 250)
    assert body["status"] == "issued" and body["member_id"] == funded_member.pk
    assert body["expires_at"] and body["balances"] == {"available": 750, "pending": 0, "debt": 0}
    assert Reward.objects.get(pk=reward.pk).stock == 1
    assert Account.objects.get(pk=funded_member.pk).redeemed == 250


def test_a_retried_redemption_with_an_idempotency_key_spends_once(pos_client, program, funded_member, reward):
    url = redemptions_url(funded_member.pk)

    first = pos_client.post(url, {"reward_id": reward.pk}, HTTP_IDEMPOTENCY_KEY="till-1-0001")
    again = pos_client.post(url, {"reward_id": reward.pk}, HTTP_IDEMPOTENCY_KEY="till-1-0001")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Voucher.objects.get().redeem_key == f"pos:{program.pk}:till-1-0001"
    assert Entry.objects.get(kind=EntryKind.REDEEM).key == f"redeem:pos:{program.pk}:till-1-0001"
    assert Account.objects.get(pk=funded_member.pk).available == 900


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ({"points_cost": 5000}, 422, "insufficient_points"),
        ({"stock": 0}, 422, "reward_out_of_stock"),
        ({"is_active": False}, 422, "reward_inactive"),
    ],
)
def test_a_refused_redemption_writes_nothing(pos_client, program, funded_member, setup, status, code):
    reward = RewardFactory(program=program, **setup)
    before = state_with_vouchers()

    response = pos_client.post(redemptions_url(funded_member.pk), {"reward_id": reward.pk})

    assert_problem(response, status, code)
    assert state_with_vouchers() == before


def test_a_suspended_member_gets_member_suspended(pos_client, funded_member, reward):
    funded_member.status = MemberStatus.SUSPENDED
    funded_member.save(update_fields=["status"])
    before = state_with_vouchers()

    assert_problem(
        pos_client.post(redemptions_url(funded_member.pk), {"reward_id": reward.pk}), 422, "member_suspended"
    )
    assert state_with_vouchers() == before


def test_another_programs_reward_or_member_is_not_found(pos_client, program, funded_member, other_program):
    foreign_reward = RewardFactory(program=other_program)
    foreign_member = MemberFactory(program=other_program)
    fund(foreign_member, 1000)
    own_reward = RewardFactory(program=program)
    before = state_with_vouchers()

    response = pos_client.post(redemptions_url(funded_member.pk), {"reward_id": foreign_reward.pk})
    assert_problem(response, 404, "reward_not_found")
    response = pos_client.post(redemptions_url(foreign_member.pk), {"reward_id": own_reward.pk})
    assert_problem(response, 404, "member_not_found")
    assert_problem(pos_client.post(redemptions_url(funded_member.pk), {"reward_id": "x"}), 400, "validation_error")
    assert state_with_vouchers() == before


# --- Validate and redeem ------------------------------------------------------------


def test_validating_a_code_against_a_basket(pos_client, voucher, funded_member):
    response = pos_client.post(
        VALIDATE_URL,
        {"code": voucher.display_code.lower(), "basket_amount": "80.00", "member": {"card": funded_member.card}},
    )

    assert response.status_code == 200, response.content
    assert response.json() == {
        "valid": True,
        "code": voucher.display_code,
        "kind": "fixed_discount",
        "value": "10.00",
        "min_basket": "50.00",
        "scope": {"skus": [], "categories": []},
        "discount": "10.00",
        "expires_at": response.json()["expires_at"],
        "member_id": funded_member.pk,
    }
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.ISSUED


def test_another_programs_key_gets_voucher_not_found_for_an_existing_code(other_pos_client, voucher):
    before = state_with_vouchers()

    assert_problem(other_pos_client.post(VALIDATE_URL, {"code": voucher.code}), 404, "voucher_not_found")
    response = other_pos_client.post(REDEEM_URL, {"code": voucher.code, "reference": "X-1"})
    assert_problem(response, 404, "voucher_not_found")
    assert state_with_vouchers() == before


def test_validation_problems(pos_client, program, voucher):
    other = MemberFactory(program=program)
    before = state_with_vouchers()

    response = pos_client.post(VALIDATE_URL, {"code": voucher.code, "basket_amount": "20.00"})
    assert_problem(response, 422, "voucher_min_basket_not_met")
    response = pos_client.post(VALIDATE_URL, {"code": voucher.code, "member": {"id": other.pk}})
    assert_problem(response, 422, "voucher_wrong_member")
    response = pos_client.post(VALIDATE_URL, {"code": voucher.code, "basket_amount": "-1"})
    assert_problem(response, 400, "validation_error")
    assert state_with_vouchers() == before


def test_redeeming_a_voucher_once_per_reference(pos_client, voucher):
    body = {"code": voucher.display_code, "reference": "TILL7-000123", "basket_amount": "60.00"}

    first = pos_client.post(REDEEM_URL, body)
    again = pos_client.post(REDEEM_URL, body)
    other = pos_client.post(REDEEM_URL, {**body, "reference": "TILL7-000124"})

    assert (first.status_code, again.status_code) == (200, 200), first.content
    assert first.json()["status"] == "redeemed" and first.json()["discount"] == "10.00"
    assert first.json()["reference"] == "TILL7-000123"
    assert again.json() == first.json()
    assert_problem(other, 422, "voucher_already_redeemed")
    stored = Voucher.objects.get(pk=voucher.pk)
    assert (stored.status, stored.redeemed_reference) == ("redeemed", "TILL7-000123")
    assert_problem(pos_client.post(VALIDATE_URL, {"code": voucher.code}), 422, "voucher_already_redeemed")


# --- Guessing throttle -------------------------------------------------------------------


def guess(client, n: int, **extra):
    return client.post(VALIDATE_URL, {"code": f"ZZZZ-ZZZZ-{n:04d}"}, **extra)


def test_repeated_unknown_codes_are_throttled_per_key(pos_client, program, voucher):
    for n in range(GUESS_LIMIT):
        assert_problem(guess(pos_client, n, REMOTE_ADDR=f"10.0.0.{n}"), 404, "voucher_not_found")

    # the key is over the limit from any address, even for a real code
    response = pos_client.post(VALIDATE_URL, {"code": voucher.code}, REMOTE_ADDR="10.0.1.1")
    assert_problem(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert_problem(pos_client.post(REDEEM_URL, {"code": voucher.code, "reference": "R"}), 429, "throttled")
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.ISSUED
    # another till of the program, from another address, is not affected
    other_till = pos_client_for(program, "Till 2")
    assert other_till.post(VALIDATE_URL, {"code": voucher.code}, REMOTE_ADDR="10.0.2.1").status_code == 200


def test_repeated_unknown_codes_are_throttled_per_address(program, voucher):
    for n in range(GUESS_LIMIT):
        till = pos_client_for(program, f"Till {n}")  # a fresh key for each guess
        assert_problem(guess(till, n, REMOTE_ADDR="192.0.2.7"), 404, "voucher_not_found")

    fresh = pos_client_for(program, "Fresh till")
    assert_problem(guess(fresh, 99, REMOTE_ADDR="192.0.2.7"), 429, "throttled")
    assert guess(fresh, 99, REMOTE_ADDR="192.0.2.8").status_code == 404


def test_unknown_codes_of_one_program_do_not_throttle_another_programs_tills_behind_the_same_address(
    program, other_program, voucher
):
    other_voucher = redeem(fund_member(other_program), RewardFactory(program=other_program)).voucher
    guessing_till = pos_client_for(other_program, "Guessing till")
    for n in range(GUESS_LIMIT):
        assert_problem(guess(guessing_till, n, REMOTE_ADDR="192.0.2.7"), 404, "voucher_not_found")
    assert_problem(guess(pos_client_for(other_program, "Its neighbour"), 99, REMOTE_ADDR="192.0.2.7"), 429, "throttled")

    till = pos_client_for(program, "Till of another program")  # same mall, same NAT address
    validated = till.post(VALIDATE_URL, {"code": voucher.code}, REMOTE_ADDR="192.0.2.7")
    redeemed = till.post(
        REDEEM_URL, {"code": voucher.code, "reference": "R-1", "basket_amount": "80.00"}, REMOTE_ADDR="192.0.2.7"
    )

    assert validated.status_code == 200, validated.content
    assert validated.json()["code"] == voucher.display_code
    assert redeemed.status_code == 200, redeemed.content
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.REDEEMED
    assert Voucher.objects.get(pk=other_voucher.pk).status == VoucherStatus.ISSUED


def fund_member(program):
    member = MemberFactory(program=program)
    fund(member, 1000)
    return member


def test_found_codes_do_not_count(pos_client, voucher):
    for _ in range(GUESS_LIMIT * 2):
        assert pos_client.post(VALIDATE_URL, {"code": voucher.code}).status_code == 200
    assert_problem(guess(pos_client, 1), 404, "voucher_not_found")


def test_the_endpoints_are_documented(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    paths = schema["paths"]
    redemption = paths["/api/pos/v1/members/{member_id}/redemptions/"]["post"]
    assert redemption["operationId"] == "pos_reward_redeem"
    assert {"201", "404", "422", "429"} <= set(redemption["responses"])
    assert paths["/api/pos/v1/vouchers/validate/"]["post"]["operationId"] == "pos_voucher_validate"
    assert paths["/api/pos/v1/vouchers/redeem/"]["post"]["operationId"] == "pos_voucher_redeem"
