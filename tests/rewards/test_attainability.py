"""Reward and tier attainability against hand-computed examples: pace, days, dates, expiring points, tiers,
and the program report (with what-if) on a small known population."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.models import Account, Entry, EntryKind
from loyalty.pace import Eta, Pace, observed_days, points_pace
from loyalty.selectors import member_tier_summary
from loyalty.services.ledger import ledger_credit, ledger_debit
from members.models import MemberStatus
from rewards.attainability import WhatIf, member_reward_list, program_report, rewards_on_offer
from rewards.models import Reward
from tests.api.utils import MANAGE, assert_problem, db_state
from tests.builders import line, purchase, tiered_program
from tests.factories import MemberFactory, ProgramFactory, RewardFactory, StaffFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("window", "member_days", "expected"),
    [
        (180, 0, 30),  # a new member is measured over 30 days, not one
        (180, 10, 30),
        (180, 100, 100),  # over the days of membership
        (180, 400, 180),  # never more than the window
        (20, 5, 20),  # a window shorter than 30 days wins
    ],
)
def test_observed_days(window, member_days, expected):
    now = timezone.now()
    assert observed_days(window_days=window, enrolled_at=now - member_days * DAY, now=now) == expected


@pytest.mark.parametrize(
    ("amount", "days", "gap", "expected"),
    [
        (1000, 180, 100, 18),  # 5.56 a day: 100 / 5.56 = 18 exactly (exact fractions, no float rounding)
        (1000, 180, 101, 19),
        (900, 180, 0, 0),
        (900, 180, -5, 0),
        (0, 180, 1, None),  # at zero pace: never
    ],
)
def test_days_to_a_gap(amount, days, gap, expected):
    assert Pace(amount=Decimal(amount), days=days).days_to(gap) == expected


def test_pace_counts_earned_less_returned_points_in_the_window_only():
    program, _ = tiered_program()
    now = timezone.now()
    member = MemberFactory(program=program, enrolled_at=now - 400 * DAY)
    ledger_credit(member=member, amount=500, occurred_at=now - 10 * DAY)
    ledger_credit(member=member, amount=400, occurred_at=now - 100 * DAY)
    ledger_credit(member=member, amount=1000, occurred_at=now - 190 * DAY)  # before the 180-day window
    ledger_debit(member=member, amount=100, kind=EntryKind.REVERSE, occurred_at=now - 5 * DAY)  # a return
    ledger_credit(member=member, amount=700, kind=EntryKind.TRANSFER_IN, occurred_at=now - 3 * DAY)  # not earned
    ledger_debit(member=member, amount=300, occurred_at=now - 2 * DAY)  # spending does not slow the pace

    pace = points_pace(member=member, now=now)

    assert (pace.amount, pace.days, pace.per_day) == (Decimal(800), 180, Decimal("4.44"))


def _member_with_expiring_points(program, now):
    """300 points available: 50 that never expire, 100 expiring in 10 days, 150 in 60 days;
    1,800 earned over the 180-day window: 10 points a day."""
    member = MemberFactory(program=program, enrolled_at=now - 400 * DAY)
    ledger_credit(member=member, amount=1550, occurred_at=now - 150 * DAY, expires_at=None)
    ledger_debit(member=member, amount=1500, occurred_at=now - 140 * DAY)
    ledger_credit(member=member, amount=100, occurred_at=now - 100 * DAY, expires_at=now + 10 * DAY)
    ledger_credit(member=member, amount=150, occurred_at=now - 50 * DAY, expires_at=now + 60 * DAY)
    return member


def test_member_rewards_estimate_days_date_and_expiring_points():
    program, _ = tiered_program()
    now = timezone.now()
    today = now.astimezone(program.tz).date()
    member = _member_with_expiring_points(program, now)
    for name, cost in [("Coffee", 250), ("Cinema", 400), ("Weekend", 1000)]:
        RewardFactory(program=program, name=name, points_cost=cost)

    items = {
        item["name"]: item["attainability"]
        for item in member_reward_list(member=member, rewards=list(rewards_on_offer(program_id=program.pk, now=now)))
    }

    assert items["Coffee"] == {
        "cost": 250,
        "available": 300,
        "gap": 0,
        "progress": 1.0,
        "redeemable_now": True,
        "pace_per_day": Decimal("10.00"),
        "days": 0,
        "date": today,
        "expiring_before": 0,
    }
    assert (items["Cinema"]["gap"], items["Cinema"]["days"], items["Cinema"]["date"]) == (
        100,
        10,
        today + 10 * DAY,
    )
    assert items["Cinema"]["expiring_before"] == 100  # the lot expiring in 10 days goes on that very day
    assert (items["Weekend"]["days"], items["Weekend"]["expiring_before"]) == (70, 250)
    assert items["Weekend"]["progress"] == 0.3


def test_a_member_who_earns_nothing_never_gets_there():
    program, _ = tiered_program()
    now = timezone.now()
    member = MemberFactory(program=program, enrolled_at=now - 400 * DAY)
    ledger_credit(member=member, amount=40, occurred_at=now - 300 * DAY, expires_at=now + 5 * DAY)
    RewardFactory(program=program, name="Coffee", points_cost=100)

    [item] = member_reward_list(member=member, rewards=list(rewards_on_offer(program_id=program.pk, now=now)))

    assert item["attainability"] | {"pace_per_day": None} == {
        "cost": 100,
        "available": 40,
        "gap": 60,
        "progress": 0.4,
        "redeemable_now": False,
        "pace_per_day": None,
        "days": None,
        "date": None,
        "expiring_before": None,
    }
    assert item["attainability"]["pace_per_day"] == Decimal("0.00")


def test_next_tier_and_keeping_the_tier_at_the_members_pace():
    program, tiers = tiered_program()  # base rate 1 point per EUR; Silver 100, Gold 500 qualifying points
    now = timezone.now()
    today = now.astimezone(program.tz).date()
    member = MemberFactory(program=program, enrolled_at=now - 400 * DAY)
    purchase(member, "P1", lines=[line("X", "120")], occurred_at=now - 100 * DAY)  # Silver
    purchase(member, "P2", lines=[line("X", "60")], occurred_at=now - 10 * DAY)  # 180 in 180 days: 1 a day

    summary = member_tier_summary(member=member, now=now)

    assert summary["tier"]["name"] == "Silver"
    assert (summary["metric_value"], summary["metric_pace_per_day"]) == (Decimal(180), Decimal("1.00"))
    assert (summary["missing_for_next"], summary["next_tier_days"], summary["next_tier_date"]) == (
        Decimal(320),
        320,
        today + 320 * DAY,
    )
    assert (summary["keep_days"], summary["keep_date"], summary["keep_on_track"]) == (0, today, True)

    # Held in Gold with a review in 100 days: 320 missing at 1 a day takes 320 days, too late.
    Account.objects.filter(pk=member.pk).update(tier=tiers["Gold"], tier_review_at=now + 100 * DAY)
    summary = member_tier_summary(member=member, now=now)

    assert (summary["next_tier"], summary["next_tier_days"], summary["next_tier_date"]) == (None, None, None)
    assert (summary["missing_to_keep"], summary["keep_days"], summary["keep_date"]) == (
        Decimal(320),
        320,
        today + 320 * DAY,
    )
    assert summary["keep_on_track"] is False

    # With a review in 400 days the same pace keeps Gold.
    Account.objects.filter(pk=member.pk).update(tier_review_at=now + 400 * DAY)
    assert member_tier_summary(member=member, now=now)["keep_on_track"] is True


def test_no_purchase_in_the_window_is_a_zero_pace():
    program, _ = tiered_program()
    now = timezone.now()
    member = MemberFactory(program=program, enrolled_at=now - 400 * DAY)
    purchase(
        member, "P1", lines=[line("X", "150")], occurred_at=now - 200 * DAY
    )  # Silver, still in the 365-day tier window

    summary = member_tier_summary(member=member, now=now)

    assert (summary["metric_value"], summary["metric_pace_per_day"]) == (Decimal(150), Decimal("0.00"))
    assert (summary["next_tier_days"], summary["next_tier_date"]) == (None, None)
    assert (summary["keep_days"], summary["keep_on_track"]) == (0, True)


# --- The program report on a known population ------------------------------------


@pytest.fixture
def population():
    """Five active members and one suspended; rewards Lounge 50 (Gold only), Coffee 100, Cinema 500.

    member  available  earned in 180 days        cheapest open  days to it
    m1      150        150 (given)               100            0
    m2       90         90 (a 90 EUR purchase)   100            ceil(10 * 180 / 90) = 20
    m3        0          0                       100            never
    m4 Gold  60         60 (given)                50            0
    m6       10         10 (given)               100            ceil(90 * 180 / 10) = 1620
    """
    program, tiers = tiered_program()
    now = timezone.now()
    old = now - 400 * DAY

    def member(points):
        member = MemberFactory(program=program, enrolled_at=old)
        if points:
            ledger_credit(member=member, amount=points, occurred_at=now - 10 * DAY)
        return member

    member(150), member(0)
    m4 = member(60)
    member(10)
    m2 = MemberFactory(program=program, enrolled_at=old)
    purchase(m2, "P-M2", lines=[line("X", "90")], occurred_at=now - 10 * DAY)
    suspended = member(5000)
    suspended.status = MemberStatus.SUSPENDED
    suspended.save(update_fields=["status"])
    Account.objects.filter(pk=m4.pk).update(tier=tiers["Gold"])
    rewards = {
        "Lounge": RewardFactory(program=program, name="Lounge", points_cost=50, min_tier=tiers["Gold"]),
        "Coffee": RewardFactory(program=program, name="Coffee", points_cost=100),
        "Cinema": RewardFactory(program=program, name="Cinema", points_cost=500),
    }
    RewardFactory(program=program, name="Retired", points_cost=1, is_active=False)
    return program, rewards, now


def _buckets(now=0, days_1_30=0, days_31_365=0, over_a_year=0, never=0, tier_locked=0):
    return {
        "now": now,
        "days_1_30": days_1_30,
        "days_31_365": days_31_365,
        "over_a_year": over_a_year,
        "never": never,
        "tier_locked": tier_locked,
    }


def test_program_report_on_a_known_population(population):
    program, rewards, now = population

    report = program_report(program=program, now=now)

    current = report["current"]
    assert (report["window_days"], report["proposed"]) == (180, None)
    assert current["active_members"] == 5
    assert current["share_redeemable_now"] == 0.4  # m1, m4
    assert current["share_within_20_percent"] == 0.2  # m2: 90 of 100
    # days to a first reward, sorted: 0, 0, 20, 1620, never
    assert (current["days_to_first_reward_median"], current["days_to_first_reward_p75"]) == (20, 1620)
    assert current["members_never_at_pace"] == 1
    assert current["warning"] is None
    assert current["rewards"] == [
        {"id": rewards["Lounge"].pk, "name": "Lounge", "points_cost": 50} | _buckets(now=1, tier_locked=4),
        # m1 now; m2 20 days; m4 ceil(40*180/60) = 120; m6 1620; m3 never
        {"id": rewards["Coffee"].pk, "name": "Coffee", "points_cost": 100}
        | _buckets(now=1, days_1_30=1, days_31_365=1, over_a_year=1, never=1),
        # 420, 820, 1320 and 8820 days; m3 never
        {"id": rewards["Cinema"].pk, "name": "Cinema", "points_cost": 500} | _buckets(over_a_year=4, never=1),
    ]


def test_the_report_warns_when_the_median_member_waits_longer_than_the_target(population):
    program, _, now = population
    program.attainability_target_days = 10

    warning = program_report(program=program, now=now)["current"]["warning"]

    assert "20 days" in warning and "target of 10 days" in warning


def test_what_if_doubles_the_base_rate_and_cheapens_a_reward_writing_nothing(population):
    program, rewards, now = population
    entries, costs = Entry.objects.count(), list(Reward.objects.values_list("pk", "points_cost"))

    report = program_report(
        program=program,
        now=now,
        what_if=WhatIf(base_rate_multiplier=Decimal(2), reward_costs={rewards["Coffee"].pk: 80}),
    )

    proposed = report["proposed"]
    # Only m2 earned through the base rate: 180 points in 180 days. Coffee at 80: m2 can redeem now;
    # m4 needs ceil(20*180/60) = 60 days; m6 ceil(70*180/10) = 1260.
    assert proposed["share_redeemable_now"] == 0.6
    assert proposed["share_within_20_percent"] == 0.0
    assert (proposed["days_to_first_reward_median"], proposed["days_to_first_reward_p75"]) == (0, 1260)
    coffee = next(item for item in proposed["rewards"] if item["name"] == "Coffee")
    assert coffee == {"id": rewards["Coffee"].pk, "name": "Coffee", "points_cost": 80} | _buckets(
        now=2, days_31_365=1, over_a_year=1, never=1
    )
    assert report["current"]["share_redeemable_now"] == 0.4  # the current report is unchanged
    assert (Entry.objects.count(), list(Reward.objects.values_list("pk", "points_cost"))) == (entries, costs)


def test_what_if_base_rate_alone_speeds_up_members_who_earn_by_it(population):
    program, _, now = population

    proposed = program_report(program=program, now=now, what_if=WhatIf(base_rate_multiplier=Decimal("1.5")))["proposed"]

    # m2 earns 135 in 180 days at 1.5x: ceil(10 * 180 / 135) = 14 days; bonuses given by hand do not scale.
    assert proposed["days_to_first_reward_median"] == 14
    assert proposed["days_to_first_reward_p75"] == 1620


def test_report_of_a_program_without_members_or_rewards():
    program, _ = tiered_program()
    MemberFactory(program=program, enrolled_at=timezone.now() - 400 * DAY)  # nothing on offer: no warning

    current = program_report(program=program)["current"]

    assert current | {"rewards": None} == {
        "active_members": 1,
        "share_redeemable_now": 0.0,
        "share_within_20_percent": 0.0,
        "days_to_first_reward_median": None,
        "days_to_first_reward_p75": None,
        "members_never_at_pace": 1,
        "target_days": 90,
        "warning": None,
        "rewards": None,
    }
    assert current["rewards"] == []


def test_report_queries_do_not_grow_with_members(population):
    program, _, now = population

    def queries():
        with CaptureQueriesContext(connection) as captured:
            program_report(program=program, now=now, what_if=WhatIf(base_rate_multiplier=Decimal(2)))
        return len(captured)

    queries()  # the program's rule set is compiled and cached once, as on a running server
    few = queries()
    for index in range(20):
        member = MemberFactory(program=program, enrolled_at=now - 50 * DAY)
        ledger_credit(member=member, amount=10 + index, occurred_at=now - DAY)

    assert queries() == few


# --- The manager API --------------------------------------------------------------

REPORT_URL = f"{MANAGE}/analytics/attainability/"
WHAT_IF_URL = f"{REPORT_URL}what-if/"


@pytest.fixture
def analyst(population):
    program = population[0]
    user = StaffFactory(programs=[program])
    user.user_permissions.add(Permission.objects.get(content_type__app_label="rewards", codename="view_reward"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_report_endpoint_answers_the_report(analyst, population):
    program, rewards, _ = population

    response = analyst.get(REPORT_URL, {"program": program.slug})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["program"], body["window_days"], body["proposed"]) == (program.slug, 180, None)
    current = body["current"]
    assert (current["active_members"], current["share_redeemable_now"], current["share_within_20_percent"]) == (
        5,
        0.4,
        0.2,
    )
    assert (current["days_to_first_reward_median"], current["days_to_first_reward_p75"]) == (20, 1620)
    assert [item["name"] for item in current["rewards"]] == ["Lounge", "Coffee", "Cinema"]
    assert current["rewards"][1] == {"id": rewards["Coffee"].pk, "name": "Coffee", "points_cost": 100} | _buckets(
        now=1, days_1_30=1, days_31_365=1, over_a_year=1, never=1
    )


def test_what_if_endpoint_answers_both_reports_and_writes_nothing(analyst, population):
    program, rewards, _ = population
    before = db_state()

    response = analyst.post(
        WHAT_IF_URL,
        {
            "program": program.slug,
            "base_rate_multiplier": "2",
            "reward_costs": [{"reward_id": rewards["Coffee"].pk, "points_cost": 80}],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["current"]["share_redeemable_now"], body["proposed"]["share_redeemable_now"]) == (0.4, 0.6)
    assert body["proposed"]["days_to_first_reward_p75"] == 1260
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"base_rate_multiplier": "0"}, "base_rate_multiplier"),
        ({"base_rate_multiplier": "abc"}, "base_rate_multiplier"),
        ({"reward_costs": [{"reward_id": 10**9, "points_cost": 10}]}, "reward_costs"),
        ({"reward_costs": [{"reward_id": "COFFEE", "points_cost": 0}]}, "reward_costs"),
        (
            {"reward_costs": [{"reward_id": "COFFEE", "points_cost": 5}, {"reward_id": "COFFEE", "points_cost": 6}]},
            "reward_costs",
        ),
        ({"reward_costs": [{"reward_id": "RETIRED", "points_cost": 5}]}, "reward_costs"),
    ],
)
def test_what_if_refuses_bad_proposals(analyst, population, body, field):
    program, rewards, _ = population
    retired = Reward.objects.get(program=program, name="Retired")
    for item in body.get("reward_costs", []):
        item["reward_id"] = {"COFFEE": rewards["Coffee"].pk, "RETIRED": retired.pk}.get(
            item["reward_id"], item["reward_id"]
        )

    response = analyst.post(WHAT_IF_URL, {"program": program.slug, **body}, format="json")

    assert_problem(response, 400, "validation_error")
    assert field in response.json()["errors"]


def test_report_endpoint_refusals(analyst, population):
    other = ProgramFactory()

    assert_problem(analyst.get(REPORT_URL), 400, "validation_error")
    assert_problem(analyst.get(REPORT_URL, {"program": other.slug}), 404, "program_not_found")
    assert_problem(analyst.get(REPORT_URL, {"program": "no-such-program"}), 404, "program_not_found")
    assert_problem(
        analyst.post(WHAT_IF_URL, {"program": other.slug, "base_rate_multiplier": "2"}, format="json"),
        404,
        "program_not_found",
    )
    assert_problem(APIClient().get(REPORT_URL, {"program": population[0].slug}), 401, "not_authenticated")
    assert analyst.get(WHAT_IF_URL, {"program": population[0].slug}).status_code == 405


def test_report_needs_the_view_reward_permission(population):
    program = population[0]
    user = StaffFactory(programs=[program])
    client = APIClient()
    client.force_authenticate(user)

    assert_problem(client.get(REPORT_URL, {"program": program.slug}), 403, "permission_denied")


# --- The admin page ---------------------------------------------------------------

ADMIN_URL = "/admin/rewards/reward/attainability/"


@pytest.fixture
def admin_client_for(client):
    def login(program, *codenames):
        user = StaffFactory(programs=[program])
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="rewards", codename__in=codenames))
        client.force_login(user)
        return client

    return login


def test_admin_page_shows_the_report(admin_client_for, population):
    program, rewards, _ = population
    client = admin_client_for(program, "view_reward")

    response = client.get(ADMIN_URL)

    assert response.status_code == 200
    report = response.context["report"]["current"]
    assert (report["share_redeemable_now"], report["days_to_first_reward_median"]) == (0.4, 20)
    page = response.content.decode()
    assert "Attainability" in page and "40 %" in page and "20 %" in page
    assert [row["current"]["name"] for row in response.context["rows"]] == ["Lounge", "Coffee", "Cinema"]
    assert ADMIN_URL in client.get("/admin/rewards/reward/").content.decode()  # linked from the rewards list


def test_admin_what_if_shows_the_proposal_and_writes_nothing(admin_client_for, population):
    program, rewards, _ = population
    client = admin_client_for(program, "view_reward")
    before = db_state()

    response = client.post(ADMIN_URL, {"base_rate_multiplier": "2", f"cost_{rewards['Coffee'].pk}": "80"})

    assert response.status_code == 200
    proposed = response.context["report"]["proposed"]
    assert (proposed["share_redeemable_now"], proposed["days_to_first_reward_p75"]) == (0.6, 1260)
    assert "proposed: 60 %" in response.content.decode()
    assert db_state() == before


def test_admin_what_if_without_a_proposal_says_what_is_missing(admin_client_for, population):
    program, _, _ = population
    client = admin_client_for(program, "view_reward")

    response = client.post(ADMIN_URL, {"base_rate_multiplier": "-1"})
    empty = client.post(ADMIN_URL, {})

    assert response.status_code == 200 and response.context["report"]["proposed"] is None
    assert response.context["form"].errors["base_rate_multiplier"]
    assert "Enter a base rate multiplier, a proposed cost, or both." in empty.content.decode()


def test_admin_page_needs_the_permission_and_shows_only_managed_programs(admin_client_for, population):
    program, _, _ = population
    other = ProgramFactory()

    assert admin_client_for(program).get(ADMIN_URL).status_code == 403
    client = admin_client_for(program, "view_reward")
    assert client.get(ADMIN_URL, {"program": other.pk}).context["program"] == program
    assert [p.pk for p in client.get(ADMIN_URL).context["programs"]] == [program.pk]


def test_a_sold_out_reward_is_left_out_of_the_report(population):
    program, rewards, now = population
    Reward.objects.filter(pk=rewards["Coffee"].pk).update(stock=0)

    current = program_report(program=program, now=now)["current"]

    # Without Coffee the cheapest reward open to all costs 500: only m4 (Gold, Lounge 50) can redeem now.
    assert [item["name"] for item in current["rewards"]] == ["Lounge", "Cinema"]
    assert current["share_redeemable_now"] == 0.2


def test_recent_members_are_measured_over_their_days_in_the_report():
    program, _ = tiered_program()
    now = timezone.now()
    RewardFactory(program=program, name="Coffee", points_cost=100)
    member = MemberFactory(program=program, enrolled_at=now - 60 * DAY)  # observed over 60 days
    ledger_credit(member=member, amount=60, occurred_at=now - 10 * DAY)  # 1 a day: 40 missing take 40 days
    newcomer = MemberFactory(program=program, enrolled_at=now - 2 * DAY)  # observed over the 30-day minimum
    ledger_credit(member=newcomer, amount=30, occurred_at=now - DAY)  # 1 a day: 70 missing take 70 days

    current = program_report(program=program, now=now)["current"]

    assert (current["days_to_first_reward_median"], current["days_to_first_reward_p75"]) == (40, 70)


def test_an_eta_beyond_the_last_calendar_date_is_never():
    # A tier threshold of 10^12 at one point a day once answered 500 (OverflowError) on GET .../tier/.
    today = date(2026, 12, 7)

    assert Eta.of(pace=Pace(amount=Decimal(1), days=1), gap=10**12, today=today) == Eta(days=None, date=None)
    assert Eta.of(pace=Pace(amount=Decimal(1), days=1), gap=30, today=today) == Eta(days=30, date=date(2027, 1, 6))
