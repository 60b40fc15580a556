"""python manage.py analytics_refresh --program SLUG [--as-of DATE]: every step as of one moment, kept as the
analytics' as-of."""

from datetime import datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command, load_command_class

from analytics.dashboard.panels import dashboard_panels_cached
from analytics.models import ClvFit, MemberAnalytics
from analytics.selectors import analytics_as_of, analytics_refresh_status
from analytics.services.refresh import analytics_refresh_queued
from tests.factories import MemberFactory, ProgramFactory, PurchaseFactory

pytestmark = pytest.mark.django_db

PRAGUE = ZoneInfo("Europe/Prague")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Refresh statuses and as-ofs live in the cache, keyed by program id, which the database may reuse."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shop():
    program = ProgramFactory(slug="shop", timezone="Europe/Prague")
    member = MemberFactory(program=program)
    PurchaseFactory(
        member=member, external_id="P1", occurred_at=datetime(2025, 6, 20, 12, tzinfo=PRAGUE), total="10.00"
    )
    return program


def test_the_command_refreshes_every_step_as_of_the_end_of_the_day_given(shop):
    out = StringIO()

    call_command("analytics_refresh", "--program", "shop", "--as-of", "2025-06-30", stdout=out)

    as_of = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=PRAGUE)
    assert analytics_as_of(shop) == as_of
    assert analytics_refresh_status(shop)["state"] == "done"
    assert list(MemberAnalytics.objects.values_list("computed_at", "recency_days")) == [(as_of, 10)]
    assert list(ClvFit.objects.values_list("as_of", flat=True)) == [as_of]
    assert dashboard_panels_cached(shop)[1] == as_of
    assert f"refreshed as of {as_of.isoformat()}" in out.getvalue()


def test_a_local_datetime_is_taken_in_the_programs_time_zone(shop):
    call_command("analytics_refresh", "--program", "shop", "--as-of", "2025-06-30T08:00", stdout=StringIO())

    assert analytics_as_of(shop) == datetime(2025, 6, 30, 8, tzinfo=PRAGUE)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--program", "nope"], "No program 'nope'."),
        (["--program", "shop", "--as-of", "30.6.2025"], "--as-of: not a date or datetime: '30.6.2025'"),
        (["--program", "shop", "--as-of", "2025-02-30"], "--as-of: not a date or datetime: '2025-02-30'"),
    ],
)
def test_bad_arguments_are_refused_and_refresh_nothing(shop, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("analytics_refresh", *arguments)

    assert analytics_as_of(shop) is None and not MemberAnalytics.objects.exists()


def test_no_refresh_while_one_is_pending(shop):
    analytics_refresh_queued(shop)

    with pytest.raises(CommandError, match="already queued or running"):
        call_command("analytics_refresh", "--program", "shop")

    assert not MemberAnalytics.objects.exists()


def test_the_help_names_the_options():
    parser = load_command_class("analytics", "analytics_refresh").create_parser("manage.py", "analytics_refresh")

    help_text = parser.format_help()

    assert "--program" in help_text and "--as-of" in help_text and "end of that day" in help_text
