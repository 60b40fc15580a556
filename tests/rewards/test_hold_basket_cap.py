"""Points as payment: the share cap holds per basket, across all its held and captured holds, and at capture."""

from decimal import Decimal

import pytest

from loyalty.audit import ledger_audit
from loyalty.models import Account
from rewards.exceptions import HoldBasketMismatch, HoldExceedsShare
from rewards.models import Hold, HoldBasket, HoldStatus
from rewards.services import hold_capture, hold_create, hold_release
from tests.api.utils import POS, assert_problem, state_with_holds
from tests.builders import fund
from tests.factories import MemberFactory

BASKET = Decimal("100.00")  # at 0.01 per point and a 30 % share: up to 3000 points in all


@pytest.fixture
def funded(member):
    fund(member, 10_000)
    return member


def hold(member, points, reference="cart-1", amount=BASKET, **kwargs):
    return hold_create(member=member, basket_reference=reference, basket_amount=amount, points=points, **kwargs)


def available(member) -> int:
    return Account.objects.get(pk=member.pk).available


# --- Services -----------------------------------------------------------------------------


def test_a_refusal_on_an_empty_basket_says_what_it_paid_in_cents(funded):
    """`basket_paid` is money like `money_value`: "0.00", not "0", when no hold pays for the basket yet."""
    with pytest.raises(HoldExceedsShare) as refused:
        hold(funded, 3001)

    assert (refused.value.extra["max_points"], refused.value.extra["basket_paid"]) == (3000, "0.00")
    assert not Hold.objects.exists()


def test_holds_of_one_basket_together_pay_at_most_the_share(funded):
    first = hold(funded, 2000).hold
    second = hold(funded, 1000).hold

    with pytest.raises(HoldExceedsShare) as refused:
        hold(funded, 1)

    assert refused.value.extra["max_points"] == 0 and refused.value.extra["basket_paid"] == "30.00"
    assert [h.pk for h in Hold.objects.order_by("pk")] == [first.pk, second.pk]
    assert available(funded) == 7000


def test_the_refusal_names_the_points_still_allowed_on_the_basket(funded):
    hold(funded, 2500)

    with pytest.raises(HoldExceedsShare) as refused:
        hold(funded, 600)

    assert refused.value.extra["max_points"] == 500
    assert Hold.objects.count() == 1 and available(funded) == 7500


def test_a_retry_without_a_key_cannot_hold_beyond_the_share(funded):
    hold(funded, 3000)

    with pytest.raises(HoldExceedsShare):
        hold(funded, 3000)

    assert Hold.objects.count() == 1 and available(funded) == 7000


def test_captured_holds_count_towards_the_share(funded):
    hold_capture(hold=hold(funded, 2000).hold)

    with pytest.raises(HoldExceedsShare) as refused:
        hold(funded, 1500)

    assert refused.value.extra["max_points"] == 1000


def test_released_holds_free_their_share(funded):
    hold_release(hold=hold(funded, 3000).hold)

    again = hold(funded, 3000).hold

    assert again.status == HoldStatus.HELD and available(funded) == 7000


def test_the_basket_reference_is_per_program_and_per_basket(funded, other_program):
    stranger = MemberFactory(program=other_program)
    fund(stranger, 5000)

    hold(funded, 3000)
    hold(funded, 3000, reference="cart-2")
    hold(stranger, 3000)

    assert HoldBasket.objects.filter(reference="cart-1").count() == 2
    assert Hold.objects.filter(status=HoldStatus.HELD).count() == 3


def test_another_member_cannot_hold_against_the_basket(funded, program):
    other = MemberFactory(program=program)
    fund(other, 5000)
    hold(funded, 1000)

    with pytest.raises(HoldBasketMismatch) as refused:
        hold(other, 1000)

    assert refused.value.extra["field"] == "basket_reference"
    assert Hold.objects.count() == 1 and available(other) == 5000


def test_a_basket_with_live_holds_keeps_its_amount(funded):
    hold(funded, 3000)

    with pytest.raises(HoldBasketMismatch) as refused:
        hold(funded, 3000, amount=Decimal("1000.00"))

    assert refused.value.extra == {"field": "basket_amount", "basket_amount": "100.00"}
    assert Hold.objects.count() == 1 and available(funded) == 7000


def test_a_basket_without_live_holds_takes_a_new_amount(funded):
    hold_release(hold=hold(funded, 3000).hold)

    held = hold(funded, 6000, amount=Decimal("200.00")).hold

    assert held.money_value == Decimal("60.00")
    assert HoldBasket.objects.get().amount == Decimal("200.00")


def test_capture_refuses_holds_that_together_exceed_the_share(funded):
    # Three holds of 3000 points on one basket, as the per-hold check used to accept.
    first = hold(funded, 3000).hold
    copies = [Hold.objects.create(**{**_fields(first), "debit_entry_id": first.debit_entry_id}) for _ in range(2)]

    hold_capture(hold=first)
    with pytest.raises(HoldExceedsShare) as refused:
        hold_capture(hold=copies[0])

    assert refused.value.extra["max_points"] == 0
    statuses = list(Hold.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == [HoldStatus.CAPTURED, HoldStatus.HELD, HoldStatus.HELD]


def test_capture_checks_the_share_in_force(funded, settings):
    held = hold(funded, 3000).hold
    settings.REWARDS_MAX_POINTS_SHARE = "0.20"

    with pytest.raises(HoldExceedsShare):
        hold_capture(hold=held)

    assert Hold.objects.get().status == HoldStatus.HELD


def _fields(hold: Hold) -> dict:
    names = ("program_id", "member_id", "basket_reference", "basket_amount", "points", "money_value", "expires_at")
    return {name: getattr(hold, name) for name in names}


# --- HTTP -----------------------------------------------------------------------------------


def _post(client, member, points, **fields):
    payload = {"basket_reference": "B-1", "basket_amount": "100.00", "points": points, **fields}
    return client.post(f"{POS}/members/{member.pk}/holds/", payload, format="json")


def test_post_a_second_hold_beyond_the_share_of_the_basket_is_refused(pos_client, funded):
    assert _post(pos_client, funded, 3000).status_code == 201
    before = state_with_holds()

    problem = assert_problem(_post(pos_client, funded, 3000), 422, "hold_exceeds_share")

    assert (problem["max_points"], problem["basket_paid"]) == (0, "30.00")
    assert state_with_holds() == before and available(funded) == 7000


def test_post_a_hold_on_another_members_basket_is_a_conflict(pos_client, funded, program):
    other = MemberFactory(program=program)
    fund(other, 5000)
    assert _post(pos_client, funded, 1000).status_code == 201
    before = state_with_holds()

    problem = assert_problem(_post(pos_client, other, 1000), 409, "hold_basket_mismatch")

    assert problem["field"] == "basket_reference"
    assert state_with_holds() == before


def test_capture_beyond_the_share_through_http(pos_client, funded):
    first = hold(funded, 3000, reference="B-1").hold
    copy = Hold.objects.create(**{**_fields(first), "debit_entry_id": first.debit_entry_id})
    assert pos_client.post(f"{POS}/holds/{first.pk}/capture/").status_code == 200

    problem = assert_problem(pos_client.post(f"{POS}/holds/{copy.pk}/capture/"), 422, "hold_exceeds_share")

    assert problem["max_points"] == 0
    assert Hold.objects.get(pk=copy.pk).status == HoldStatus.HELD
    assert ledger_audit() == []
