"""voucher_validate, voucher_redeem and vouchers_expire."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from rewards.codes import format_code
from rewards.exceptions import (
    VoucherAlreadyRedeemed,
    VoucherCancelled,
    VoucherExpired,
    VoucherMinBasketNotMet,
    VoucherNotFound,
    VoucherWrongMember,
)
from rewards.models import RewardKind, Voucher, VoucherStatus
from rewards.services import (
    voucher_cancel,
    voucher_create,
    voucher_redeem,
    voucher_validate,
    vouchers_expire,
)
from rewards.tasks import vouchers_expire_task
from tests.builders import redeem
from tests.factories import MemberFactory, RewardFactory


@pytest.fixture
def voucher(program, funded_member):
    reward = RewardFactory(program=program, value=Decimal("10.00"), min_basket=Decimal("50.00"))
    return redeem(funded_member, reward).voucher


def campaign_voucher(program, kind, value, **fields):
    now = timezone.now()
    return voucher_create(
        program=program, kind=kind, value=value, issued_at=now, expires_at=now + timedelta(days=5), **fields
    )


def make_overdue(voucher):
    now = timezone.now()
    Voucher.objects.filter(pk=voucher.pk).update(
        issued_at=now - timedelta(days=31), expires_at=now - timedelta(seconds=1)
    )


def test_a_valid_voucher_gives_its_discount(program, voucher, funded_member):
    result = voucher_validate(
        program=program, code=voucher.display_code.lower(), basket_amount=Decimal("80.00"), member=funded_member
    )

    assert (result.valid, result.discount, result.voucher.pk) == (True, Decimal("10.00"), voucher.pk)
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.ISSUED  # validating changes nothing


@pytest.mark.parametrize(
    ("kind", "value", "basket", "discount"),
    [
        (RewardKind.FIXED_DISCOUNT, "10.00", "80.00", "10.00"),
        (RewardKind.FIXED_DISCOUNT, "10.00", "7.50", "7.50"),
        (RewardKind.FIXED_DISCOUNT, "10.00", None, "10.00"),
        (RewardKind.PERCENT_DISCOUNT, "15", "33.33", "5.00"),  # 4.9995 rounds half up to cents
        (RewardKind.PERCENT_DISCOUNT, "12.5", "10.01", "1.25"),
        (RewardKind.PERCENT_DISCOUNT, "15", None, None),
        (RewardKind.FREE_PRODUCT, "3.90", "1.00", "3.90"),
        (RewardKind.GIFT, None, "20.00", "0.00"),
    ],
)
def test_discounts_by_kind(program, kind, value, basket, discount):
    voucher = campaign_voucher(program, kind, Decimal(value) if value else None)

    result = voucher_validate(program=program, code=voucher.code, basket_amount=Decimal(basket) if basket else None)

    assert result.discount == (Decimal(discount) if discount else None)


def test_a_code_of_another_program_is_not_found(voucher, other_program):
    with pytest.raises(VoucherNotFound):
        voucher_validate(program=other_program, code=voucher.code)
    with pytest.raises(VoucherNotFound):
        voucher_redeem(program=other_program, code=voucher.code, reference="R1")
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.ISSUED


@pytest.mark.parametrize("code", ["", "----", "ZZZZ-ZZZZ-ZZZZ", "x" * 40])
def test_unknown_codes_are_not_found(program, voucher, code):
    with pytest.raises(VoucherNotFound):
        voucher_validate(program=program, code=code)


def test_validation_errors(program, voucher, funded_member):
    with pytest.raises(VoucherMinBasketNotMet):
        voucher_validate(program=program, code=voucher.code, basket_amount=Decimal("49.99"))
    with pytest.raises(VoucherWrongMember):
        voucher_validate(program=program, code=voucher.code, member=MemberFactory(program=program))
    # a campaign voucher belongs to nobody: anyone may use it
    campaign = campaign_voucher(program, RewardKind.GIFT, None, campaign="spring")
    assert voucher_validate(program=program, code=campaign.code, member=funded_member).valid

    voucher_redeem(program=program, code=voucher.code, reference="R1", basket_amount=Decimal("60.00"))
    with pytest.raises(VoucherAlreadyRedeemed):
        voucher_validate(program=program, code=voucher.code)


def test_a_cancelled_voucher_is_refused(program, voucher):
    voucher_cancel(voucher=voucher)

    with pytest.raises(VoucherCancelled):
        voucher_validate(program=program, code=voucher.code)
    with pytest.raises(VoucherCancelled):
        voucher_redeem(program=program, code=voucher.code, reference="R1")


def test_a_voucher_past_its_expiry_is_expired_before_and_after_the_job(program, voucher):
    make_overdue(voucher)
    with pytest.raises(VoucherExpired):
        voucher_validate(program=program, code=voucher.code)  # still 'issued'

    assert vouchers_expire() == 1

    with pytest.raises(VoucherExpired):
        voucher_redeem(program=program, code=voucher.code, reference="R1")
    assert Voucher.objects.get(pk=voucher.pk).status == VoucherStatus.EXPIRED


def test_redeeming_marks_the_voucher_and_replays_by_reference(program, voucher, funded_member):
    result = voucher_redeem(
        program=program, code=format_code(voucher.code), reference="TILL7-1", basket_amount=Decimal("60.00")
    )

    assert (result.replayed, result.discount) == (False, Decimal("10.00"))
    stored = Voucher.objects.get(pk=voucher.pk)
    assert (stored.status, stored.redeemed_reference, stored.redeemed_discount) == (
        "redeemed",
        "TILL7-1",
        Decimal("10"),
    )
    assert stored.redeemed_at is not None

    again = voucher_redeem(program=program, code=voucher.code, reference="TILL7-1", basket_amount=Decimal("60.00"))
    assert (again.replayed, again.discount, again.voucher.redeemed_at) == (True, Decimal("10.00"), stored.redeemed_at)

    with pytest.raises(VoucherAlreadyRedeemed):
        voucher_redeem(program=program, code=voucher.code, reference="TILL7-2")
    assert Voucher.objects.get(pk=voucher.pk).redeemed_reference == "TILL7-1"


def test_a_refused_redemption_leaves_the_voucher_issued(program, voucher):
    with pytest.raises(VoucherMinBasketNotMet):
        voucher_redeem(program=program, code=voucher.code, reference="R1", basket_amount=Decimal("10.00"))
    with pytest.raises(VoucherWrongMember):
        voucher_redeem(program=program, code=voucher.code, reference="R1", member=MemberFactory(program=program))

    stored = Voucher.objects.get(pk=voucher.pk)
    assert (stored.status, stored.redeemed_at, stored.redeemed_reference) == ("issued", None, "")


def test_expiring_vouchers_is_set_based_and_idempotent(program, funded_member, django_assert_num_queries):
    reward = RewardFactory(program=program, points_cost=10)
    vouchers = [redeem(funded_member, reward).voucher for _ in range(4)]
    voucher_redeem(program=program, code=vouchers[3].code, reference="R")
    now = timezone.now() + timedelta(days=31)

    with django_assert_num_queries(1):
        assert vouchers_expire(now=now) == 3
    assert vouchers_expire(now=now) == 0
    assert sorted(Voucher.objects.values_list("status", flat=True)) == ["expired"] * 3 + ["redeemed"]
    assert vouchers_expire(now=timezone.now()) == 0


def test_the_task_reports_what_it_expired(program, voucher):
    make_overdue(voucher)

    assert vouchers_expire_task.apply().get() == {"expired": 1}
