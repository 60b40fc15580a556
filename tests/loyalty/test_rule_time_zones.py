"""Rules see a purchase in the program's time zone: weekdays around local midnight and over the clock
changes (Europe/Prague: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00), and windows sent to the
manager API with their offset."""

import zoneinfo
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from loyalty.models import EarningRule
from loyalty.services.purchases import purchase_simulate
from members.models import Program
from tests import builders
from tests.factories import MemberFactory, ProgramFactory, StaffFactory

PRAGUE = zoneinfo.ZoneInfo("Europe/Prague")


@pytest.fixture
def prague(db):
    return ProgramFactory(timezone="Europe/Prague", currency="EUR")


def points_at(program, moment: datetime) -> int:
    data = builders.purchase_data("S-1", lines=[builders.line("A", "10.00")], occurred_at=moment)
    program = Program.objects.get(pk=program.pk)
    return purchase_simulate(program=program, member=MemberFactory(program=program), data=data).points


@pytest.mark.parametrize(
    ("local", "points"),
    [
        pytest.param(datetime(2026, 3, 27, 23, 30), 0, id="friday-23:30-(friday-in-utc)"),
        pytest.param(datetime(2026, 3, 28, 0, 30), 50, id="saturday-00:30-(friday-in-utc)"),
        pytest.param(datetime(2026, 3, 29, 3, 30), 50, id="sunday-after-the-spring-change"),
        pytest.param(datetime(2026, 3, 29, 23, 30), 50, id="sunday-23:30-cest"),
        pytest.param(datetime(2026, 3, 30, 0, 30), 0, id="monday-00:30-cest-(sunday-in-utc)"),
        pytest.param(datetime(2026, 10, 25, 2, 30, fold=1), 50, id="sunday-the-repeated-hour"),
        pytest.param(datetime(2026, 10, 25, 23, 30), 50, id="sunday-23:30-after-the-autumn-change"),
        pytest.param(datetime(2026, 10, 26, 0, 30), 0, id="monday-00:30-cet-(sunday-in-utc)"),
    ],
)
def test_a_weekend_rule_counts_weekdays_in_the_programs_time_zone(prague, local, points):
    builders.rule(prague, name="Weekend", kind="bonus", points=50, weekdays="6,7")

    assert points_at(prague, local.replace(tzinfo=PRAGUE)) == points


def test_a_window_sent_to_the_manager_api_with_its_offset_is_the_programs_weekend(prague):
    client = APIClient()
    client.force_authenticate(StaffFactory(is_superuser=True))
    body = {
        "program": prague.slug,
        "name": "Weekend",
        "kind": "bonus",
        "points": 50,
        "active_from": "2026-03-28T00:00:00+01:00",
        "active_until": "2026-03-30T00:00:00+02:00",
    }

    response = client.post("/api/manage/v1/rules/", body, format="json")

    assert response.status_code == 201, response.content
    rule = EarningRule.objects.get(name="Weekend")
    assert (rule.active_from, rule.active_until) == (
        datetime(2026, 3, 27, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
    )
    assert points_at(prague, datetime(2026, 3, 28, 0, 30, tzinfo=PRAGUE)) == 50
    assert points_at(prague, datetime(2026, 3, 27, 23, 59, tzinfo=PRAGUE)) == 0
    assert points_at(prague, datetime(2026, 3, 29, 23, 59, tzinfo=PRAGUE)) == 50
    assert points_at(prague, datetime(2026, 3, 30, 0, 0, tzinfo=PRAGUE)) == 0
