"""Manager API: member list (pagination, filters) and detail, scoped to the manager's programs."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.models import EntryKind
from loyalty.services.ledger import ledger_credit, ledger_debit
from members.services.members import member_close, member_suspend
from tests.api.utils import MANAGE_MEMBERS_URL, assert_problem, manage_member_url
from tests.clients import staff_client
from tests.factories import MemberFactory, ProgramFactory, StaffFactory, SuperuserFactory

LIST_FIELDS = {
    "id",
    "external_id",
    "card",
    "email",
    "first_name",
    "last_name",
    "status",
    "enrolled_at",
    "program",
    "available",
    "pending",
    "debt",
}


def _ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def roster(program, other_program):
    """Three members of the manager's program and one of a program they do not manage."""
    now = timezone.now()
    ana = MemberFactory(
        program=program,
        first_name="Ana",
        last_name="Svoboda",
        email="ana@example.com",
        phone="+420601000001",
        card="400000000101",
        external_id="SHOP-ANA",
        enrolled_at=now - timedelta(days=30),
    )
    bob = MemberFactory(
        program=program,
        first_name="Bob",
        last_name="Dvorak",
        email="bob@shop.test",
        card="400000000202",
        external_id="SHOP-BOB",
        enrolled_at=now - timedelta(days=10),
    )
    cyril = MemberFactory(
        program=program,
        first_name="Cyril",
        last_name="Svobodny",
        email="cyril@example.com",
        card="400000000303",
        external_id="SHOP-CYRIL",
        enrolled_at=now - timedelta(days=1),
    )
    outsider = MemberFactory(
        program=other_program, first_name="Ana", last_name="Svoboda", email="ana@example.com", card="400000000101"
    )
    ledger_credit(member=ana, amount=100)
    ledger_credit(member=bob, amount=250)
    ledger_credit(member=cyril, amount=10)
    ledger_debit(member=cyril, amount=40, kind=EntryKind.REVERSE, allow_debt=True)
    member_suspend(member=bob)
    return {"ana": ana, "bob": bob, "cyril": cyril, "outsider": outsider}


# --- List ---------------------------------------------------------------------------------


def test_list_shows_the_managed_programs_members(manage_client, program, roster):
    response = manage_client.get(MANAGE_MEMBERS_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    assert body["next"] is None and body["previous"] is None
    assert [row["id"] for row in body["results"]] == [roster[name].pk for name in ("ana", "bob", "cyril")]
    assert roster["outsider"].pk not in [row["id"] for row in body["results"]]
    assert all(set(row) == LIST_FIELDS for row in body["results"])
    ana, bob, cyril = body["results"]
    assert ana == {
        "id": roster["ana"].pk,
        "external_id": "SHOP-ANA",
        "card": "4000-0000-0101",
        "email": "ana@example.com",
        "first_name": "Ana",
        "last_name": "Svoboda",
        "status": "active",
        "enrolled_at": ana["enrolled_at"],
        "program": program.slug,
        "available": 100,
        "pending": 0,
        "debt": 0,
    }
    assert (bob["status"], bob["available"]) == ("suspended", 250)
    assert (cyril["available"], cyril["debt"]) == (0, 30)


def test_list_member_without_account_shows_zero(manage_client, program):
    """The account row is created lazily (members.services.members.member_create does not make one);
    the schema documents non-null integers, so the list must answer 0, not null."""
    member = MemberFactory(program=program)

    row = manage_client.get(MANAGE_MEMBERS_URL).json()["results"][0]

    assert row["id"] == member.pk
    assert (row["available"], row["pending"], row["debt"]) == (0, 0, 0)


def test_list_is_paginated(manage_client, roster):
    first = manage_client.get(MANAGE_MEMBERS_URL, {"page_size": 2})
    second = manage_client.get(first.json()["next"])

    assert first.json()["count"] == 3
    assert _ids(first) == [roster["ana"].pk, roster["bob"].pk]
    assert _ids(second) == [roster["cyril"].pk]
    assert second.json()["next"] is None
    assert second.json()["previous"] is not None


def test_list_page_beyond_the_end_is_not_found(manage_client, roster):
    assert_problem(manage_client.get(MANAGE_MEMBERS_URL, {"page": 9}), 404, "not_found")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "active"}, ["ana", "cyril"]),
        ({"status": "suspended"}, ["bob"]),
        ({"status": ["suspended", "active"]}, ["ana", "bob", "cyril"]),
        ({"status": "closed"}, []),
        ({"available_min": 100}, ["ana", "bob"]),
        ({"available_min": 101}, ["bob"]),
        ({"available_max": 100}, ["ana", "cyril"]),
        ({"available_min": 50, "available_max": 200}, ["ana"]),
        ({"debt_min": 1}, ["cyril"]),
        ({"q": "svobod"}, ["ana", "cyril"]),
        ({"q": "BOB"}, ["bob"]),
        ({"q": "@example.com"}, ["ana", "cyril"]),
        ({"q": "601000001"}, ["ana"]),
        ({"q": "4000-0000-0202"}, ["bob"]),
        ({"q": "400000000303"}, ["cyril"]),
        ({"q": "SHOP-CYRIL"}, ["cyril"]),
        ({"q": "nobody-at-all"}, []),
        ({"q": "svobod", "status": "active", "available_min": 50}, ["ana"]),
    ],
)
def test_list_filters(manage_client, roster, params, expected):
    response = manage_client.get(MANAGE_MEMBERS_URL, params)

    assert _ids(response) == [roster[name].pk for name in expected]
    assert response.json()["count"] == len(expected)


