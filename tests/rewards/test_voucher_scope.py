"""Vouchers carry their reward's scope (SKUs, categories, minimum basket) and discount only the lines in it."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from events.models import OutboxEvent
from members.models import Member
from rewards.discounts import BasketLine
from rewards.exceptions import VoucherBasketRequired, VoucherMinBasketNotMet, VoucherOutOfScope
from rewards.models import Reward, RewardKind, Voucher, VoucherStatus
from rewards.services import campaign_issue, voucher_redeem, voucher_validate
from tests.api.utils import POS, assert_problem, state_with_vouchers
from tests.builders import redeem
from tests.factories import RewardFactory

VALIDATE_URL = f"{POS}/vouchers/validate/"
REDEEM_URL = f"{POS}/vouchers/redeem/"

COFFEE = BasketLine(sku="COFFEE-1KG", category="coffee", amount=Decimal("2000.00"))
NOVEL = BasketLine(sku="NOVEL-7", category="books", amount=Decimal("300.00"))
ATLAS = BasketLine(sku="ATLAS-2", category="maps", amount=Decimal("120.00"))


def issue(program, member, **fields) -> Voucher:
    reward = RewardFactory(program=program, **fields)
    return redeem(member, reward).voucher


@pytest.fixture
def books_percent(program, funded_member):
    """The outside report's voucher: 10 % off books."""
    return issue(
        program, funded_member, kind=RewardKind.PERCENT_DISCOUNT, value=Decimal("10"), scope_categories=["books"]
    )


def validate(program, voucher, **basket):
    return voucher_validate(program=program, code=voucher.code, **basket).discount


# --- Services -----------------------------------------------------------------------------


def test_the_voucher_copies_its_rewards_scope(books_percent):
    assert (books_percent.scope_skus, books_percent.scope_categories) == ([], ["books"])


def test_a_books_voucher_does_not_discount_a_coffee_basket(program, books_percent):
    with pytest.raises(VoucherOutOfScope) as refused:
        validate(program, books_percent, lines=[COFFEE])
    assert refused.value.extra["scope"] == {"skus": [], "categories": ["books"]}

    # an amount alone cannot tell what is in scope
    with pytest.raises(VoucherBasketRequired) as refused:
        validate(program, books_percent, basket_amount=Decimal("2000.00"))
    assert refused.value.extra["needs"] == "lines"


def test_the_discount_is_computed_on_the_lines_in_scope_only(program, books_percent):
    assert validate(program, books_percent, lines=[COFFEE, NOVEL, ATLAS]) == Decimal("30.00")


def test_a_line_is_in_scope_by_its_sku_or_its_category(program, funded_member):
    voucher = issue(
        program,
        funded_member,
        kind=RewardKind.PERCENT_DISCOUNT,
        value=Decimal("50"),
        scope_skus=["ATLAS-2"],
        scope_categories=["books"],
    )

    assert validate(program, voucher, lines=[COFFEE, NOVEL, ATLAS]) == Decimal("210.00")
    assert validate(program, voucher, lines=[COFFEE, ATLAS]) == Decimal("60.00")


def test_a_fixed_discount_is_capped_at_the_amount_in_scope(program, funded_member):
    voucher = issue(program, funded_member, value=Decimal("500.00"), scope_skus=["NOVEL-7"])

    assert validate(program, voucher, lines=[COFFEE, NOVEL]) == Decimal("300.00")


def test_a_percent_is_rounded_once_on_the_amount_in_scope(program, funded_member):
    voucher = issue(
        program, funded_member, kind=RewardKind.PERCENT_DISCOUNT, value=Decimal("50"), scope_categories=["sweets"]
    )
    candy = [BasketLine(sku=f"C{i}", category="sweets", amount=Decimal("0.03")) for i in range(3)]

    # 0.045 rounds half up to 0.05; line by line it would be 3 x 0.02 = 0.06
    assert validate(program, voucher, lines=[*candy, COFFEE]) == Decimal("0.05")


def test_the_minimum_basket_is_measured_on_the_amount_in_scope(program, funded_member):
    voucher = issue(
        program,
        funded_member,
        kind=RewardKind.PERCENT_DISCOUNT,
        value=Decimal("10"),
        scope_categories=["books"],
        min_basket=Decimal("500.00"),
    )

    with pytest.raises(VoucherMinBasketNotMet) as refused:
        validate(program, voucher, lines=[COFFEE, NOVEL])
    assert refused.value.extra == {"min_basket": "500.00", "amount_in_scope": "300.00"}
    assert validate(program, voucher, lines=[NOVEL, NOVEL]) == Decimal("60.00")


def test_a_voucher_without_scope_applies_to_every_line_or_the_basket_amount(program, funded_member):
    voucher = issue(program, funded_member, kind=RewardKind.PERCENT_DISCOUNT, value=Decimal("10"))

    assert validate(program, voucher, lines=[COFFEE, NOVEL]) == Decimal("230.00")
    assert validate(program, voucher, basket_amount=Decimal("80.00")) == Decimal("8.00")
    assert validate(program, voucher) is None  # the code alone: the discount depends on the basket


def test_a_voucher_with_a_scope_has_no_discount_without_the_lines(program, funded_member):
    voucher = issue(program, funded_member, value=Decimal("500.00"), scope_skus=["NOVEL-7"])

    result = voucher_validate(program=program, code=voucher.code)

    assert (result.valid, result.discount) == (True, None)


def test_redeem_records_the_discount_on_the_lines_in_scope(program, books_percent):
    result = voucher_redeem(program=program, code=books_percent.code, reference="R1", lines=[COFFEE, NOVEL])

    assert result.discount == Decimal("30.00")
    stored = Voucher.objects.get(pk=books_percent.pk)
    assert (stored.status, stored.redeemed_discount) == (VoucherStatus.REDEEMED, Decimal("30.00"))
    event = OutboxEvent.objects.filter(type="voucher.redeemed").get()
    assert event.data["discount"] == "30.00"


