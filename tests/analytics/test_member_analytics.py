"""Per-member figures, RFM scores and segments (`analytics.members`), on a small population
(tests/analytics/population.py) whose every figure is computed by hand below."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from analytics.members import member_analytics_refresh
from analytics.models import MemberAnalytics, SegmentChange
from analytics.rfm import SegmentSpec
from analytics.selectors import analytics_refresh_pending, analytics_refresh_status
from analytics.services.refresh import REFRESH_STEPS, RefreshStep, analytics_refresh, analytics_refresh_queued
from analytics.services.rfm import rfm_grid_save
from analytics.tasks import analytics_refresh_all_task, analytics_refresh_task
from config.celery import app as celery_app
from tests.analytics.population import AS_OF, NEXT_DAY, at, population
from tests.builders import purchase
from tests.factories import MemberFactory, NpsAnswerFactory, ProgramFactory, StaffFactory

FIELDS = [
    "purchases",
    "purchase_days",
    "first_purchase_at",
    "last_purchase_at",
    "monetary",
    "average_order_value",
    "mean_days_between",
    "next_purchase_expected_at",
    "recency_days",
    "clv_historical",
    "r_score",
    "f_score",
    "m_score",
    "segment",
]
NO_PURCHASE = (0, 0, None, None, Decimal("0.00"), None, None, None, None, Decimal("0.00"), None, None, None, "")
# Scores among the five buyers (n = 5, score = 1 + floor(5 (rank - 1) / 5) = rank, ties take the lowest rank):
# F (purchases)  ben 1, dan 1 | cid 2, hana 2 (rank 3) | ana 3 (rank 5)      -> 1, 1, 3, 3, 5
# M (monetary)   cid 25 < dan 60 < ben 80 < ana 170 < hana 200                -> 1, 2, 3, 4, 5
# R (recency, descending)  dan 171 > ben 107 > cid 9 > hana 2 > ana 1 days   -> 1, 2, 3, 4, 5
EXPECTED = {
    "ana": (
        3,
        3,
        at(5, 2, 10),
        at(6, 29, 10),
        Decimal("170.00"),
        Decimal("56.67"),
        Decimal("29.00"),  # May 2 to June 29: 58 days over 2 gaps
        at(7, 28, 10),
        1,
        Decimal("51.00"),
        5,
        5,
        4,
        "Champions",  # R5, FM 4.5
    ),
    "ben": (1, 1, at(3, 15, 9), at(3, 15, 9), Decimal("80.00"), Decimal("80.00"), None, None, 107, Decimal("24.00"))
    + (2, 1, 3, "Hibernating"),  # R2, FM 2.0
    "cid": (2, 1, at(6, 19, 22, 30), at(6, 20, 21, 30), Decimal("25.00"), Decimal("12.50"), None, None, 9)
    + (Decimal("7.50"), 3, 3, 1, "Need Attention"),  # R3, FM 2.0
    "dan": (1, 1, at(1, 10, 10), at(1, 10, 10), Decimal("60.00"), Decimal("60.00"), None, None, 171, Decimal("18.00"))
    + (1, 1, 2, "Lost"),  # R1, FM 1.5
    "hana": (2, 2, at(6, 10, 10), at(6, 28, 10), Decimal("200.00"), Decimal("100.00"), Decimal("18.00"), at(7, 16, 10))
    + (2, Decimal("60.00"), 4, 3, 5, "Champions"),  # R4, FM 4.0
    "eva": NO_PURCHASE,
    "fred": NO_PURCHASE,
    "gus": NO_PURCHASE,
}


def figures(members) -> dict[str, tuple]:
    rows = {row[0]: row[1:] for row in MemberAnalytics.objects.values_list("member_id", *FIELDS)}
    return {name: rows.get(member.pk) for name, member in members.items()}


def snapshot():
    return sorted(MemberAnalytics.objects.values_list()), SegmentChange.objects.count()


@pytest.fixture
def shop(db):
    return ProgramFactory(timezone="Europe/Prague", margin_rate=Decimal("0.3"))


def test_every_member_gets_hand_computed_figures_scores_and_segment(shop):
    members = population(shop)

    result = member_analytics_refresh(program=shop, as_of=AS_OF)

    assert (result.members, result.purchasers, result.segment_changes) == (8, 5, 5)
    assert figures(members) == EXPECTED
    assert set(MemberAnalytics.objects.values_list("computed_at", "program_id")) == {(AS_OF, shop.pk)}


def test_only_the_programs_members_and_purchases_count(shop):
    members = population(shop)
    stranger = MemberFactory(program=ProgramFactory())
    purchase(stranger, "S1", "999.00", occurred_at=at(6, 29, 10))

    member_analytics_refresh(program=shop, as_of=AS_OF)

    assert figures(members) == EXPECTED
    assert not MemberAnalytics.objects.filter(member=stranger).exists()


def test_segments_are_recorded_on_the_first_refresh_and_a_repeat_changes_nothing(shop):
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    before = snapshot()

    again = member_analytics_refresh(program=shop, as_of=AS_OF)

    assert again.segment_changes == 0
    assert snapshot() == before
    changes = set(SegmentChange.objects.values_list("member_id", "from_segment", "to_segment", "changed_at"))
    assert changes == {
        (members[name].pk, "", segment, AS_OF)
        for name, segment in [("ana", "Champions"), ("ben", "Hibernating"), ("cid", "Need Attention")]
        + [("dan", "Lost"), ("hana", "Champions")]
    }
    since = dict(MemberAnalytics.objects.values_list("member_id", "segment_since"))
    assert since[members["ana"].pk] == AS_OF
    assert since[members["eva"].pk] is None


def test_a_changed_segment_is_recorded_once_and_moves_segment_since_only_for_those_members(shop):
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    MemberAnalytics.objects.filter(member=members["ana"]).update(
        p_alive=0.8, expected_purchases=2.5, clv_predicted=Decimal("123.45")
    )
    purchase(members["ben"], "B2", "500.00", occurred_at=at(6, 30, 8))

    result = member_analytics_refresh(program=shop, as_of=NEXT_DAY)
    member_analytics_refresh(program=shop, as_of=NEXT_DAY)

    # F: dan 1 | ben, cid, hana 2 (rank 2 -> 2) | ana 3 -> 5; M: cid 25, dan 60, ana 170, hana 200, ben 580;
    # R (days): dan 172 > cid 10 > hana 3 > ana 2 > ben 1.
    scores = {
        name: MemberAnalytics.objects.values_list("r_score", "f_score", "m_score", "segment").get(member=member)
        for name, member in members.items()
        if name in ("ana", "ben", "cid", "dan", "hana")
    }
    assert scores == {
        "ana": (4, 5, 3, "Champions"),  # FM 4.0
        "ben": (5, 2, 5, "Loyal"),  # FM 3.5
        "cid": (2, 2, 1, "Hibernating"),  # FM 1.5
        "dan": (1, 1, 2, "Lost"),
        "hana": (3, 2, 4, "Loyal"),  # FM 3.0
    }
    assert result.segment_changes == 3
    later = SegmentChange.objects.filter(changed_at=NEXT_DAY)
    assert set(later.values_list("member_id", "from_segment", "to_segment")) == {
        (members["ben"].pk, "Hibernating", "Loyal"),
        (members["cid"].pk, "Need Attention", "Hibernating"),
        (members["hana"].pk, "Champions", "Loyal"),
    }
    since = dict(MemberAnalytics.objects.values_list("member_id", "segment_since"))
    assert {name: since[member.pk] for name, member in members.items()} == {
        "ana": AS_OF,
        "ben": NEXT_DAY,
        "cid": NEXT_DAY,
        "dan": AS_OF,
        "hana": NEXT_DAY,
        "eva": None,
        "fred": None,
        "gus": None,
    }
    ana = MemberAnalytics.objects.get(member=members["ana"])
    assert (ana.p_alive, ana.expected_purchases, ana.clv_predicted) == (0.8, 2.5, Decimal("123.45"))
    assert (ana.recency_days, ana.computed_at) == (2, NEXT_DAY)


def test_a_members_first_purchase_after_a_refresh_fills_their_row(shop):
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)

    purchase(members["eva"], "E1", "5.00", occurred_at=at(6, 30, 11))
    member_analytics_refresh(program=shop, as_of=AS_OF)

    eva = MemberAnalytics.objects.get(member=members["eva"])
    assert (eva.purchases, eva.monetary, eva.recency_days, eva.segment_since) == (1, Decimal("5.00"), 0, AS_OF)
    assert SegmentChange.objects.filter(member=members["eva"], from_segment="").count() == 1


def test_the_programs_own_grid_names_the_segments(shop):
    members = population(shop)
    rfm_grid_save(
        program=shop,
        segments=[
            SegmentSpec("Recent", 4, 5, Decimal(1), Decimal(5)),
            SegmentSpec("Everyone else", 1, 5, Decimal(1), Decimal(5)),
        ],
    )

    member_analytics_refresh(program=shop, as_of=AS_OF)

    segments = dict(MemberAnalytics.objects.values_list("member_id", "segment"))
    assert {name: segments[member.pk] for name, member in members.items()} == {
        "ana": "Recent",
        "ben": "Everyone else",
        "cid": "Everyone else",
        "dan": "Everyone else",
        "hana": "Recent",
        "eva": "",
        "fred": "",
        "gus": "",
    }


def test_a_program_without_members_or_purchases(shop):
    assert member_analytics_refresh(program=shop, as_of=AS_OF).members == 0

    MemberFactory(program=shop)
    result = member_analytics_refresh(program=shop, as_of=AS_OF)

    assert (result.members, result.purchasers, result.segment_changes) == (1, 0, 0)
    assert MemberAnalytics.objects.get().segment == ""


def test_the_number_of_queries_does_not_grow_with_the_members(shop, django_assert_max_num_queries):
    population(shop)
    for n in range(30):
        purchase(MemberFactory(program=shop), f"X{n}", f"{n + 1}.00", occurred_at=at(6, 1 + n % 28, 10))

    with django_assert_max_num_queries(12):
        result = member_analytics_refresh(program=shop, as_of=AS_OF)

    assert (result.members, result.purchasers) == (38, 35)


# --- The refresh: steps, progress, tasks ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_status():
    """Refresh statuses live in the cache, keyed by program id, which the database may reuse."""
    cache.clear()
    yield
    cache.clear()


def test_the_refresh_reports_each_step_as_it_goes(shop):
    population(shop)
    reports = []

    status = analytics_refresh(
        program=shop,
        as_of=AS_OF,
        progress=lambda s: reports.append((s["state"], s["step"], s["steps"][0]["done"], s["steps"][0]["total"])),
    )

    assert reports == [
        ("running", None, 0, None),
        ("running", "members", 0, None),  # started
        ("running", "members", 0, 8),  # counted
        ("running", "members", 8, 8),  # computed and written
        ("running", "members", 8, 8),  # finished
        ("running", "clv", 8, 8),  # the CLV step: started, 0 of 1, 1 of 1, finished
        ("running", "clv", 8, 8),
        ("running", "clv", 8, 8),
        ("running", "clv", 8, 8),
        ("running", "dashboard", 8, 8),  # the dashboard's panels: started, 0 of 1, 1 of 1, finished
        ("running", "dashboard", 8, 8),
        ("running", "dashboard", 8, 8),
        ("running", "dashboard", 8, 8),
        ("done", None, 8, 8),
    ]
    assert analytics_refresh_status(shop) == status
    assert status["as_of"] == AS_OF.isoformat()
    assert status["results"]["members"] == {
        "as_of": AS_OF.isoformat(),
        "members": 8,
        "purchasers": 5,
        "segment_changes": 5,
    }
    assert set(status["results"]["clv"]) == {"converged", "members_written", "message"}
    assert status["started_at"] <= status["steps"][0]["started_at"] <= status["steps"][0]["finished_at"]
    assert not analytics_refresh_pending(shop)


def test_a_failing_step_marks_the_refresh_failed_and_later_steps_do_not_run(shop, monkeypatch):
    ran = []

    def broken(*, program, as_of, progress):
        progress(1, 3)
        raise RuntimeError("the model did not converge")

    def never(*, program, as_of, progress):
        ran.append(program)
        return {}

    steps = [REFRESH_STEPS[0], RefreshStep("clv", "Customer lifetime value", broken), RefreshStep("z", "Z", never)]
    monkeypatch.setattr("analytics.services.refresh.REFRESH_STEPS", steps)
    MemberFactory(program=shop)

    with pytest.raises(RuntimeError):
        analytics_refresh(program=shop, as_of=AS_OF)

    status = analytics_refresh_status(shop)
    assert (status["state"], status["step"], status["error"]) == ("failed", "clv", "clv: the model did not converge")
    assert [(step["name"], step["done"], step["total"], bool(step["finished_at"])) for step in status["steps"]] == [
        ("members", 1, 1, True),
        ("clv", 1, 3, False),
        ("z", 0, None, False),
    ]
    assert ran == []
    assert MemberAnalytics.objects.count() == 1  # the finished step's work stays


def test_a_queued_refresh_is_pending_until_it_goes_quiet_for_an_hour(shop):
    assert not analytics_refresh_pending(shop)
    analytics_refresh_queued(shop)
    assert analytics_refresh_pending(shop)

    status = analytics_refresh_status(shop)
    status["updated_at"] = (timezone.now() - timedelta(minutes=61)).isoformat()
    cache.set(f"analytics-refresh:{shop.pk}", status)

    assert not analytics_refresh_pending(shop)


def test_the_task_refreshes_one_program(shop):
    population(shop)

    outcome = analytics_refresh_task(shop.pk)

    assert (outcome["program"], outcome["state"]) == (shop.slug, "done")
    assert outcome["results"]["members"]["members"] == 8
    assert analytics_refresh_task(10**9) == {"program": 10**9, "state": "missing"}


def test_the_nightly_task_refreshes_every_active_program(db, eager_tasks):
    active = MemberFactory(program=ProgramFactory()).program
    paused = MemberFactory(program=ProgramFactory(is_active=False)).program

    assert analytics_refresh_all_task() == {"programs": 1}

    assert set(MemberAnalytics.objects.values_list("program_id", flat=True)) == {active.pk}
    assert analytics_refresh_status(active)["state"] == "done"
    assert analytics_refresh_status(paused)["state"] == "idle"
    nightly = celery_app.conf.beat_schedule["refresh-analytics"]
    assert nightly["task"] == "analytics.tasks.analytics_refresh_all_task"
    assert (nightly["schedule"].hour, nightly["schedule"].minute) == ({1}, {40})


# --- The member admin's analytics filters and the segment history --------------------------------------


@pytest.fixture
def admin_client(client, shop):
    user = StaffFactory(permissions=["view_member", "view_segmentchange"], programs=[shop])
    client.force_login(user)
    return client


@pytest.fixture
def scored(shop):
    """The population refreshed, with CLV predictions and NPS answers set by hand."""
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    predictions = {"ana": (0.9, "300.00"), "ben": (0.2, "20.00"), "cid": (0.5, "50.00"), "dan": (0.05, "0.00")}
    for name, (p_alive, clv) in predictions.items():
        MemberAnalytics.objects.filter(member=members[name]).update(p_alive=p_alive, clv_predicted=Decimal(clv))
    answers = {"ana": [(3, 1), (10, 5)], "ben": [(10, 1), (3, 5)], "cid": [(8, 2)], "dan": [(6, 2)]}
    answers |= {"hana": [(9, 2)], "eva": [(7, 2)]}  # latest: ana 10, ben 3, cid 8, dan 6, hana 9, eva 7
    for name, scores in answers.items():
        for score, day in scores:
            NpsAnswerFactory(program=shop, member=members[name], score=score, source="app", answered_at=at(6, day, 10))
    return members


def admin_listed(client, members, **params):
    response = client.get(reverse("admin:members_member_changelist"), params)
    assert response.status_code == 200, response.content
    names = {member.pk: name for name, member in members.items()}
    return {names[member.pk] for member in response.context["cl"].result_list}


def test_member_admin_filters_by_segment(admin_client, scored):
    response = admin_client.get(reverse("admin:members_member_changelist"))
    segment_filter = next(f for f in response.context["cl"].filter_specs if f.title == "RFM segment")
    assert segment_filter.lookup_choices == [
        ("Champions", "Champions"),
        ("Hibernating", "Hibernating"),
        ("Lost", "Lost"),
        ("Need Attention", "Need Attention"),
        ("-", "No purchase yet"),
    ]
    assert admin_listed(admin_client, scored, segment="Champions") == {"ana", "hana"}
    assert admin_listed(admin_client, scored, segment="-") == {"eva", "fred", "gus"}


def test_member_admin_filters_by_probability_alive_and_predicted_value(admin_client, scored):
    assert admin_listed(admin_client, scored, p_alive_min="0.5") == {"ana", "cid"}
    assert admin_listed(admin_client, scored, p_alive_max="0.2") == {"dan"}  # below the upper bound
    assert admin_listed(admin_client, scored, p_alive_min="0.2", p_alive_max="0.5") == {"ben"}
    assert admin_listed(admin_client, scored, clv_min="50") == {"ana", "cid"}
    assert admin_listed(admin_client, scored, clv_min="20", clv_max="50") == {"ben"}
    assert admin_listed(admin_client, scored, clv_max="20") == {"dan"}
    bad = admin_client.get(reverse("admin:members_member_changelist"), {"clv_min": "lots"})
    assert bad.status_code == 302 and "e=1" in bad["Location"]


def test_member_admin_filters_by_nps_group(admin_client, scored):
    assert admin_listed(admin_client, scored, nps="promoter") == {"ana", "hana"}
    assert admin_listed(admin_client, scored, nps="passive") == {"cid", "eva"}
    assert admin_listed(admin_client, scored, nps="detractor") == {"ben", "dan"}


def test_segment_history_in_the_admin_is_read_only_and_scoped(admin_client, shop, scored):
    stranger = MemberFactory(program=ProgramFactory())
    purchase(stranger, "S1", "10.00", occurred_at=at(6, 29, 10))
    member_analytics_refresh(program=stranger.program, as_of=AS_OF)

    response = admin_client.get(reverse("admin:analytics_segmentchange_changelist"), {"to_segment": "Champions"})

    assert response.status_code == 200
    shown = {(row.member_id, row.to_segment) for row in response.context["cl"].result_list}
    assert shown == {(scored["ana"].pk, "Champions"), (scored["hana"].pk, "Champions")}
    change = SegmentChange.objects.get(member=scored["ana"])
    page = admin_client.get(reverse("admin:analytics_segmentchange_change", args=[change.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    foreign = SegmentChange.objects.get(member=stranger)
    assert admin_client.get(reverse("admin:analytics_segmentchange_change", args=[foreign.pk])).status_code == 302