def test_list_filters_by_enrollment_time(manage_client, roster):
    now = timezone.now()
    after = (now - timedelta(days=15)).isoformat()
    before = (now - timedelta(days=5)).isoformat()

    assert _ids(manage_client.get(MANAGE_MEMBERS_URL, {"enrolled_after": after})) == [
        roster["bob"].pk,
        roster["cyril"].pk,
    ]
    assert _ids(manage_client.get(MANAGE_MEMBERS_URL, {"enrolled_before": before})) == [
        roster["ana"].pk,
        roster["bob"].pk,
    ]
    assert _ids(manage_client.get(MANAGE_MEMBERS_URL, {"enrolled_after": after, "enrolled_before": before})) == [
        roster["bob"].pk
    ]


def test_list_filters_by_program_slug(manager, program, roster):
    second = ProgramFactory()
    second.managers.add(manager)
    theirs = MemberFactory(program=second)
    client = staff_client(manager)

    assert _ids(client.get(MANAGE_MEMBERS_URL)) == [roster[n].pk for n in ("ana", "bob", "cyril")] + [theirs.pk]
    assert _ids(client.get(MANAGE_MEMBERS_URL, {"program": second.slug})) == [theirs.pk]
    assert _ids(client.get(MANAGE_MEMBERS_URL, {"program": program.slug})) == [
        roster[n].pk for n in ("ana", "bob", "cyril")
    ]


def test_list_filter_by_unmanaged_program_is_empty(manage_client, other_program, roster):
    response = manage_client.get(MANAGE_MEMBERS_URL, {"program": other_program.slug})

    assert _ids(response) == []
    assert response.json()["count"] == 0


def test_list_search_never_reaches_other_programs(manage_client, roster):
    # the outsider shares Ana's name, email and card
    response = manage_client.get(MANAGE_MEMBERS_URL, {"q": "ana@example.com"})

    assert _ids(response) == [roster["ana"].pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "gone"}, "status"),
        ({"available_min": "lots"}, "available_min"),
        ({"available_max": "1e"}, "available_max"),
        ({"debt_min": "x"}, "debt_min"),
        ({"enrolled_after": "last tuesday"}, "enrolled_after"),
        ({"enrolled_before": "2026-02-30T00:00:00Z"}, "enrolled_before"),
    ],
)
def test_list_invalid_filter_is_a_validation_error(manage_client, roster, params, field):
    response = manage_client.get(MANAGE_MEMBERS_URL, params)

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"]


def test_list_closed_members_are_listed_with_their_status(manage_client, roster):
    member_close(member=roster["ana"])

    response = manage_client.get(MANAGE_MEMBERS_URL, {"status": "closed"})

    assert _ids(response) == [roster["ana"].pk]
    assert response.json()["results"][0]["status"] == "closed"


def test_manager_without_programs_sees_nobody(roster):
    client = staff_client(StaffFactory())

    response = client.get(MANAGE_MEMBERS_URL)

    assert _ids(response) == []
    assert_problem(client.get(manage_member_url(roster["ana"].pk)), 404, "member_not_found")


def test_superuser_sees_every_program(roster):
    admin = SuperuserFactory(password="pw")

    response = staff_client(admin).get(MANAGE_MEMBERS_URL)

    assert set(_ids(response)) == {member.pk for member in roster.values()}


def test_list_query_count_does_not_grow_with_members(manage_client, program):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert manage_client.get(MANAGE_MEMBERS_URL).status_code == 200
        return len(captured)

    for _ in range(2):
        ledger_credit(member=MemberFactory(program=program), amount=5)
    queries()  # warm up: the first request fills the user's permission cache
    few = queries()
    for _ in range(10):
        ledger_credit(member=MemberFactory(program=program), amount=5)

    assert queries() == few


# --- Detail ----------------------------------------------------------------------------------


def test_detail_shows_member_with_balances(manage_client, roster):
    cyril = roster["cyril"]

    response = manage_client.get(manage_member_url(cyril.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["email"], body["card"]) == (cyril.pk, "cyril@example.com", "4000-0000-0303")
    balances = body["balances"]
    assert (balances["available"], balances["pending"], balances["debt"], balances["earned"]) == (0, 0, 30, 10)


def test_detail_of_another_programs_member_is_not_found(manage_client, roster):
    response = manage_client.get(manage_member_url(roster["outsider"].pk))

    assert_problem(response, 404, "member_not_found")
    assert "ana@example.com" not in response.content.decode()


@pytest.mark.parametrize("member_id", ["999999", "99999999999999999999999"])
def test_detail_of_unknown_member_is_not_found(manage_client, roster, member_id):
    assert_problem(manage_client.get(manage_member_url(member_id)), 404, "member_not_found")


@pytest.mark.parametrize("member_id", ["abc", "1.5", "-", "%C2%B2"])
def test_detail_with_non_numeric_id_is_not_found(manage_client, roster, member_id):
    """A malformed id names no member: 404, never a 500."""
    assert_problem(manage_client.get(manage_member_url(member_id)), 404, "member_not_found")
