"""member.segment_changed from the analytics refresh: one event per move from one segment to another, in the
refresh's transaction; a first segment, a lost segment and a refresh without change emit nothing."""

from decimal import Decimal

import pytest

from analytics.members import member_analytics_refresh
from analytics.models import MemberAnalytics, SegmentChange
from events.models import OutboxEvent
from events.outbox import EventType
from tests.analytics.population import AS_OF, NEXT_DAY, at, population
from tests.builders import purchase, return_
from tests.factories import MemberFactory, ProgramFactory


def moves() -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(type=EventType.MEMBER_SEGMENT_CHANGED).order_by("member_id"))


@pytest.fixture
def shop(db):
    return ProgramFactory(timezone="Europe/Prague", margin_rate=Decimal("0.3"))


def test_a_first_segment_emits_nothing_and_nor_does_a_repeat(shop):
    population(shop)

    first = member_analytics_refresh(program=shop, as_of=AS_OF)
    member_analytics_refresh(program=shop, as_of=AS_OF)

    assert first.segment_changes == 5 == SegmentChange.objects.count()  # the history keeps first segments
    assert moves() == []


def test_each_move_emits_one_event_with_the_members_figures(shop):
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    purchase(members["ben"], "B2", "500.00", occurred_at=at(6, 30, 8))

    member_analytics_refresh(program=shop, as_of=NEXT_DAY)
    member_analytics_refresh(program=shop, as_of=NEXT_DAY)  # nothing changes: nothing more

    ben, cid, hana = moves()
    assert [(e.member_id, e.data["from"], e.data["to"]) for e in (ben, cid, hana)] == [
        (members["ben"].pk, "Hibernating", "Loyal"),
        (members["cid"].pk, "Need Attention", "Hibernating"),
        (members["hana"].pk, "Champions", "Loyal"),
    ]
    assert (ben.program_id, ben.occurred_at, ben.version) == (shop.pk, NEXT_DAY, 1)
    assert ben.data == {
        "member_id": members["ben"].pk,
        "from": "Hibernating",
        "to": "Loyal",
        "scores": {"r": 5, "f": 2, "m": 5},
        "recency_days": 1,
        "purchases": 2,
        "monetary": "580.00",
        "last_purchase_at": "2025-06-30T08:00:00Z",
    }
    assert hana.data["scores"] == {"r": 3, "f": 2, "m": 4}
    changes = SegmentChange.objects.filter(changed_at=NEXT_DAY, from_segment__gt="")
    assert set(changes.values_list("member_id", flat=True)) == {e.member_id for e in moves()}


def test_losing_the_segment_is_recorded_but_emits_nothing(shop):
    ana, ben = MemberFactory(program=shop), MemberFactory(program=shop)
    purchase(ana, "A1", "30.00", occurred_at=at(6, 1, 10))
    purchase(ben, "B1", "40.00", occurred_at=at(6, 2, 10))
    member_analytics_refresh(program=shop, as_of=AS_OF)
    return_(shop, "B1", amount="40.00", occurred_at=NEXT_DAY)

    member_analytics_refresh(program=shop, as_of=NEXT_DAY)

    assert list(SegmentChange.objects.filter(member=ben).values_list("from_segment", "to_segment")) == [
        ("Need Attention", ""),  # newest first
        ("", "Need Attention"),
    ]
    assert MemberAnalytics.objects.get(member=ben).segment == ""
    assert MemberAnalytics.objects.get(member=ana).segment == "Lost"  # alone: every score 1, as before
    assert moves() == []


def test_a_refresh_that_fails_leaves_no_event(shop, monkeypatch):
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    purchase(members["ben"], "B2", "500.00", occurred_at=at(6, 30, 8))
    before = sorted(MemberAnalytics.objects.values_list("member_id", "segment"))

    def fail(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("analytics.segment_events.events_emit", fail)
    with pytest.raises(RuntimeError):
        member_analytics_refresh(program=shop, as_of=NEXT_DAY)

    assert sorted(MemberAnalytics.objects.values_list("member_id", "segment")) == before
    assert SegmentChange.objects.filter(changed_at=NEXT_DAY).count() == 0
    assert moves() == []
