"""The analytics dashboard page: every panel's chart data, permissions and program scoping."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.utils import timezone

from analytics.dashboard.panels import liability_and_expiries
from analytics.models import NpsSource
from analytics.services.nps import nps_record
from loyalty.services.ledger import ledger_credit
from rewards.models import RewardKind
from tests.builders import line, purchase, tiered_program
from tests.factories import MemberFactory, ProgramFactory, RewardFactory, StaffFactory

pytestmark = pytest.mark.django_db
URL = "/admin/analytics/dashboard/"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Panels are cached per program id, which the database reuses between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shop():
    program, tiers = tiered_program()  # base rate 1 point per EUR; Silver 100, Gold 500
    now = timezone.now()
    members = [MemberFactory(program=program, enrolled_at=now - timedelta(days=400)) for _ in range(3)]
    purchase(members[0], "P1", lines=[line("X", "600")], occurred_at=now - timedelta(days=40))  # Gold
    purchase(members[1], "P2", lines=[line("X", "150")], occurred_at=now - timedelta(days=5))  # Silver
    ledger_credit(member=members[2], amount=70, expires_at=now + timedelta(days=20))
    nps_record(member=members[0], score=10, source=NpsSource.APP)
    nps_record(member=members[1], score=3, source=NpsSource.APP)
    RewardFactory(
        program=program, name="Coffee", kind=RewardKind.FREE_PRODUCT, value=Decimal(3), sku="C", points_cost=100
    )
    return program, tiers, members


def login(client, program, *codenames):
    user = StaffFactory(programs=[program])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def charts(response):
    """The chart configurations as the page embeds them (JSON)."""
    return json.loads(json.dumps(response.context["charts"]))


def test_dashboard_draws_every_panel_from_the_programs_figures(client, shop):
    program, tiers, members = shop
    response = login(client, program, "view_memberanalytics").get(URL)

    assert response.status_code == 200
    panels = charts(response)
    assert list(panels) == [
        "members-by-tier",
        "rfm-grid",
        "retention-cohorts",
        "nps-trend",
        "liability-expiries",
        "clv-distribution",
        "clv-cac",
        "reward-attainability",
    ]
    tier_chart = panels["members-by-tier"]["chart"]
    assert tier_chart["data"]["labels"] == ["No tier", "Silver", "Gold"]
    assert tier_chart["data"]["datasets"][0]["data"] == [1, 1, 1]
    nps = panels["nps-trend"]["chart"]["data"]["datasets"][0]["data"]
    assert nps[-1] == 0.0 and all(value is None for value in nps[:-1])  # one promoter, one detractor this month
    expiring = panels["liability-expiries"]["chart"]["data"]["datasets"][0]["data"]
    assert sum(expiring) == 70
    assert "Outstanding: 820 points" in panels["liability-expiries"]["note"]  # 600 + 150 + 70
    attainability = panels["reward-attainability"]["chart"]["data"]
    assert attainability["labels"] == ["Coffee (100)"] and attainability["datasets"][0]["data"] == [2]
    cohorts = panels["retention-cohorts"]["chart"]["data"]["datasets"][0]["data"]
    first_months = {
        (timezone.now() - timedelta(days=days)).astimezone(program.tz).strftime("%Y-%m") for days in (40, 5)
    }
    assert {(cell["y"], cell["v"]) for cell in cohorts if cell["x"] == "+0"} == {(month, 1.0) for month in first_months}
    page = response.content.decode()
    assert "analytics/vendor/chart-4.6.1.umd.min.js" in page and "cdn" not in page.lower()


def test_dashboard_needs_the_permission_and_shows_only_managed_programs(client, shop):
    program = shop[0]
    other = ProgramFactory()

    assert login(client, program).get(URL).status_code == 403
    manager_client = login(client, program, "view_memberanalytics")
    response = manager_client.get(URL, {"program": other.pk})
    assert response.context["program"] == program
    assert [p.pk for p in response.context["programs"]] == [program.pk]


def test_admin_home_links_to_the_dashboard(client, shop):
    page = login(client, shop[0], "view_memberanalytics", "view_reward").get("/admin/").content.decode()

    assert URL in page and "/admin/rewards/reward/attainability/" in page


def test_dashboard_shows_the_panels_of_the_last_refresh_until_recomputed(client, shop):
    program, _, members = shop
    manager_client = login(client, program, "view_memberanalytics")
    assert charts(manager_client.get(URL))["members-by-tier"]["chart"]["data"]["datasets"][0]["data"] == [1, 1, 1]
    MemberFactory(program=program)  # a fourth member, without a tier

    cached = manager_client.get(URL)
    recomputed = manager_client.get(URL, {"refresh": "1"})

    assert charts(cached)["members-by-tier"]["chart"]["data"]["datasets"][0]["data"] == [1, 1, 1]
    assert charts(recomputed)["members-by-tier"]["chart"]["data"]["datasets"][0]["data"] == [2, 1, 1]
    assert "Figures as of" in recomputed.content.decode()


@pytest.mark.django_db
def test_liability_note_groups_the_money_value_like_the_points():
    program = ProgramFactory(point_value=Decimal("0.10"), points_name="beans")
    ledger_credit(member=MemberFactory(program=program), amount=123_456, occurred_at=timezone.now() - timedelta(days=1))

    note = liability_and_expiries(program, timezone.now()).note

    assert note.startswith("Outstanding: 123,456 beans (0 pending), worth 12,345.60 ")
