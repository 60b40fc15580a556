"""Points as payment: holds against a basket, captured, released or expired; services and HTTP."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.exceptions import InsufficientPoints
from loyalty.models import Account, Entry, EntryKind, Lot
from loyalty.services.ledger import ledger_debit
from members.exceptions import IdempotencyKeyReused, MemberSuspended
from members.models import MemberStatus
from rewards.exceptions import HoldExceedsShare, HoldNotActive, PointsPaymentUnavailable
from rewards.models import Hold, HoldStatus
from rewards.services import hold_capture, hold_create, hold_release, holds_expire
from rewards.tasks import holds_expire_task
from tests.api.utils import POS, assert_problem, state_with_holds
from tests.builders import fund
from tests.factories import MemberFactory

BASKET = Decimal("100.00")  # at 0.01 per point and a 30 % share: up to 3000 points


def balances(member) -> tuple[int, int, int]:
    account = Account.objects.get(pk=member.pk)
    return account.available, account.redeemed, account.debt


def assert_books_clean():
    assert ledger_audit() == []


@pytest.fixture
def funded(member):
    fund(member, 500, expires_in_days=10, age_days=3)
    fund(member, 2500, expires_in_days=None, age_days=2)
    return member


def hold(member, points=1000, **kwargs):
    return hold_create(member=member, basket_reference="cart-1", basket_amount=BASKET, points=points, **kwargs).hold


# --- Services -----------------------------------------------------------------------------


def test_a_hold_takes_the_points_out_of_available_at_once(funded):
    result = hold_create(member=funded, basket_reference="cart-1", basket_amount=BASKET, points=1000)

    hold = result.hold
    assert (hold.status, hold.points, hold.money_value, hold.basket_amount) == ("held", 1000, Decimal("10.00"), BASKET)
    assert result.balances == {"available": 2000, "pending": 0, "debt": 0}
    assert balances(funded) == (2000, 1000, 0)
    assert hold.debit_entry.kind == EntryKind.REDEEM and hold.debit_entry.amount == -1000
    assert timedelta(minutes=29) < hold.expires_at - timezone.now() <= timedelta(minutes=30)
    assert_books_clean()


def test_held_points_cannot_be_spent_twice(funded):
    hold(funded, points=1000)

    with pytest.raises(InsufficientPoints):
        ledger_debit(member=funded, amount=3000)

    assert balances(funded) == (2000, 1000, 0)
    assert_books_clean()


def test_capture_keeps_the_points_spent(funded):
    held = hold(funded)

    result = hold_capture(hold=held)

    assert result.hold.status == HoldStatus.CAPTURED and result.hold.captured_at is not None
    assert result.balances["available"] == 2000
    assert balances(funded) == (2000, 1000, 0)
    assert Entry.objects.filter(member=funded, kind=EntryKind.REFUND).count() == 0
    assert_books_clean()


def test_release_gives_the_points_back_to_their_lots_with_their_expiry(funded):
    soon, never = Lot.objects.filter(member=funded).order_by("pk")
    held = hold(funded, points=800)  # 500 from the lot expiring soon, 300 from the other

    result = hold_release(hold=held)

    assert result.hold.status == HoldStatus.RELEASED and result.hold.released_at is not None
    assert result.balances["available"] == 3000
    assert balances(funded) == (3000, 0, 0)
    refunds = Lot.objects.filter(member=funded, entry__kind=EntryKind.REFUND).order_by("pk")
    assert [(lot.amount, lot.expires_at) for lot in refunds] == [(500, soon.expires_at), (300, None)]
    assert result.hold.refund_entry == refunds[0].entry
    assert_books_clean()


@pytest.mark.parametrize("first", [hold_capture, hold_release])
@pytest.mark.parametrize("second", [hold_capture, hold_release])
def test_only_a_held_hold_can_be_captured_or_released(funded, first, second):
    held = hold(funded)
    first(hold=held)
    before = state_with_holds()

    with pytest.raises(HoldNotActive):
        second(hold=held)

    assert state_with_holds() == before
    assert_books_clean()


def test_a_hold_above_the_share_of_the_basket_is_refused_and_writes_nothing(funded):
    before = state_with_holds()

    with pytest.raises(HoldExceedsShare) as error:
        hold(funded, points=3001)

    assert error.value.extra["max_points"] == 3000
    assert state_with_holds() == before
    assert hold(funded, points=3000).money_value == Decimal("30.00")
    assert_books_clean()


def test_the_share_comes_from_the_setting(funded, settings):
    settings.REWARDS_MAX_POINTS_SHARE = "0.10"

    with pytest.raises(HoldExceedsShare):
        hold(funded, points=1001)
    assert hold(funded, points=1000).points == 1000


def test_a_program_whose_points_have_no_value_cannot_pay_with_them(funded):
    funded.program.point_value = Decimal(0)
    funded.program.save(update_fields=["point_value"])

    with pytest.raises(PointsPaymentUnavailable):
        hold(funded, points=10)
    assert Hold.objects.count() == 0


def test_a_hold_beyond_the_balance_is_insufficient_points(funded):
    with pytest.raises(InsufficientPoints):
        hold_create(member=funded, basket_reference="big", basket_amount=Decimal("100000.00"), points=3001)
    assert Hold.objects.count() == 0 and balances(funded) == (3000, 0, 0)


def test_a_suspended_member_cannot_hold_points(funded):
    funded.status = MemberStatus.SUSPENDED
    funded.save(update_fields=["status"])

    with pytest.raises(MemberSuspended):
        hold(funded)
    assert Hold.objects.count() == 0


def test_a_hold_is_idempotent_by_key(funded):
    first = hold_create(member=funded, basket_reference="cart-1", basket_amount=BASKET, points=700, key="k1")

    again = hold_create(member=funded, basket_reference="cart-1", basket_amount=BASKET, points=700, key="k1")

    assert again.replayed and again.hold.pk == first.hold.pk
    assert Hold.objects.count() == 1 and balances(funded) == (2300, 700, 0)
    with pytest.raises(IdempotencyKeyReused):
        hold_create(member=funded, basket_reference="cart-1", basket_amount=BASKET, points=701, key="k1")
    assert_books_clean()


def test_forgotten_holds_expire_and_give_the_points_back(funded):
    old = hold(funded, points=1000)
    fresh = hold(funded, points=500)
    captured = hold(funded, points=200)
    hold_capture(hold=captured)
    later = timezone.now() + timedelta(minutes=31)
    Hold.objects.filter(pk=fresh.pk).update(expires_at=later + timedelta(minutes=5))

    assert holds_expire(now=later) == 1
    assert holds_expire(now=later) == 0  # a second run finds nothing

    statuses = dict(Hold.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "expired", fresh.pk: "held", captured.pk: "captured"}
    assert balances(funded) == (2300, 700, 0)
    assert_books_clean()


def test_the_expiry_task_reports_how_many_it_expired(funded):
    held = hold(funded, points=100)
    Hold.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert holds_expire_task() == {"expired": 1}
    assert Hold.objects.get(pk=held.pk).status == HoldStatus.EXPIRED
    assert balances(funded) == (3000, 0, 0)


# --- HTTP -----------------------------------------------------------------------------------


def holds_url(member_id) -> str:
    return f"{POS}/members/{member_id}/holds/"


def body(points=1000, **fields):
    return {"basket_reference": "cart-9", "basket_amount": "100.00", "points": points, **fields}


def test_post_hold_creates_it(pos_client, funded):
    response = pos_client.post(holds_url(funded.pk), body(), format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    held = Hold.objects.get()
    assert data["id"] == held.pk and data["member_id"] == funded.pk
    assert (data["points"], data["money_value"], data["status"]) == (1000, "10.00", "held")
    assert (data["basket_reference"], data["basket_amount"]) == ("cart-9", "100.00")
    assert data["balances"] == {"available": 2000, "pending": 0, "debt": 0}
    assert data["expires_at"]


def test_post_hold_with_an_idempotency_key_replays(pos_client, funded):
    first = pos_client.post(holds_url(funded.pk), body(), format="json", HTTP_IDEMPOTENCY_KEY="abc")
    again = pos_client.post(holds_url(funded.pk), body(), format="json", HTTP_IDEMPOTENCY_KEY="abc")

    assert first.status_code == 201 and again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert Hold.objects.count() == 1 and balances(funded) == (2000, 1000, 0)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (body(3001), 422, "hold_exceeds_share"),
        (body(0), 400, "validation_error"),
        (body(basket_amount="0.00"), 400, "validation_error"),
        ({"points": 10}, 400, "validation_error"),
    ],
)
def test_post_hold_refusals_write_nothing(pos_client, funded, payload, status, code):
    before = state_with_holds()

    response = pos_client.post(holds_url(funded.pk), payload, format="json")

    problem = assert_problem(response, status, code)
    if code == "hold_exceeds_share":
        assert problem["max_points"] == 3000
    assert state_with_holds() == before


def test_post_hold_for_another_programs_member_is_not_found(pos_client, other_program):
    stranger = MemberFactory(program=other_program)
    fund(stranger, 1000)

    assert_problem(pos_client.post(holds_url(stranger.pk), body(10), format="json"), 404, "member_not_found")
    assert Hold.objects.count() == 0


def test_capture_and_release_through_http(pos_client, funded):
    captured, released = hold(funded, points=100), hold(funded, points=200)

    response = pos_client.post(f"{POS}/holds/{captured.pk}/capture/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "captured" and response.json()["balances"]["available"] == 2700

    response = pos_client.post(f"{POS}/holds/{released.pk}/release/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "released" and response.json()["balances"]["available"] == 2900

    problem = assert_problem(pos_client.post(f"{POS}/holds/{released.pk}/capture/"), 409, "hold_not_active")
    assert problem["hold_status"] == "released"
    assert_problem(pos_client.post(f"{POS}/holds/{captured.pk}/release/"), 409, "hold_not_active")
    assert balances(funded) == (2900, 100, 0)
    assert_books_clean()


@pytest.mark.parametrize("action", ["capture", "release"])
def test_another_programs_hold_is_not_found(other_pos_client, funded, action):
    held = hold(funded)
    before = state_with_holds()

    assert_problem(other_pos_client.post(f"{POS}/holds/{held.pk}/{action}/"), 404, "hold_not_found")
    assert_problem(other_pos_client.post(f"{POS}/holds/99x/{action}/"), 404, "hold_not_found")
    assert state_with_holds() == before
