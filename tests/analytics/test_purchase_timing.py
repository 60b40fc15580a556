"""Events from time, not requests (`analytics.services.purchase_timing`): member.inactive and member.next_purchase_due,
once each across repeated runs, again after a new purchase, with their marks in the transaction of the events."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import analytics.services.purchase_timing as timing
from analytics.members import member_analytics_refresh
from analytics.services.purchase_timing import members_inactive_notify, next_purchases_due_notify
from analytics.tasks import member_timing_events_task
from config.celery import app as celery_app
from events.models import OutboxEvent
from events.outbox import EventType
from loyalty.models import Account
from loyalty.services.ledger import ledger_credit
from loyalty.services.returns import return_record
from members.models import MemberStatus
from tests.builders import purchase
from tests.concurrency import run_at_once
from tests.factories import MemberFactory, ProgramFactory

NOW = datetime(2025, 6, 30, 8, 0, tzinfo=UTC)  # 10:00 in Prague


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def events(type: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(type=type).order_by("id"))


def inactive_members() -> list[int]:
    return [event.member_id for event in events(EventType.MEMBER_INACTIVE)]


@pytest.fixture
def shop(db):
    return ProgramFactory(timezone="Europe/Prague", inactive_days=30)


# --- member.inactive ---------------------------------------------------------------------------------


def test_inactive_members_get_one_event_each_with_their_figures(shop):
    ana = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(ana, "A1", "50.00", occurred_at=at(3, 1))
    purchase(ana, "A2", "50.00", occurred_at=at(5, 1))  # 60 days before NOW
    ledger_credit(member=ana, amount=120)
    ben = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(ben, "B1", "50.00", occurred_at=at(6, 20))  # bought 10 days ago: active
    cid = MemberFactory(program=shop, enrolled_at=at(5, 20, 9))  # never bought, enrolled 41 days ago
    MemberFactory(program=shop, enrolled_at=at(6, 10))  # never bought, enrolled 20 days ago: not yet
    MemberFactory(program=shop, enrolled_at=at(1, 1), status=MemberStatus.SUSPENDED)
    MemberFactory(program=ProgramFactory(is_active=False, inactive_days=30), enrolled_at=at(1, 1))

    report = members_inactive_notify(now=NOW)

    assert report.as_dict() == {"members": 2, "batches": 1}
    by_member = {event.member_id: event for event in events(EventType.MEMBER_INACTIVE)}
    assert set(by_member) == {ana.pk, cid.pk}
    assert (by_member[ana.pk].program_id, by_member[ana.pk].occurred_at) == (shop.pk, NOW)
    assert by_member[ana.pk].data == {
        "member_id": ana.pk,
        "inactive_since": "2025-05-01T10:00:00Z",
        "last_purchase_at": "2025-05-01T10:00:00Z",
        "inactive_days": 30,
        "days_inactive": 60,
        "segment": None,  # no analytics refresh yet
        "balances": {"available": 120, "pending": 0, "debt": 0},
    }
    assert by_member[cid.pk].data == {
        "member_id": cid.pk,
        "inactive_since": "2025-05-20T09:00:00Z",  # counted from enrolment
        "last_purchase_at": None,
        "inactive_days": 30,
        "days_inactive": 41,
        "segment": None,
        "balances": {"available": 0, "pending": 0, "debt": 0},
    }
    marks = dict(Account.objects.values_list("pk", "inactive_notified_for"))
    assert (marks[ana.pk], marks[cid.pk], marks[ben.pk]) == (at(5, 1), at(5, 20, 9), None)


def test_inactivity_is_announced_once_per_spell_and_a_new_purchase_starts_a_new_one(shop):
    ana = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(ana, "A1", "50.00", occurred_at=at(5, 1))

    members_inactive_notify(now=NOW)
    members_inactive_notify(now=NOW)
    members_inactive_notify(now=NOW + timedelta(days=10))  # still the same spell
    assert inactive_members() == [ana.pk]

    purchase(ana, "A2", "50.00", occurred_at=at(7, 1))  # back
    assert members_inactive_notify(now=at(7, 20)).members == 0
    assert members_inactive_notify(now=at(7, 31, 12)).members == 1  # 30 days after July 1 (Prague)
    assert members_inactive_notify(now=at(8, 15)).members == 0

    second = events(EventType.MEMBER_INACTIVE)[-1]
    assert inactive_members() == [ana.pk, ana.pk]
    assert (second.data["inactive_since"], second.data["days_inactive"]) == ("2025-07-01T10:00:00Z", 30)


def test_a_fully_returned_purchase_does_not_end_the_spell(shop):
    ana = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(ana, "A1", "50.00", occurred_at=at(4, 1))
    members_inactive_notify(now=NOW)

    purchase(ana, "A2", "50.00", occurred_at=at(7, 1))
    return_record(program=shop, external_id="R-A2", purchase_external_id="A2", amount=Decimal("50.00"))
    members_inactive_notify(now=at(8, 15))

    assert inactive_members() == [ana.pk]


def test_inactivity_counts_local_calendar_days_across_a_clock_change(shop):
    # Bought on March 20 at 11:00 in Prague (CET, 10:00 UTC); clocks go forward on March 30. Thirty local days
    # later is April 19 at 11:00 CEST, 09:00 UTC: an hour before thirty times 24 hours.
    ana = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(ana, "A1", "50.00", occurred_at=at(3, 20, 10))

    assert members_inactive_notify(now=at(4, 19, 8, 59)).members == 0
    assert members_inactive_notify(now=at(4, 19, 9, 1)).members == 1


def test_inactivity_works_in_batches_and_a_batch_that_fails_leaves_no_mark_and_no_event(shop, monkeypatch):
    members = [MemberFactory(program=shop, enrolled_at=at(1, 1)) for _ in range(5)]
    emit = timing.events_emit
    calls = []

    def crash_on_the_second_batch(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return emit(**kwargs)

    monkeypatch.setattr(timing, "events_emit", crash_on_the_second_batch)
    with pytest.raises(RuntimeError):
        members_inactive_notify(now=NOW, batch_size=2)

    first_two = {m.pk for m in members[:2]}
    assert set(inactive_members()) == first_two
    marked = set(Account.objects.filter(inactive_notified_for__isnull=False).values_list("pk", flat=True))
    assert marked == first_two  # the second batch's marks rolled back with its events

    monkeypatch.setattr(timing, "events_emit", emit)
    report = members_inactive_notify(now=NOW, batch_size=2)  # the run again, after the crash

    assert report.as_dict() == {"members": 3, "batches": 2}
    assert sorted(inactive_members()) == sorted(m.pk for m in members)


def test_a_closed_member_is_not_announced(shop):
    MemberFactory(program=shop, enrolled_at=at(1, 1), status=MemberStatus.CLOSED)

    assert members_inactive_notify(now=NOW).members == 0
    assert events(EventType.MEMBER_INACTIVE) == []


# --- member.next_purchase_due ------------------------------------------------------------------------


@pytest.fixture
def hana(shop):
    """Two purchases 18 days apart: the next is expected on July 16, 10:00 UTC (12:00 in Prague)."""
    member = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(member, "H1", "100.00", occurred_at=at(6, 10))
    purchase(member, "H2", "100.00", occurred_at=at(6, 28))
    once = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(once, "O1", "80.00", occurred_at=at(3, 15))  # a single purchase: no expected date
    member_analytics_refresh(program=shop, as_of=NOW)
    return member


def due_members() -> list[int]:
    return [event.member_id for event in events(EventType.MEMBER_NEXT_PURCHASE_DUE)]


def test_the_next_purchase_is_due_on_its_local_day_once(shop, hana):
    assert next_purchases_due_notify(now=at(7, 15, 21, 59)).members == 0  # 23:59 on July 15 in Prague
    report = next_purchases_due_notify(now=at(7, 15, 22, 1))  # 00:01 on July 16 in Prague, before 12:00

    assert report.as_dict() == {"members": 1, "batches": 1}
    [event] = events(EventType.MEMBER_NEXT_PURCHASE_DUE)
    assert (event.member_id, event.program_id, event.occurred_at) == (hana.pk, shop.pk, at(7, 15, 22, 1))
    assert event.data == {
        "member_id": hana.pk,
        "expected_at": "2025-07-16T10:00:00Z",
        "last_purchase_at": "2025-06-28T10:00:00Z",
        "mean_days_between_purchases": 18.0,
        "purchases": 2,
        "segment": "Loyal",  # R3 and FM 3 among the two buyers
    }
    assert Account.objects.get(pk=hana.pk).next_purchase_notified_for == at(7, 16)

    next_purchases_due_notify(now=at(7, 16, 12))
    member_analytics_refresh(program=shop, as_of=at(7, 17))  # the same date computed again
    next_purchases_due_notify(now=at(7, 17, 12))

    assert due_members() == [hana.pk]


def test_a_new_purchase_and_a_new_expected_date_are_announced_again(shop, hana):
    next_purchases_due_notify(now=at(7, 16, 12))

    purchase(hana, "H3", "100.00", occurred_at=at(7, 20))
    assert next_purchases_due_notify(now=at(7, 20, 12)).members == 0  # bought since; no refresh yet
    member_analytics_refresh(program=shop, as_of=at(7, 21))  # June 10 to July 20: 40 days over 2 gaps
    assert next_purchases_due_notify(now=at(8, 8, 12)).members == 0
    assert next_purchases_due_notify(now=at(8, 9, 12)).members == 1
    assert next_purchases_due_notify(now=at(8, 10, 12)).members == 0

    assert due_members() == [hana.pk, hana.pk]
    later = events(EventType.MEMBER_NEXT_PURCHASE_DUE)[-1]
    assert (later.data["expected_at"], later.data["mean_days_between_purchases"]) == ("2025-08-09T10:00:00Z", 20.0)


def test_a_purchase_after_the_refresh_stops_the_nudge(shop, hana):
    purchase(hana, "H3", "10.00", occurred_at=at(7, 14))  # before the expected date, after the last refresh

    assert next_purchases_due_notify(now=at(7, 16, 12)).members == 0


def test_a_date_older_than_the_lookback_is_not_announced(shop, hana):
    assert next_purchases_due_notify(now=at(7, 24, 12)).members == 0  # 8 days late (first run, say)
    assert next_purchases_due_notify(now=at(7, 23, 12)).members == 1  # 7 days late: still announced


def test_members_not_active_are_not_nudged(shop, hana):
    hana.status = MemberStatus.SUSPENDED
    hana.save(update_fields=["status"])

    assert next_purchases_due_notify(now=at(7, 16, 12)).members == 0


def test_the_daily_task_runs_both_jobs_and_is_scheduled(shop, hana):
    ana = MemberFactory(program=shop, enrolled_at=at(1, 1))
    purchase(ana, "A1", "50.00", occurred_at=at(5, 1))

    # The task runs at the real time (2025 purchases are long past): ana and hana are inactive; hana's expected
    # date is far more than a week old.
    outcome = member_timing_events_task.apply().get()

    assert outcome == {
        "inactive": {"members": 3, "batches": 1},  # ana, hana and the one-purchase member
        "next_purchase_due": {"members": 0, "batches": 0},
    }
    assert member_timing_events_task.apply().get()["inactive"]["members"] == 0
    entry = celery_app.conf.beat_schedule["member-timing-events"]
    assert entry["task"] == "analytics.tasks.member_timing_events_task"
    assert (entry["schedule"].hour, entry["schedule"].minute) == (set(range(24)), {50})  # hourly: local days
    assert member_timing_events_task.acks_late and member_timing_events_task.reject_on_worker_lost


# --- Concurrent runs (PostgreSQL) ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_runs_at_the_same_time_announce_each_member_once():
    shop = ProgramFactory(timezone="Europe/Prague", inactive_days=30)
    members = [MemberFactory(program=shop, enrolled_at=at(1, 1)) for _ in range(12)]  # no accounts yet
    for i, member in enumerate(members[:6]):
        purchase(member, f"P{i}a", "50.00", occurred_at=at(5, 1))
        purchase(member, f"P{i}b", "50.00", occurred_at=at(5, 21))  # the next purchase is expected on June 10
    member_analytics_refresh(program=shop, as_of=at(5, 31))

    def both_jobs(i: int) -> tuple[int, int]:
        inactive = members_inactive_notify(now=NOW, batch_size=5).members
        return inactive, next_purchases_due_notify(now=at(6, 12), batch_size=5).members

    results = run_at_once(4, both_jobs)

    assert all(isinstance(result, tuple) for result in results), results
    assert sum(inactive for inactive, _ in results) == 12
    assert sum(due for _, due in results) == 6
    assert sorted(inactive_members()) == sorted(m.pk for m in members)
    assert sorted(due_members()) == sorted(m.pk for m in members[:6])