@pytest.mark.parametrize(
    ("fields", "basket", "needs"),
    [
        ({"kind": RewardKind.PERCENT_DISCOUNT, "value": Decimal("10")}, {}, "basket_amount or lines"),
        ({"scope_skus": ["NOVEL-7"]}, {}, "lines"),
        ({"scope_skus": ["NOVEL-7"]}, {"basket_amount": Decimal("300.00")}, "lines"),
        ({"value": Decimal("5.00"), "min_basket": Decimal("50.00")}, {}, "basket_amount or lines"),  # unchecked
    ],
)
def test_redeem_refuses_a_discount_it_cannot_compute(program, funded_member, fields, basket, needs):
    voucher = issue(program, funded_member, **fields)

    with pytest.raises(VoucherBasketRequired) as refused:
        voucher_redeem(program=program, code=voucher.code, reference="R1", **basket)

    assert refused.value.extra["needs"] == needs
    stored = Voucher.objects.get(pk=voucher.pk)
    assert (stored.status, stored.redeemed_discount, stored.redeemed_reference) == ("issued", None, "")


def test_a_fixed_voucher_without_scope_still_redeems_without_a_basket(program, funded_member):
    voucher = issue(program, funded_member, value=Decimal("5.00"))

    result = voucher_redeem(program=program, code=voucher.code, reference="R1")

    assert result.discount == Decimal("5.00")
    assert Voucher.objects.get(pk=voucher.pk).redeemed_discount == Decimal("5.00")


def test_an_out_of_scope_redemption_leaves_the_voucher_issued(program, books_percent):
    with pytest.raises(VoucherOutOfScope):
        voucher_redeem(program=program, code=books_percent.code, reference="R1", lines=[COFFEE])

    assert Voucher.objects.get(pk=books_percent.pk).status == VoucherStatus.ISSUED


def test_campaign_vouchers_carry_the_scope(program, funded_member):
    reward = RewardFactory(
        program=program,
        kind=RewardKind.PERCENT_DISCOUNT,
        value=Decimal("10"),
        scope_skus=["NOVEL-7"],
        scope_categories=["maps"],
    )

    campaign_issue(program=program, reward=reward, members_queryset=Member.objects.all(), campaign="spring")

    voucher = Voucher.objects.get(campaign="spring")
    assert (voucher.scope_skus, voucher.scope_categories) == (["NOVEL-7"], ["maps"])
    assert validate(program, voucher, lines=[COFFEE, NOVEL, ATLAS]) == Decimal("42.00")


def test_the_reward_cleans_its_scope(program):
    reward = Reward(program=program, name="R", kind="gift", points_cost=1, scope_skus=[" A ", "A", "B"])
    reward.full_clean()
    assert reward.scope_skus == ["A", "B"]

    for bad in (["ok", " "], "BOOKS", [1], ["x" * 65]):
        with pytest.raises(ValidationError) as caught:
            Reward(program=program, name="R", kind="gift", points_cost=1, scope_categories=bad).full_clean()
        assert "scope_categories" in caught.value.message_dict


# --- HTTP -----------------------------------------------------------------------------------


def line(item: BasketLine) -> dict:
    return {"sku": item.sku, "category": item.category, "amount": str(item.amount)}


def test_post_validate_discounts_the_lines_in_scope(pos_client, books_percent):
    lines = [line(COFFEE), {**line(NOVEL), "quantity": "2", "unit_price": "150.00"}]

    response = pos_client.post(VALIDATE_URL, {"code": books_percent.code, "lines": lines}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["discount"], body["scope"]) == ("30.00", {"skus": [], "categories": ["books"]})


@pytest.mark.parametrize(
    ("basket", "status", "code"),
    [
        ({"lines": [line(COFFEE)]}, 422, "voucher_out_of_scope"),
        ({"basket_amount": "2000.00"}, 422, "voucher_basket_required"),
        ({"lines": []}, 400, "validation_error"),
        ({"lines": [{"sku": "X"}]}, 400, "validation_error"),
        ({"lines": [{**line(NOVEL), "amount": "-1"}]}, 400, "validation_error"),
    ],
)
def test_post_validate_and_redeem_refuse_a_basket_out_of_scope(pos_client, books_percent, basket, status, code):
    before = state_with_vouchers()

    for url, extra in ((VALIDATE_URL, {}), (REDEEM_URL, {"reference": "R1"})):
        payload = {"code": books_percent.code, **extra, **basket}
        assert_problem(pos_client.post(url, payload, format="json"), status, code)

    assert state_with_vouchers() == before


def test_post_redeem_records_the_discount(pos_client, books_percent):
    payload = {"code": books_percent.code, "reference": "R1", "lines": [line(COFFEE), line(NOVEL)]}

    response = pos_client.post(REDEEM_URL, payload, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["discount"] == "30.00"
    assert Voucher.objects.get(pk=books_percent.pk).redeemed_discount == Decimal("30.00")


def test_post_redeem_of_a_percent_voucher_without_a_basket_is_refused(pos_client, program, funded_member):
    voucher = issue(program, funded_member, kind=RewardKind.PERCENT_DISCOUNT, value=Decimal("10"))
    before = state_with_vouchers()

    problem = assert_problem(
        pos_client.post(REDEEM_URL, {"code": voucher.code, "reference": "R1"}, format="json"),
        422,
        "voucher_basket_required",
    )

    assert problem["needs"] == "basket_amount or lines"
    assert state_with_vouchers() == before and Voucher.objects.get(pk=voucher.pk).redeemed_discount is None
