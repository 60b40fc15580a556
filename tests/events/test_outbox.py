"""The outbox: business events written in the transaction of their change, never for a rolled-back one."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from analytics.models import NpsSource
from analytics.services.nps import nps_record
from events.models import OutboxEvent
from events.outbox import EventOutsideTransaction, EventType, event_emit
from loyalty.services.enrollment import member_enroll
from rewards.services import reward_redeem
from tests.builders import fund, line, purchase, tiered_program
from tests.factories import RewardFactory

pytestmark = pytest.mark.django_db


def events(**filters):
    return list(OutboxEvent.objects.filter(**filters).order_by("id"))


@pytest.mark.django_db(transaction=True)  # no test transaction around it
def test_an_event_outside_a_transaction_is_refused(program):
    with pytest.raises(EventOutsideTransaction):
        event_emit(program_id=program.pk, type=EventType.MEMBER_INACTIVE, data={})
    assert not OutboxEvent.objects.exists()


def test_a_rolled_back_change_leaves_no_event(program):
    with pytest.raises(RuntimeError), transaction.atomic():
        member_enroll(program=program, external_id="CUST-1", email="a@example.com")
        raise RuntimeError("the till's connection dropped")

    assert not OutboxEvent.objects.exists()


def test_enrolment_emits_member_enrolled(program):
    member = member_enroll(program=program, external_id="CUST-2", email="b@example.com", acquisition_channel="app")

    [event] = events(type=EventType.MEMBER_ENROLLED)
    assert (event.program_id, event.member_id, event.version) == (program.pk, member.pk, 1)
    assert event.event_id.startswith("evt_") and len(event.event_id) == 36
    assert event.data | {"enrolled_at": None} == {
        "member_id": member.pk,
        "external_id": "CUST-2",
        "email": "b@example.com",
        "enrolled_at": None,
        "acquisition_channel": "app",
        "referred_by": None,
        "consents": {"email": False, "sms": False, "push": False},
    }


def test_a_purchase_emits_points_earned_once_even_when_retried():
    program, _ = tiered_program()  # base rate 1 point per EUR
    member = member_enroll(program=program, external_id="CUST-3", email="c@example.com")

    at = timezone.now()
    purchase(member, "P-1", lines=[line("X", "120")], occurred_at=at)
    purchase(member, "P-1", lines=[line("X", "120")], occurred_at=at)  # a retry replays the first answer

    [event] = events(type=EventType.POINTS_EARNED)
    assert event.data["points"] == 120 and event.data["member_id"] == member.pk
    assert event.data["awards"] == [{"rule": "Base", "rule_id": program.earning_rules.get().pk, "points": 120}]
    assert event.data["reason"] == {"purchase": "P-1"}
    assert event.data["balances"] == {"available": 120, "pending": 0, "debt": 0}


def test_a_redemption_emits_reward_redeemed_and_voucher_issued(program, member):
    fund(member, 500)
    reward = RewardFactory(program=program, name="Coffee", points_cost=200)

    voucher = reward_redeem(member=member, reward=reward).voucher

    redeemed, issued = events(member=member)
    assert (redeemed.type, issued.type) == (EventType.REWARD_REDEEMED, EventType.VOUCHER_ISSUED)
    assert redeemed.data["points_spent"] == 200 and redeemed.data["balances"]["available"] == 300
    assert issued.data["code"] == voucher.display_code and issued.data["value"] == "5.00"
    assert redeemed.occurred_at == issued.occurred_at <= timezone.now()


def test_an_nps_answer_emits_nps_answered(program, member):
    result = nps_record(member=member, score=9, comment="Lovely staff", source=NpsSource.APP)

    [event] = events(type=EventType.NPS_ANSWERED)
    assert event.data == {
        "member_id": member.pk,
        "answer_id": result.answer.pk,
        "score": 9,
        "comment": "Lovely staff",
        "source": "app",
    }
    assert Decimal(9) == event.data["score"]


def test_the_outbox_is_read_only_in_the_admin_and_scoped(client, program, other_program, member, manager):
    from django.contrib.auth.models import Permission

    member_enroll(program=other_program, external_id="ELSEWHERE", email="x@example.com")
    nps_record(member=member, score=7, source=NpsSource.APP)
    manager.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    client.force_login(manager)

    listing = client.get("/admin/events/outboxevent/")

    assert listing.status_code == 200
    assert [event.type for event in listing.context["cl"].result_list] == [EventType.NPS_ANSWERED]
    event = OutboxEvent.objects.get(type=EventType.NPS_ANSWERED)
    assert client.post(f"/admin/events/outboxevent/{event.pk}/delete/").status_code == 403


def test_a_return_emits_points_reversed_with_the_debt_it_made():
    from loyalty.services.ledger import ledger_debit
    from loyalty.services.returns import return_record

    program, _ = tiered_program()
    member = member_enroll(program=program, external_id="CUST-R", email="r@example.com")
    purchase(member, "P-R", lines=[line("X", "100")], occurred_at=timezone.now())
    ledger_debit(member=member, amount=80)  # 20 left

    return_record(program=program, external_id="RET-1", purchase_external_id="P-R", amount=Decimal("50"))

    [event] = events(type=EventType.POINTS_REVERSED)
    assert event.data | {"balances": None} == {
        "member_id": member.pk,
        "points": 50,
        "purchase": "P-R",
        "return": "RET-1",
        "amount": "50",
        "debt_added": 30,  # 50 reversed, 20 there
        "balances": None,
    }
    assert event.data["balances"] == {"available": 0, "pending": 0, "debt": 30}


def test_a_voucher_used_at_the_till_emits_voucher_redeemed(program, member):
    from rewards.services import voucher_redeem

    fund(member, 500)
    voucher = reward_redeem(member=member, reward=RewardFactory(program=program, points_cost=100)).voucher

    voucher_redeem(program=program, code=voucher.code, reference="TILL7-9", basket_amount=Decimal("40"))
    voucher_redeem(program=program, code=voucher.code, reference="TILL7-9", basket_amount=Decimal("40"))  # replay

    [event] = events(type=EventType.VOUCHER_REDEEMED)
    assert (event.data["voucher_id"], event.data["reference"], event.data["discount"]) == (
        voucher.pk,
        "TILL7-9",
        "5.00",
    )


def test_the_expiry_jobs_emit_once_per_member_and_run(program, member):
    from datetime import timedelta

    from loyalty.services.lots import lots_expire, lots_warn_expiring

    program.expiry_policy = "days"
    program.save(update_fields=["expiry_policy"])
    now = timezone.now()
    fund(member, 70, expires_in_days=10)
    fund(member, 30, expires_in_days=12)

    lots_warn_expiring(now=now)
    lots_warn_expiring(now=now)  # warned once
    lots_expire(now=now + timedelta(days=13))
    lots_expire(now=now + timedelta(days=13))  # nothing left to expire

    [warning] = events(type=EventType.POINTS_EXPIRING_SOON)
    [expired] = events(type=EventType.POINTS_EXPIRED)
    assert (warning.member_id, warning.data["points"]) == (member.pk, 100)
    assert (expired.data["points"], expired.data["lots"], expired.data["balances"]["available"]) == (100, 2, 0)


def test_tier_changes_emit_promoted_and_downgraded():
    from datetime import timedelta

    from loyalty.models import Account, Purchase
    from loyalty.services.tiers import tier_review

    program, _ = tiered_program()  # Silver 100, Gold 500 qualifying points
    member = member_enroll(program=program, external_id="CUST-T", email="t@example.com")
    purchase(member, "P-T", lines=[line("X", "150")], occurred_at=timezone.now())  # Silver at once
    # A year on: the purchase has left the 365-day window and the review date has passed.
    Purchase.objects.filter(external_id="P-T").update(occurred_at=timezone.now() - timedelta(days=400))
    Account.objects.filter(pk=member.pk).update(tier_review_at=timezone.now() - timedelta(days=1))

    tier_review()

    promoted, downgraded = events(type__startswith="tier.")
    assert (promoted.type, promoted.data["from"], promoted.data["to"]["name"]) == (
        EventType.TIER_PROMOTED,
        None,
        "Silver",
    )
    assert (downgraded.type, downgraded.data["from"]["name"], downgraded.data["to"], downgraded.data["reason"]) == (
        EventType.TIER_DOWNGRADED,
        "Silver",
        None,
        "review",
    )
