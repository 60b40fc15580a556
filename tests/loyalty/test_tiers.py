from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.models import Account, Tier, TierHistory
from loyalty.selectors import member_tier_summary
from loyalty.services.returns import return_record
from loyalty.services.tiers import tier_metric_value, tier_pin, tier_review, window_start
from loyalty.tasks import tier_review_task
from tests.builders import line, purchase, return_, tiered_program
from tests.factories import MemberFactory, StaffFactory

NOW = timezone.now()
pytestmark = pytest.mark.django_db


def tier_of(member):
    account = Account.objects.select_related("tier").get(pk=member.pk)
    return account.tier.name if account.tier else None


def test_promotion_happens_on_the_crossing_purchase():
    program, _ = tiered_program()
    member = MemberFactory(program=program)

    first = purchase(member, "P1", lines=[line("X", "80")])
    crossing = purchase(member, "P2", lines=[line("X", "30")])
    gold = purchase(member, "P3", lines=[line("X", "400")])

    assert first.outcome["tier"] == {"before": None, "after": None}
    assert crossing.outcome["tier"] == {"before": None, "after": "Silver"}
    assert gold.outcome["tier"] == {"before": "Silver", "after": "Gold"}
    assert list(TierHistory.objects.filter(member=member).order_by("pk").values_list("reason", flat=True)) == [
        "promotion",
        "promotion",
    ]


def test_tier_multiplier_applies_on_top():
    program, _ = tiered_program()
    member = MemberFactory(program=program)
    purchase(member, "P1", lines=[line("X", "500")])  # reaches Gold

    result = purchase(member, "P2", lines=[line("X", "100")])

    assert result.awards[-1] == {"rule": "Gold tier x1.5", "rule_id": None, "points": 50}
    assert result.points == 150


def test_review_downgrades_to_the_highest_tier_still_qualified():
    program, _ = tiered_program(tier_validity_days=30, tier_window_days=30)
    member = MemberFactory(program=program)
    purchase(member, "P1", lines=[line("X", "520")], occurred_at=NOW - timedelta(days=20))  # Gold
    purchase(member, "P2", lines=[line("X", "150")], occurred_at=NOW - timedelta(days=5))
    Account.objects.filter(pk=member.pk).update(tier_review_at=NOW)
    review_day = NOW + timedelta(days=15)  # P1 has left the 30-day window, P2 has not: Silver

    report = tier_review(now=review_day)

    assert (report.reviewed, report.downgraded) == (1, 1)
    assert tier_of(member) == "Silver"
    last = TierHistory.objects.filter(member=member).latest("pk")
    assert (last.reason, last.from_tier.name, last.to_tier.name, last.metric_value) == (
        "review",
        "Gold",
        "Silver",
        Decimal(225),  # 150 points x1.5 as Gold
    )
    assert tier_review(now=review_day).reviewed == 0  # the next review is a period away


def test_review_one_level_at_most_and_keep_when_still_qualified():
    program, _ = tiered_program(tier_downgrade="one_level", tier_window_days=30)
    leaver, keeper = MemberFactory(program=program), MemberFactory(program=program)
    purchase(leaver, "L1", lines=[line("X", "600")], occurred_at=NOW - timedelta(days=25))
    purchase(keeper, "K1", lines=[line("X", "600")], occurred_at=NOW - timedelta(days=1))
    Account.objects.filter(pk__in=[leaver.pk, keeper.pk]).update(tier_review_at=NOW)

    report = tier_review(now=NOW + timedelta(days=10))

    assert (report.reviewed, report.downgraded, report.kept) == (2, 1, 1)
    assert (tier_of(leaver), tier_of(keeper)) == ("Silver", "Gold")  # the leaver has 0 now but drops one level


def test_grace_period_delays_the_downgrade():
    program, _ = tiered_program(tier_grace_days=14, tier_window_days=30)
    member = MemberFactory(program=program)
    purchase(member, "P1", lines=[line("X", "520")], occurred_at=NOW - timedelta(days=20))
    Account.objects.filter(pk=member.pk).update(tier_review_at=NOW - timedelta(days=10))

    assert tier_review(now=NOW).reviewed == 0  # in the grace period
    assert tier_of(member) == "Gold"
    assert tier_review(now=NOW + timedelta(days=15)).downgraded == 1
    assert tier_of(member) is None


def test_pin_keeps_a_tier_until_its_date(db):
    program, tiers = tiered_program(tier_window_days=30)
    member = MemberFactory(program=program)
    manager = StaffFactory()

    tier_pin(member=member, tier=tiers["Gold"], until=NOW + timedelta(days=20), actor=manager, note="VIP guest")

    assert tier_of(member) == "Gold"
    pin = TierHistory.objects.get(member=member)
    assert (pin.reason, pin.actor, pin.note) == ("pin", manager, "VIP guest")
    Account.objects.filter(pk=member.pk).update(tier_review_at=NOW - timedelta(days=1))
    assert tier_review(now=NOW).reviewed == 0  # pinned
    assert tier_review(now=NOW + timedelta(days=21)).downgraded == 1  # the pin ended
    assert tier_of(member) is None


