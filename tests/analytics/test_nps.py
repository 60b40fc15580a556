"""NPS answers and the program's score against hand-computed examples (analytics.nps)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.exceptions import NpsAnswerInvalid
from analytics.metrics import MemberFilters, Period, month_periods
from analytics.models import AcquisitionCost, NpsAnswer, NpsSource
from analytics.nps import NpsFigures, nps_by_month, nps_by_segment, nps_by_tier, nps_summary
from analytics.services.nps import nps_record
from loyalty.exceptions import OccurredInFuture
from loyalty.models import Account, Award, Entry
from members.exceptions import MemberClosed, MemberSuspended
from members.services.members import member_close, member_suspend
from tests import builders
from tests.factories import AcquisitionCostFactory, MemberAnalyticsFactory, MemberFactory, StaffFactory

pytestmark = pytest.mark.django_db

PRAGUE = ZoneInfo("Europe/Prague")


def at(year, month, day, hour=12, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=PRAGUE)


def nps_rule(program, points=50, **limits):
    return builders.rule(
        program, name="Thanks for your answer", kind="event", event="nps_answer", points=points, **limits
    )


def available(member):
    return Account.objects.get(pk=member.pk).available


# --- Recording an answer -------------------------------------------------------------------------------------


def test_an_answer_is_stored_and_earns_the_rule_points(program, member):
    rule = nps_rule(program)

    result = nps_record(member=member, score=9, comment="Friendly staff", source=NpsSource.APP)

    answer = NpsAnswer.objects.get()
    assert (answer.program, answer.member, answer.score, answer.comment, answer.source) == (
        program,
        member,
        9,
        "Friendly staff",
        "app",
    )
    assert result.answer == answer
    assert (result.points, result.awards) == (
        50,
        [{"rule": "Thanks for your answer", "rule_id": rule.pk, "points": 50}],
    )
    assert result.balances == {"available": 50, "pending": 0, "debt": 0}
    entry = Entry.objects.get(member=member)
    assert (entry.kind, entry.amount, entry.key, entry.details["event"]) == (
        "earn",
        50,
        f"nps:{answer.pk}",
        "nps_answer",
    )
    assert Award.objects.get(member=member).event == "nps_answer"


def test_the_rule_limit_decides_whether_answering_again_earns(program, member):
    nps_rule(program, cap_per_member_month=50)

    first = nps_record(member=member, score=10, source=NpsSource.APP)
    second = nps_record(member=member, score=3, source=NpsSource.INTEGRATION)

    assert (first.points, second.points) == (50, 0)
    assert NpsAnswer.objects.filter(member=member).count() == 2  # every answer is kept
    assert available(member) == 50
    assert Entry.objects.filter(member=member).count() == 1


def test_without_a_rule_the_answer_is_stored_without_points(program, member):
    result = nps_record(member=member, score=7, source=NpsSource.INTEGRATION)

    assert (result.points, result.awards, Entry.objects.count()) == (0, [], 0)
    assert NpsAnswer.objects.get().score == 7


def test_an_earlier_answer_keeps_its_time_and_earns_on_that_day(program, member):
    nps_rule(program, cap_per_member_day=50)
    yesterday = timezone.now() - timedelta(days=1)

    nps_record(member=member, score=8, source=NpsSource.INTEGRATION, answered_at=yesterday)
    today = nps_record(member=member, score=8, source=NpsSource.INTEGRATION)

    assert NpsAnswer.objects.order_by("pk").first().answered_at == yesterday
    assert today.points == 50  # the daily cap counts days of the answers
    assert available(member) == 100


@pytest.mark.parametrize("score", [-1, 11, 9.5, True, "9", None])
def test_bad_scores_are_refused_and_nothing_is_written(program, member, score):
    nps_rule(program)

    with pytest.raises(NpsAnswerInvalid):
        nps_record(member=member, score=score, source=NpsSource.APP)

    assert (NpsAnswer.objects.count(), Entry.objects.count()) == (0, 0)


def test_edge_scores_are_accepted(program, member):
    assert [nps_record(member=member, score=s, source=NpsSource.APP).answer.score for s in (0, 10)] == [0, 10]


def test_too_long_comments_and_future_answers_are_refused(program, member):
    with pytest.raises(NpsAnswerInvalid):
        nps_record(member=member, score=5, comment="x" * 2001, source=NpsSource.APP)
    with pytest.raises(OccurredInFuture):
        nps_record(
            member=member, score=5, source=NpsSource.INTEGRATION, answered_at=timezone.now() + timedelta(minutes=10)
        )

    assert not NpsAnswer.objects.exists()


def test_suspended_and_closed_members_cannot_answer(program):
    nps_rule(program)
    suspended, closed = MemberFactory(program=program), MemberFactory(program=program)
    member_suspend(member=suspended)
    member_close(member=closed)

    with pytest.raises(MemberSuspended):
        nps_record(member=suspended, score=9, source=NpsSource.APP)
    with pytest.raises(MemberClosed):
        nps_record(member=closed, score=9, source=NpsSource.APP)

    assert (NpsAnswer.objects.count(), Entry.objects.count()) == (0, 0)


# --- The score -----------------------------------------------------------------------------------------------


@pytest.fixture
def survey(program):
    """Gold: P1, P2. Silver: P3, P5. P4 without a tier. Segments: P1 and P3 Champions, P2 At Risk.

    September: P1 10 then 6, P2 8, P3 9. October: P1 9, P2 3 (31 October 23:30 in Prague), P4 7, P5 2 and 10
    at the same moment (the later recorded counts). November: P3 10 (1 November 00:30 in Prague, still
    October in UTC)."""
    silver = builders.tier(program, "Silver", rank=1, threshold=0)
    gold = builders.tier(program, "Gold", rank=2, threshold=1000)
    members = [MemberFactory(program=program, first_name=f"P{i}") for i in range(1, 6)]
    for member, tier in zip(members, [gold, gold, silver, None, silver], strict=True):
        Account.objects.create(member=member, program=program, tier=tier)
    for member, segment in zip(members[:3], ["Champions", "At Risk", "Champions"], strict=True):
        MemberAnalyticsFactory(member=member, program=program, computed_at=timezone.now(), segment=segment)
    p1, p2, p3, p4, p5 = members
    tie = at(2026, 10, 12)
    answers = [
        (p1, 10, at(2026, 9, 3)),
        (p1, 6, at(2026, 9, 20)),
        (p2, 8, at(2026, 9, 10)),
        (p3, 9, at(2026, 9, 15)),
        (p1, 9, at(2026, 10, 5)),
        (p2, 3, at(2026, 10, 31, 23, 30)),
        (p4, 7, at(2026, 10, 10)),
        (p5, 2, tie),
        (p5, 10, tie),
        (p3, 10, at(2026, 11, 1, 0, 30)),
    ]
    for member, score, when in answers:
        nps_record(member=member, score=score, source=NpsSource.IMPORT, answered_at=when)
    return {"silver": silver, "gold": gold, "members": members}


def figures(respondents, promoters, passives, detractors, nps):
    return NpsFigures(respondents, promoters, passives, detractors, nps)


SEP_TO_NOV = Period(at(2026, 9, 1, 0), at(2026, 12, 1, 0))


def test_nps_month_by_month_with_each_members_latest_answer(program, survey, django_assert_num_queries):
    periods = month_periods(program, months=4, through=date(2026, 11, 1))

    with django_assert_num_queries(1):
        months = nps_by_month(program, periods)

    assert months == [
        (date(2026, 8, 1), figures(0, 0, 0, 0, None)),
        (date(2026, 9, 1), figures(3, 1, 1, 1, 0.0)),  # P1 6, P2 8, P3 9
        (date(2026, 10, 1), figures(4, 2, 1, 1, 25.0)),  # P1 9, P2 3, P4 7, P5 10
        (date(2026, 11, 1), figures(1, 1, 0, 0, 100.0)),  # P3 10
    ]


def test_nps_over_a_span_counts_each_member_once(program, survey):
    # Latest answers: P1 9, P2 3, P3 10, P4 7, P5 10: (3 - 1) / 5.
    assert nps_summary(program, SEP_TO_NOV) == figures(5, 3, 1, 1, 40.0)
    assert nps_summary(program, Period(at(2026, 9, 1, 0), at(2026, 10, 1, 0))) == figures(3, 1, 1, 1, 0.0)
    assert nps_summary(program, Period(at(2026, 1, 1, 0), at(2026, 2, 1, 0))) == figures(0, 0, 0, 0, None)


def test_nps_by_tier(program, survey):
    silver, gold = survey["silver"], survey["gold"]

    assert nps_by_tier(program, SEP_TO_NOV) == [
        (silver.pk, "Silver", figures(2, 2, 0, 0, 100.0)),  # P3 10, P5 10
        (gold.pk, "Gold", figures(2, 1, 0, 1, 0.0)),  # P1 9, P2 3
        (None, None, figures(1, 0, 1, 0, 0.0)),  # P4 7
    ]


def test_nps_by_segment(program, survey):
    assert nps_by_segment(program, SEP_TO_NOV) == [
        ("At Risk", figures(1, 0, 0, 1, -100.0)),  # P2 3
        ("Champions", figures(2, 2, 0, 0, 100.0)),  # P1 9, P3 10
        (None, figures(2, 1, 1, 0, 50.0)),  # P4 7, P5 10
    ]


def test_nps_filtered_by_tier(program, survey):
    gold = MemberFilters(tier_id=survey["gold"].pk)
    periods = month_periods(program, months=2, through=date(2026, 10, 1))

    assert nps_by_month(program, periods, gold) == [
        (date(2026, 9, 1), figures(2, 0, 1, 1, -50.0)),  # P1 6, P2 8
        (date(2026, 10, 1), figures(2, 1, 0, 1, 0.0)),  # P1 9, P2 3
    ]


def test_answers_of_other_programs_do_not_count(program, other_program, survey):
    nps_record(member=MemberFactory(program=other_program), score=0, source=NpsSource.APP, answered_at=at(2026, 9, 5))

    assert nps_summary(program, SEP_TO_NOV) == figures(5, 3, 1, 1, 40.0)
    assert nps_summary(other_program, Period(datetime(2026, 9, 1, tzinfo=UTC), at(2026, 10, 1))).nps == -100.0


# --- Admin -----------------------------------------------------------------------------------------------------


def _manager_of(program, *codenames):
    user = StaffFactory(permissions=list(codenames), programs=[program])
    return user


def test_admin_lists_answers_of_managed_programs_read_only(client, program, other_program, member):
    mine = [
        nps_record(member=member, score=score, comment=comment, source=NpsSource.APP).answer
        for score, comment in [(10, ""), (7, "ok"), (2, "slow")]
    ]
    nps_record(member=MemberFactory(program=other_program), score=9, source=NpsSource.APP)
    client.force_login(_manager_of(program, "view_npsanswer"))
    changelist = reverse("admin:analytics_npsanswer_changelist")

    everything = client.get(changelist)
    detractors = client.get(changelist, {"group": "detractors"})
    commented = client.get(changelist, {"commented": "yes"})
    page = client.get(reverse("admin:analytics_npsanswer_change", args=[mine[2].pk]))

    assert everything.status_code == 200
    assert sorted(a.pk for a in everything.context["cl"].result_list) == sorted(a.pk for a in mine)
    assert [a.pk for a in detractors.context["cl"].result_list] == [mine[2].pk]
    assert sorted(a.pk for a in commented.context["cl"].result_list) == [mine[1].pk, mine[2].pk]
    assert page.status_code == 200 and b"Detractor" in page.content
    assert client.get(reverse("admin:analytics_npsanswer_add")).status_code == 403


def test_admin_acquisition_costs_are_entered_for_managed_programs_only(client, program, other_program):
    client.force_login(_manager_of(program, "view_acquisitioncost", "add_acquisitioncost", "change_acquisitioncost"))
    AcquisitionCostFactory(
        program=other_program, channel="tv", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), cost=1
    )
    add = reverse("admin:analytics_acquisitioncost_add")
    row = {"channel": "facebook", "period_start": "2026-01-01", "period_end": "2026-01-31", "cost": "1500.00"}

    created = client.post(add, {**row, "program": program.pk})
    foreign = client.post(add, {**row, "program": other_program.pk})
    backwards = client.post(add, {**row, "program": program.pk, "period_start": "2026-02-01", "channel": "tv"})
    listed = client.get(reverse("admin:analytics_acquisitioncost_changelist"))

    assert created.status_code == 302
    cost = AcquisitionCost.objects.get(program=program)
    assert (cost.channel, cost.cost, cost.period_end) == ("facebook", Decimal("1500.00"), date(2026, 1, 31))
    assert foreign.status_code == 200 and "program" in foreign.context["adminform"].form.errors
    assert backwards.status_code == 200 and backwards.context["adminform"].form.errors
    assert [c.pk for c in listed.context["cl"].result_list] == [cost.pk]
