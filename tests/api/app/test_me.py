"""The member's own profile, ledger, tier and export through the app."""

from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from loyalty.services.ledger import ledger_credit
from members.models import Member
from tests.api.app.utils import EXPORT_URL, LEDGER_URL, ME_URL, TIER_URL, state
from tests.api.utils import assert_problem
from tests.builders import line, purchase, rule, tier
from tests.clients import app_client_for
from tests.factories import MemberFactory

# An hour ago: clear of the future check.
AN_HOUR = timedelta(hours=1)


def setup_rules(program):
    rule(program, name="Base rate", kind="base_rate", rate=Decimal("0.1"))
    silver = tier(program, "Silver", rank=1, threshold=0)
    gold = tier(program, "Gold", rank=2, threshold=200)
    return silver, gold


def test_me_shows_profile_balances_and_tier(app_client, app_member, program):
    setup_rules(program)
    # 50 points
    purchase(app_member, "R-1", lines=[line("BK-1", "500.00", "books")], occurred_at=timezone.now() - AN_HOUR)
    ledger_credit(member=app_member, amount=25, expires_at=timezone.now() + timedelta(days=5))

    response = app_client.get(ME_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["email"], body["card"], body["phone"]) == (
        app_member.pk,
        "jana@example.com",
        "4000-1234-5678",
        "+420111222333",
    )
    assert body["program"] == {"slug": program.slug, "name": program.name, "currency": "EUR", "points_name": "points"}
    assert body["balances"]["available"] == 75 and body["balances"]["expiring_soon"] == 25
    assert body["balances"]["earned"] == 75
    assert body["tier"]["tier"]["name"] == "Silver"
    assert body["tier"]["next_tier"]["name"] == "Gold"
    assert Decimal(body["tier"]["metric_value"]) == 50
    assert Decimal(body["tier"]["missing_for_next"]) == 150


def test_patch_me_changes_only_the_fields_sent(app_client, app_member):
    response = app_client.patch(
        ME_URL,
        {"first_name": " Petra ", "phone": "+420 777 888 999", "birth_date": "1990-05-17", "consent_sms": True},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["first_name"], body["phone"], body["birth_date"], body["consent_sms"]) == (
        "Petra",
        "+420777888999",
        "1990-05-17",
        True,
    )
    member = Member.objects.get(pk=app_member.pk)
    assert (member.first_name, member.last_name, member.phone) == ("Petra", app_member.last_name, "+420777888999")
    assert member.birth_date == date(1990, 5, 17) and member.consent_sms and not member.consent_email


def test_patch_me_refuses_fields_a_member_may_not_change(app_client, app_member):
    before = state()

    response = app_client.patch(ME_URL, {"first_name": "Eva", "email": "x@example.com", "status": "active"})

    body = assert_problem(response, 400, "unknown_field")
    assert set(body["errors"]) == {"email", "status"}
    assert state() == before


def test_patch_me_refuses_a_phone_another_member_uses(app_client, app_member, program):
    MemberFactory(program=program, phone="+420999000111")
    before = state()

    response = app_client.patch(ME_URL, {"phone": "+420 999 000 111"})

    assert_problem(response, 409, "member_already_exists")
    assert state() == before


def test_patch_me_refuses_a_future_birth_date_and_an_empty_body(app_client):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert_problem(app_client.patch(ME_URL, {"birth_date": tomorrow}), 400, "validation_error")
    assert_problem(app_client.patch(ME_URL, {}), 400, "validation_error")


def test_ledger_lists_own_entries_with_the_rules_that_gave_them(app_client, app_member, program):
    setup_rules(program)
    purchase(app_member, "R-1", lines=[line("BK-1", "500.00", "books")], occurred_at=timezone.now() - AN_HOUR)
    purchase(app_member, "R-2", lines=[line("BK-1", "300.00", "books")], occurred_at=timezone.now() - AN_HOUR)

    response = app_client.get(LEDGER_URL, {"page_size": 1})

    assert response.status_code == 200, response.content
    body = response.json()
    (entry,) = body["results"]
    assert entry["points"] == 30 and entry["kind"] == "earn"
    assert entry["details"]["purchase"] == "R-2"
    assert [(a["rule"], a["points"]) for a in entry["details"]["awards"]] == [("Base rate", 30)]
    following = app_client.get(body["next"]).json()
    assert [e["details"]["purchase"] for e in following["results"]] == ["R-1"]


def test_tier_endpoint(app_client, app_member, program):
    setup_rules(program)
    # 250 points: Gold
    purchase(app_member, "R-1", lines=[line("BK-1", "2500.00", "books")], occurred_at=timezone.now() - AN_HOUR)

    body = app_client.get(TIER_URL).json()

    assert body["tier"]["name"] == "Gold" and body["next_tier"] is None
    assert Decimal(body["metric_value"]) == 250 and Decimal(body["missing_to_keep"]) == 0


def test_export_holds_the_members_data_and_ledger(app_client, app_member):
    ledger_credit(member=app_member, amount=40)

    response = app_client.get(EXPORT_URL)

    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == f'attachment; filename="member-{app_member.pk}-export.json"'
    body = response.json()
    assert body["member"]["id"] == app_member.pk and body["member"]["email"] == "jana@example.com"
    assert [e["points"] for e in body["ledger"]["entries"]] == [40]


def test_reads_leave_other_members_alone(app_client, app_member, program):
    other = MemberFactory(program=program)
    ledger_credit(member=other, amount=999)
    app_client_for(other)  # B has an app account too

    assert app_client.get(LEDGER_URL).json()["results"] == []
    assert app_client.get(EXPORT_URL).json()["ledger"]["entries"] == []
    assert app_client.get(ME_URL).json()["balances"]["available"] == 0
