"""The manager's analytics endpoints (retention, cohorts, orders, NPS, liability) and the NPS answer endpoints
of the member app and the integration API, through HTTP."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.metrics import month_of
from analytics.models import NpsAnswer
from loyalty.models import Account, Entry
from loyalty.services.ledger import ledger_credit
from loyalty.services.lots import lots_expire
from members.services.members import member_suspend
from tests.api.utils import MANAGE, POS, assert_problem, db_state
from tests.builders import purchase, return_, rule, tier
from tests.clients import app_client_for, staff_client
from tests.factories import MemberFactory, NpsAnswerFactory, ProgramFactory, StaffFactory

pytestmark = pytest.mark.django_db

PRAGUE = ZoneInfo("Europe/Prague")
ANALYTICS = f"{MANAGE}/analytics"
ENDPOINTS = ["retention", "cohorts", "orders", "nps", "liability"]
KEY = "8d0e-nps-1"


def at(year, month, day, hour=12, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=PRAGUE)


@pytest.fixture
def shop(db):
    return ProgramFactory(slug="shop", inactive_days=30, point_value=Decimal("0.02"))


@pytest.fixture
def analyst(shop):
    user = StaffFactory(permissions=["view_memberanalytics"], programs=[shop])
    return user


@pytest.fixture
def client(analyst):
    return staff_client(analyst)


@pytest.fixture
def people(shop):
    """A: February and March. B: February only. C: twice in March (acquired on facebook). D: one February
    purchase, fully returned."""
    enrolled = datetime(2025, 11, 1, tzinfo=PRAGUE)
    members = {name: MemberFactory(program=shop, enrolled_at=enrolled, first_name=name) for name in "ABCD"}
    members["C"].acquisition_channel = "facebook"
    members["C"].save(update_fields=["acquisition_channel"])
    for i, (name, when, total) in enumerate(
        [
            ("A", at(2026, 2, 10), "100.00"),
            ("A", at(2026, 3, 15), "100.00"),
            ("B", at(2026, 2, 20), "70.00"),
            ("C", at(2026, 3, 10), "40.00"),
            ("C", at(2026, 3, 25), "60.00"),
            ("D", at(2026, 2, 25), "90.00"),
        ]
    ):
        purchase(members[name], f"P{i}", total, occurred_at=when)
    # Returned on 1 March (a return dated after an as-of does not count as of it).
    return_(shop, "P5", "R1", amount="90.00", occurred_at=at(2026, 3, 1))
    return members


AS_OF_23_NOVEMBER = "2026-11-23T22:59:59.999999Z"  # the end of that day in Prague


def get(client, endpoint, **params):
    return client.get(f"{ANALYTICS}/{endpoint}/", {"program": "shop", **params})


# --- Manager: figures -------------------------------------------------------------------------------------------


def test_retention_by_month(client, people):
    response = get(client, "retention", months=2, through="2026-03", as_of="2026-11-23")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "program": "shop",
        "timezone": "Europe/Prague",
        "inactive_days": 30,
        "as_of": AS_OF_23_NOVEMBER,
        "periods": [
            {
                "start": "2026-02-01",
                "end": "2026-03-01",
                "active_at_start": 0,
                "active_at_end": 2,
                "new": 2,
                "retained": 0,
                "reactivated": 0,
                "retention": None,
                "churn": None,
            },
            {
                "start": "2026-03-01",
                "end": "2026-04-01",
                "active_at_start": 2,  # A, B (D's purchase was returned)
                "active_at_end": 2,  # A, C
                "new": 1,
                "retained": 1,
                "reactivated": 0,
                "retention": 0.5,
                "churn": 0.5,
            },
        ],
    }


def test_retention_of_one_period_and_by_channel(client, people):
    march = get(client, "retention", start="2026-03-01", end="2026-04-01").json()["periods"]
    facebook = get(client, "retention", start="2026-03-01", end="2026-04-01", channel="facebook").json()["periods"]

    assert [(p["start"], p["end"], p["retention"]) for p in march] == [("2026-03-01", "2026-04-01", 0.5)]
    assert [(p["active_at_start"], p["active_at_end"], p["new"], p["retention"]) for p in facebook] == [(0, 1, 1, None)]


def test_retention_defaults_to_the_last_complete_months(client, shop):
    periods = get(client, "retention").json()["periods"]

    this_month = month_of(shop, timezone.now())
    assert len(periods) == 12
    assert periods[-1]["end"] == this_month.isoformat()


def test_cohorts(client, people):
    response = get(client, "cohorts", months=2, through="2026-03", offsets=1, as_of="2026-11-23")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "program": "shop",
        "timezone": "Europe/Prague",
        "offsets": 1,
        "as_of": AS_OF_23_NOVEMBER,
        "cohorts": [
            {"month": "2026-02-01", "size": 2, "shares": [1.0, 0.5]},  # A, B; A again in March
            {"month": "2026-03-01", "size": 1, "shares": [1.0, 0.0]},  # C
        ],
    }


def test_orders(client, people):
    response = get(client, "orders", start="2026-03-01", end="2026-04-01", as_of="2026-11-23")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "program": "shop",
        "currency": "EUR",
        "as_of": AS_OF_23_NOVEMBER,
        "start": "2026-03-01",
        "end": "2026-04-01",
        "purchases": 3,
        "purchasing_members": 2,
        "revenue": "200.00",
        "average_order_value": "66.67",
        "purchase_frequency": 1.5,
        "repeat_members": 1,
        "mean_days_between_purchases": 15.0,  # C: 10 and 25 March
        "inactive_days": 30,
        "inactive_members": 2,  # on 1 April: B (20 February), D (nothing kept)
    }
    facebook = get(client, "orders", start="2026-03-01", end="2026-04-01", channel="facebook").json()
    assert (facebook["purchases"], facebook["revenue"], facebook["inactive_members"]) == (2, "100.00", 0)


def test_orders_default_to_the_last_365_days(client, shop):
    body = get(client, "orders").json()

    today = timezone.now().astimezone(PRAGUE).date()
    assert (body["start"], body["end"]) == (
        (today - timedelta(days=364)).isoformat(),
        (today + timedelta(1)).isoformat(),
    )
    assert (body["purchases"], body["average_order_value"], body["purchase_frequency"]) == (0, None, None)


def test_nps(client, shop, people):
    gold = tier(shop, "Gold", rank=1, threshold=0)
    Account.objects.filter(member=people["A"]).update(tier=gold)
    for name, score, when in [("A", 10, at(2026, 3, 5)), ("B", 9, at(2026, 3, 6)), ("C", 8, at(2026, 2, 10))]:
        NpsAnswerFactory(program=shop, member=people[name], score=score, source="import", answered_at=when)

    response = get(client, "nps", months=2, through="2026-03", as_of="2026-11-23")

    assert response.status_code == 200, response.content
    figures = {"respondents": 3, "promoters": 2, "passives": 1, "detractors": 0, "nps": 66.7}
    assert response.json() == {
        "program": "shop",
        "as_of": AS_OF_23_NOVEMBER,
        "start": "2026-02-01",
        "end": "2026-04-01",
        "summary": figures,
        "months": [
            {"month": "2026-02-01", "respondents": 1, "promoters": 0, "passives": 1, "detractors": 0, "nps": 0.0},
            {"month": "2026-03-01", "respondents": 2, "promoters": 2, "passives": 0, "detractors": 0, "nps": 100.0},
        ],
        "tiers": [
            {
                "tier_id": gold.pk,
                "tier": "Gold",
                "respondents": 1,
                "promoters": 1,
                "passives": 0,
                "detractors": 0,
                "nps": 100.0,
            },
            {
                "tier_id": None,
                "tier": None,
                "respondents": 2,
                "promoters": 1,
                "passives": 1,
                "detractors": 0,
                "nps": 50.0,
            },
        ],
        "segments": [{"segment": None, **figures}],
    }
    in_gold = get(client, "nps", months=2, through="2026-03", tier=gold.pk).json()
    assert in_gold["summary"] == {"respondents": 1, "promoters": 1, "passives": 0, "detractors": 0, "nps": 100.0}


def test_liability(client, shop, people):
    soon = timezone.now() + timedelta(days=40)
    ledger_credit(member=people["A"], amount=1000, occurred_at=timezone.now(), expires_at=soon)
    ledger_credit(member=people["B"], amount=200, occurred_at=at(2026, 1, 1), expires_at=at(2026, 2, 1))
    lots_expire(now=at(2026, 2, 2))

    response = get(client, "liability", months=3)
    january_february = get(client, "liability", start="2026-01-01", end="2026-03-01").json()["breakage"]

    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("program", "currency", "point_value", "available", "pending")} == {
        "program": "shop",
        "currency": "EUR",
        "point_value": "0.020000",
        "available": 1000,
        "pending": 0,
    }
    assert (body["outstanding"], body["value"], body["debt"]) == (1000, "20.00", 0)
    this_month = month_of(shop, timezone.now())
    assert [(e["month"], e["points"], e["value"]) for e in body["expiries"] if e["points"]] == [
        (month_of(shop, soon).isoformat(), 1000, "20.00")
    ]
    assert body["expiries"][0]["month"] == this_month.isoformat() and len(body["expiries"]) == 3
    assert body["breakage"] == {"start": None, "end": None, "issued": 1200, "expired": 200, "rate": 0.1667}
    assert january_february == {"start": "2026-01-01", "end": "2026-03-01", "issued": 200, "expired": 200, "rate": 1.0}


# --- Manager: refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_is_not_authenticated(shop, endpoint):
    assert_problem(get(APIClient(), endpoint), 401, "not_authenticated")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_without_the_analytics_permission_is_denied(shop, manager, endpoint):
    assert_problem(get(staff_client(manager), endpoint), 403, "permission_denied")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_and_unmanaged_programs_are_not_found(client, other_program, endpoint):
    assert_problem(get(client, endpoint, program="nope"), 404, "program_not_found")
    assert_problem(get(client, endpoint, program=other_program.slug), 404, "program_not_found")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_program_is_required(client, endpoint):
    body = assert_problem(client.get(f"{ANALYTICS}/{endpoint}/"), 400, "validation_error")

    assert "program" in body["errors"]


def test_a_superuser_sees_any_program(other_program):
    superuser = StaffFactory(is_superuser=True)

    response = staff_client(superuser).get(f"{ANALYTICS}/liability/", {"program": other_program.slug})

    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("endpoint", "params", "field"),
    [
        ("retention", {"through": "2026-3"}, "through"),
        ("retention", {"through": "2026-13"}, "through"),
        ("retention", {"months": 0}, "months"),
        ("retention", {"months": 37}, "months"),
        ("retention", {"start": "2026-03-01"}, "non_field_errors"),
        ("retention", {"start": "2026-03-01", "end": "2026-04-01", "through": "2026-03"}, "non_field_errors"),
        ("retention", {"start": "2026-04-01", "end": "2026-03-01"}, "end"),
        ("cohorts", {"offsets": -1}, "offsets"),
        ("cohorts", {"through": "10000-01"}, "through"),
        ("orders", {"start": "2026-02-30"}, "start"),
        ("orders", {"start": "0001-01-01"}, "start"),
        ("orders", {"start": "2026-03-01", "end": "2026-03-01"}, "end"),
        ("orders", {"start": "2999-01-01"}, "start"),  # after the default end
        ("orders", {"tier": "gold"}, "tier"),
        ("nps", {"through": "March"}, "through"),
        ("liability", {"end": "yesterday"}, "end"),
        ("liability", {"months": 99}, "months"),
    ],
)
def test_bad_parameters_are_validation_errors(client, endpoint, params, field):
    body = assert_problem(get(client, endpoint, **params), 400, "validation_error")

    assert field in body["errors"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_tier_of_another_program_is_a_validation_error(client, other_program, endpoint):
    foreign = tier(other_program, "Gold", rank=1, threshold=0)

    body = assert_problem(get(client, endpoint, tier=foreign.pk), 400, "validation_error")

    assert body["errors"] == {"tier": ["Not a tier of shop."]}


# --- NPS answers: member app and integration API ---------------------------------------------------------------


@pytest.fixture
def nps_rule(program):
    return rule(
        program, name="Thanks for answering", kind="event", event="nps_answer", points=50, cap_per_member_month=50
    )


@pytest.fixture
def app_client(member, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return app_client_for(member)


APP_NPS = "/api/app/v1/me/nps/"


def pos_nps(member_id):
    return f"{POS}/members/{member_id}/nps/"


def state():
    return {**db_state(), "answers": list(NpsAnswer.objects.order_by("pk").values_list("pk", "score"))}


def test_app_answer_earns_the_rule_points_once_a_month(app_client, member, nps_rule):
    first = app_client.post(APP_NPS, {"score": 9, "comment": "Great"}, format="json")
    second = app_client.post(APP_NPS, {"score": 4}, format="json")

    assert first.status_code == 201, first.content
    answer = NpsAnswer.objects.order_by("pk").first()
    assert first.json() == {
        "id": answer.pk,
        "member_id": member.pk,
        "score": 9,
        "comment": "Great",
        "source": "app",
        "answered_at": first.json()["answered_at"],
        "points_awarded": 50,
        "awards": [{"rule": "Thanks for answering", "rule_id": nps_rule.pk, "points": 50}],
        "balances": {"available": 50, "pending": 0, "debt": 0},
    }
    assert second.status_code == 201
    assert (second.json()["points_awarded"], second.json()["comment"]) == (0, "")  # the monthly cap
    assert list(NpsAnswer.objects.order_by("pk").values_list("score", "source")) == [(9, "app"), (4, "app")]
    assert Account.objects.get(pk=member.pk).available == 50


def test_app_retry_with_the_same_key_replays(app_client, member, nps_rule):
    first = app_client.post(APP_NPS, {"score": 10}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    again = app_client.post(APP_NPS, {"score": 10}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    before = state()
    other = app_client.post(APP_NPS, {"score": 2}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert NpsAnswer.objects.count() == 1
    assert Entry.objects.filter(member=member).count() == 1
    assert_problem(other, 422, "idempotency_key_reused")
    assert state() == before


@pytest.mark.parametrize(
    "body", [{"score": 11}, {"score": -1}, {"score": "nine"}, {}, {"score": 5, "comment": "x" * 2001}]
)
def test_app_bad_answers_are_refused_and_write_nothing(app_client, nps_rule, body):
    before = state()

    response = app_client.post(APP_NPS, body, format="json")

    assert_problem(response, 400, "validation_error")
    assert state() == before


def test_app_suspended_member_cannot_answer(app_client, member, nps_rule):
    member_suspend(member=member)
    before = state()

    assert_problem(app_client.post(APP_NPS, {"score": 9}, format="json"), 422, "member_suspended")
    assert state() == before


def test_app_needs_a_token(member):
    assert_problem(APIClient().post(APP_NPS, {"score": 9}, format="json"), 401, "not_authenticated")
    assert not NpsAnswer.objects.exists()


def test_pos_answer_with_its_time(pos_client, member, nps_rule):
    answered = timezone.now() - timedelta(days=2)

    response = pos_client.post(
        pos_nps(member.pk), {"score": 6, "comment": "Queue", "answered_at": answered.isoformat()}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["member_id"], body["score"], body["source"], body["points_awarded"]) == (
        member.pk,
        6,
        "integration",
        50,
    )
    answer = NpsAnswer.objects.get()
    assert (answer.answered_at, answer.comment, answer.source) == (answered, "Queue", "integration")
    assert Account.objects.get(pk=member.pk).available == 50


def test_pos_retry_with_the_same_key_replays(pos_client, member, nps_rule):
    first = pos_client.post(pos_nps(member.pk), {"score": 8}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    again = pos_client.post(pos_nps(member.pk), {"score": 8}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert (NpsAnswer.objects.count(), Account.objects.get(pk=member.pk).available) == (1, 50)


def test_pos_another_programs_member_is_not_found(pos_client, other_program, nps_rule):
    stranger = MemberFactory(program=other_program)
    before = state()

    assert_problem(pos_client.post(pos_nps(stranger.pk), {"score": 9}, format="json"), 404, "member_not_found")
    assert_problem(pos_client.post(pos_nps(10**12), {"score": 9}, format="json"), 404, "member_not_found")
    assert_problem(pos_client.post(pos_nps("1.5"), {"score": 9}, format="json"), 404, "member_not_found")
    assert state() == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"score": 11}, 400, "validation_error"),
        ({"score": None}, 400, "validation_error"),
        ({"score": 9, "answered_at": "yesterday"}, 400, "validation_error"),
        ({"score": 9, "answered_at": "2999-01-01T00:00:00Z"}, 422, "occurred_at_in_future"),
    ],
)
def test_pos_bad_answers_are_refused_and_write_nothing(pos_client, member, nps_rule, body, status, code):
    before = state()

    assert_problem(pos_client.post(pos_nps(member.pk), body, format="json"), status, code)
    assert state() == before
