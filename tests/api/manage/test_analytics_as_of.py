"""A refresh as of a past day (after an import of history): every figure of the manager API and the dashboard is as
of that day, months after it have no data yet (null, not 0), and the liability leaves out points past expiry."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission

from analytics.models import MemberAnalytics
from analytics.selectors import analytics_as_of, analytics_refresh_status
from loyalty.services.ledger import ledger_credit
from tests.api.utils import ANALYST, MANAGE, REFRESH_URL, assert_problem
from tests.clients import staff_client_for
from tests.factories import MemberFactory, NpsAnswerFactory, ProgramFactory, PurchaseFactory, StaffFactory

PRAGUE = ZoneInfo("Europe/Prague")
ANALYTICS = f"{MANAGE}/analytics"
AS_OF = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=PRAGUE)  # the end of the import's last day
AS_OF_JSON = "2025-06-30T21:59:59.999999Z"


def at(year, month, day, hour=12):
    return datetime(year, month, day, hour, tzinfo=PRAGUE)


@pytest.fixture
def shop(db):
    return ProgramFactory(slug="shop", timezone="Europe/Prague", inactive_days=30, point_value=Decimal("0.01"))


@pytest.fixture
def imported(shop):
    """History up to 30 June 2025. ana: 10 May and 5 June; ben: 20 June; cleo: nothing. Points: ana 100 expiring
    1 April 2025 (past, the expiry job has not run), 50 expiring 1 September 2025; ben 30 that never expire."""
    ana, ben, cleo = (MemberFactory(program=shop, enrolled_at=at(2025, 1, 2)) for _ in range(3))
    PurchaseFactory(member=ana, external_id="A1", occurred_at=at(2025, 5, 10), total=Decimal("40.00"))
    PurchaseFactory(member=ana, external_id="A2", occurred_at=at(2025, 6, 5), total=Decimal("60.00"))
    PurchaseFactory(member=ben, external_id="B1", occurred_at=at(2025, 6, 20), total=Decimal("20.00"))
    ledger_credit(member=ana, amount=100, occurred_at=at(2025, 1, 10), expires_at=at(2025, 4, 1, 0))
    ledger_credit(member=ana, amount=50, occurred_at=at(2025, 2, 10), expires_at=at(2025, 9, 1, 0))
    ledger_credit(member=ben, amount=30, occurred_at=at(2025, 3, 10), expires_at=None)
    NpsAnswerFactory(program=shop, member=ben, score=10, source="import", answered_at=at(2025, 6, 21))
    return {"ana": ana, "ben": ben, "cleo": cleo}


@pytest.fixture
def analyst(shop):
    return staff_client_for(shop, ANALYST)


@pytest.fixture
def refreshed(shop, imported, analyst, django_capture_on_commit_callbacks, eager_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        response = analyst.post(REFRESH_URL, {"program": "shop", "as_of": "2025-06-30"}, format="json")
    assert response.status_code == 202, response.content
    return imported


def get(client, endpoint, **params):
    response = client.get(f"{ANALYTICS}/{endpoint}/", {"program": "shop", **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_a_refresh_as_of_a_day_computes_every_step_as_of_its_end(shop, refreshed, analyst):
    status = analytics_refresh_status(shop)

    assert status["state"] == "done"
    assert datetime.fromisoformat(status["as_of"]) == AS_OF
    assert status["results"]["members"]["as_of"] == AS_OF.isoformat()
    assert set(MemberAnalytics.objects.values_list("computed_at", flat=True)) == {AS_OF}
    assert analytics_as_of(shop) == AS_OF
    # ben: last purchase 20 June, 10 days before the as-of (not 500-odd days before today)
    assert MemberAnalytics.objects.get(member=refreshed["ben"]).recency_days == 10


def test_retention_defaults_to_the_months_before_the_refreshs_as_of_and_later_months_have_no_data(refreshed, analyst):
    default = get(analyst, "retention")
    later = get(analyst, "retention", months=3, through="2025-08")["periods"]

    assert default["as_of"] == AS_OF_JSON
    assert (default["periods"][-1]["start"], default["periods"][-1]["end"]) == ("2025-05-01", "2025-06-01")
    # 1 June: ana active (10 May); 1 July: ana (5 June) and ben (20 June, new): retention 1/1.
    june, july, august = later
    assert (june["active_at_start"], june["active_at_end"], june["new"], june["retention"]) == (1, 2, 1, 1.0)
    no_data = {"active_at_start", "active_at_end", "new", "retained", "reactivated", "retention", "churn"}
    for month, start in ((july, "2025-07-01"), (august, "2025-08-01")):
        assert month["start"] == start
        assert {key: month[key] for key in no_data} == dict.fromkeys(no_data)


def test_cohorts_default_to_the_refreshs_month_and_later_months_have_no_data(refreshed, analyst):
    body = get(analyst, "cohorts", offsets=2)

    assert body["as_of"] == AS_OF_JSON
    assert body["cohorts"] == [
        {"month": "2025-05-01", "size": 1, "shares": [1.0, 1.0, None]},  # ana, again in June; July not begun
        {"month": "2025-06-01", "size": 1, "shares": [1.0, None, None]},  # ben
    ]


def test_orders_default_to_the_year_up_to_the_refreshs_day(refreshed, analyst):
    body = get(analyst, "orders")

    assert (body["start"], body["end"], body["as_of"]) == ("2024-07-01", "2025-07-01", AS_OF_JSON)
    assert (body["purchases"], body["purchasing_members"], body["revenue"]) == (3, 2, "120.00")
    assert body["inactive_members"] == 1  # cleo: no purchase in the 30 days before 1 July 2025


def test_nps_defaults_to_the_months_up_to_the_refreshs_and_later_months_have_no_data(refreshed, analyst):
    default = get(analyst, "nps", months=2)
    later = get(analyst, "nps", months=2, through="2025-07")["months"]

    assert (default["start"], default["end"], default["as_of"]) == ("2025-05-01", "2025-07-01", AS_OF_JSON)
    assert default["months"][1] == {
        "month": "2025-06-01",
        "respondents": 1,
        "promoters": 1,
        "passives": 0,
        "detractors": 0,
        "nps": 100.0,
    }
    assert later[1] == {
        "month": "2025-07-01",
        "respondents": None,
        "promoters": None,
        "passives": None,
        "detractors": None,
        "nps": None,
    }


def test_liability_leaves_out_points_past_expiry_at_the_as_of(refreshed, analyst):
    default = get(analyst, "liability", months=4)
    today = get(analyst, "liability", months=1, as_of="2026-12-01")

    # As of 30 June 2025: ana's 100 expired on 1 April (the job has not run), her 50 and ben's 30 are owed.
    assert (default["as_of"], default["available"], default["outstanding"], default["value"]) == (
        AS_OF_JSON,
        80,
        80,
        "0.80",
    )
    assert [(e["month"], e["points"]) for e in default["expiries"]] == [
        ("2025-06-01", 0),
        ("2025-07-01", 0),
        ("2025-08-01", 0),
        ("2025-09-01", 50),
    ]
    # As of 1 December 2026 ana's 50 are past expiry too.
    assert (today["as_of"], today["outstanding"]) == ("2026-12-01T22:59:59.999999Z", 30)


def test_the_dashboard_of_the_refresh_is_as_of_its_day(client, shop, refreshed):
    user = StaffFactory(programs=[shop])
    user.user_permissions.add(Permission.objects.get(codename="view_memberanalytics"))
    client.force_login(user)

    response = client.get("/admin/analytics/dashboard/")

    page = response.content.decode()
    assert "Figures as of 2025-06-30 21:59" in page
    panels = response.context["charts"]
    cells = {
        (c["y"], c["x"]): (c["v"], c["label"])
        for c in panels["retention-cohorts"]["chart"]["data"]["datasets"][0]["data"]
    }
    assert cells[("2025-05", "+1")] == (1.0, "1 members; 100%")
    assert cells[("2025-05", "+2")] == (None, "1 members; no data yet")
    assert cells[("2025-06", "+1")] == (None, "1 members; no data yet")
    assert panels["nps-trend"]["chart"]["data"]["labels"][-1] == "2025-06"
    assert "Outstanding: 80 points" in panels["liability-expiries"]["note"]


@pytest.mark.parametrize(
    ("as_of", "message"),
    [("2999-01-01", "Must be today or earlier."), ("30.6.2025", None), ("1900-01-01", None)],
)
def test_a_refresh_as_of_a_bad_or_future_day_is_refused_and_queues_nothing(shop, imported, analyst, as_of, message):
    response = analyst.post(REFRESH_URL, {"program": "shop", "as_of": as_of}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert "as_of" in str(body)
    if message:
        assert message in str(body)
    assert analytics_refresh_status(shop)["state"] == "idle"
    assert not MemberAnalytics.objects.exists()


def test_an_as_of_that_is_not_a_day_is_a_validation_error(shop, analyst):
    response = analyst.get(f"{ANALYTICS}/orders/", {"program": "shop", "as_of": "June"})

    assert_problem(response, 400, "validation_error")


def test_without_a_refresh_the_figures_are_as_of_now(shop, imported, analyst):
    body = get(analyst, "liability", months=1)

    assert datetime.fromisoformat(body["as_of"].replace("Z", "+00:00")) > datetime(2026, 1, 1, tzinfo=UTC)
    assert body["outstanding"] == 30  # both of ana's lots are past expiry today