def test_a_return_that_drops_below_the_threshold_lowers_the_tier():
    program, _ = tiered_program()
    member = MemberFactory(program=program)
    purchase(member, "P1", lines=[line("X", "200")])
    purchase(member, "P2", lines=[line("X", "350")])  # Gold with 550
    assert tier_of(member) == "Gold"

    result = return_record(program=program, external_id="R1", purchase_external_id="P2", amount=Decimal("100"))

    assert result.tier == {"before": "Gold", "after": "Silver"}
    assert tier_of(member) == "Silver"
    assert TierHistory.objects.filter(member=member).latest("pk").reason == "return"


def test_calendar_year_window_versus_rolling(db):
    rolling, _ = tiered_program(tier_window_days=365)
    calendar, _ = tiered_program(tier_window="calendar_year")
    as_of = datetime(2026, 3, 1, 12, tzinfo=UTC)
    december = datetime(2025, 12, 20, 12, tzinfo=UTC)
    members = {}
    for program in (rolling, calendar):
        members[program.pk] = member = MemberFactory(program=program)
        purchase(member, f"{program.pk}-dec", lines=[line("X", "300")], occurred_at=december)
        purchase(member, f"{program.pk}-feb", lines=[line("X", "50")], occurred_at=datetime(2026, 2, 1, tzinfo=UTC))

    assert tier_metric_value(program=rolling, member_id=members[rolling.pk].pk, as_of=as_of) == Decimal(350)
    assert tier_metric_value(program=calendar, member_id=members[calendar.pk].pk, as_of=as_of) == Decimal(50)
    assert window_start(calendar, as_of) == datetime(2026, 1, 1, tzinfo=calendar.tz)


def test_spend_and_purchase_count_metrics(db):
    spend, _ = tiered_program(tier_metric="spend")
    count, _ = tiered_program(tier_metric="purchases")
    Tier.objects.filter(program=count).update(threshold=Decimal(2))
    for program in (spend, count):
        member = MemberFactory(program=program)
        purchase(member, f"{program.pk}-1", lines=[line("X", "60")])
        purchase(member, f"{program.pk}-2", lines=[line("X", "60")])
        return_(program, f"{program.pk}-1", f"{program.pk}-r", amount="60")
        metric = tier_metric_value(program=program, member_id=member.pk, as_of=timezone.now())
        assert metric == (Decimal(60) if program == spend else Decimal(1))


def test_tier_summary_tells_what_is_missing():
    program, _ = tiered_program()
    member = MemberFactory(program=program)
    purchase(member, "P1", lines=[line("X", "120")])

    summary = member_tier_summary(member=member)

    assert summary["tier"]["name"] == "Silver"
    assert (summary["metric_value"], summary["next_tier"]["name"], summary["missing_for_next"]) == (
        Decimal(120),
        "Gold",
        Decimal(380),
    )
    assert summary["missing_to_keep"] == Decimal(0)
    assert summary["review_at"] is not None


@pytest.mark.django_db
def test_review_task_reports():
    assert tier_review_task.apply().get() == {"reviewed": 0, "downgraded": 0, "kept": 0}


def test_pin_refuses_another_programs_tier_and_past_dates():
    from loyalty.exceptions import InvalidPin, TierNotInProgram

    program, _ = tiered_program()
    _, foreign = tiered_program()
    member = MemberFactory(program=program)
    with pytest.raises(TierNotInProgram):
        tier_pin(member=member, tier=foreign["Gold"], until=NOW + timedelta(days=5), actor=StaffFactory())
    with pytest.raises(InvalidPin):
        tier_pin(member=member, tier=None, until=NOW - timedelta(days=1), actor=StaffFactory())
    assert not TierHistory.objects.filter(member=member).exists()


def test_the_end_of_a_pin_is_recorded():
    program, tiers = tiered_program()
    member = MemberFactory(program=program)
    purchase(member, "P1", lines=[line("X", "600")])  # qualifies for Gold on its own
    tier_pin(member=member, tier=tiers["Gold"], until=NOW + timedelta(days=2), actor=StaffFactory())

    report = tier_review(now=NOW + timedelta(days=3))

    assert (report.reviewed, report.kept) == (1, 1)
    last = TierHistory.objects.filter(member=member).latest("pk")
    assert (last.reason, last.from_tier.name, last.to_tier.name) == ("unpin", "Gold", "Gold")
