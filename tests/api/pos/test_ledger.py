"""Integration API: a member's ledger (GET members/{id}/ledger/), cursor-paginated and filterable."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.models import Entry, EntryKind, Lot
from loyalty.services.ledger import ledger_credit, ledger_debit
from tests.api.utils import assert_problem, pos_ledger_url
from tests.clients import pos_client_for
from tests.factories import MemberFactory

ENTRY_FIELDS = {
    "id",
    "kind",
    "kind_label",
    "points",
    "uncovered",
    "occurred_at",
    "created_at",
    "reason",
    "details",
    "available_at",
    "expires_at",
    "remaining",
    "allocations",
}


@pytest.fixture
def history(member):
    """Five earnings 5..1 days ago (10, 20, 30, 40, 50 points), then a redemption of 15 now."""
    now = timezone.now()
    credits = [
        ledger_credit(member=member, amount=10 * (6 - days), occurred_at=now - timedelta(days=days))
        for days in (5, 4, 3, 2, 1)
    ]
    redeem = ledger_debit(member=member, amount=15, kind=EntryKind.REDEEM, reason="Coffee")
    # newest first, as the ledger lists them
    return [redeem, *reversed(credits)]


def _ids(response):
    return [entry["id"] for entry in response.json()["results"]]


def test_ledger_lists_entries_newest_first(pos_client, member, history):
    response = pos_client.get(pos_ledger_url(member.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next"] is None
    assert body["previous"] is None
    assert _ids(response) == [entry.pk for entry in history]
    assert [entry["points"] for entry in body["results"]] == [-15, 50, 40, 30, 20, 10]
    assert all(set(entry) == ENTRY_FIELDS for entry in body["results"])


def test_ledger_credit_entry_shows_its_lot(pos_client, member, history):
    oldest_credit = history[-1]

    entries = pos_client.get(pos_ledger_url(member.pk)).json()["results"]

    credit = next(entry for entry in entries if entry["id"] == oldest_credit.pk)
    assert credit["kind"] == "earn"
    assert credit["kind_label"] == "Earned"
    assert credit["points"] == 10
    assert credit["uncovered"] == 0
    assert credit["remaining"] == 0  # spent by the redemption
    assert credit["expires_at"] is None
    assert credit["available_at"] is not None
    assert credit["allocations"] == []
    # the 20-point lot gave 5 to the redemption
    second = next(entry for entry in entries if entry["id"] == history[-2].pk)
    assert second["remaining"] == 15


def test_ledger_debit_entry_lists_its_allocations(pos_client, member, history):
    redeem = history[0]
    lot_10, lot_20 = Lot.objects.get(entry=history[-1]), Lot.objects.get(entry=history[-2])

    entry = pos_client.get(pos_ledger_url(member.pk)).json()["results"][0]

    assert entry["id"] == redeem.pk
    assert (entry["kind"], entry["kind_label"], entry["points"], entry["reason"]) == (
        "redeem",
        "Redeemed",
        -15,
        "Coffee",
    )
    assert (entry["available_at"], entry["expires_at"], entry["remaining"]) == (None, None, None)
    assert entry["allocations"] == [
        {"lot": lot_10.pk, "amount": 10, "lot_expires_at": None},
        {"lot": lot_20.pk, "amount": 5, "lot_expires_at": None},
    ]


def test_ledger_allocations_show_lot_expiry(expiring_program):
    member = MemberFactory(program=expiring_program)
    credit = ledger_credit(member=member, amount=10)
    ledger_debit(member=member, amount=4, kind=EntryKind.REDEEM)
    lot = Lot.objects.get(entry=credit)

    entries = pos_client_for(expiring_program).get(pos_ledger_url(member.pk)).json()["results"]

    debit, earned = entries
    assert debit["allocations"] == [{"lot": lot.pk, "amount": 4, "lot_expires_at": _iso(lot.expires_at)}]
    assert earned["expires_at"] == _iso(lot.expires_at)
    assert earned["remaining"] == 6


def _iso(value):
    return value.isoformat().replace("+00:00", "Z")


def test_ledger_debt_shows_as_uncovered(pos_client, member):
    ledger_credit(member=member, amount=30)
    reverse = ledger_debit(member=member, amount=50, kind=EntryKind.REVERSE, allow_debt=True)

    entry = pos_client.get(pos_ledger_url(member.pk)).json()["results"][0]

    assert entry["id"] == reverse.pk
    assert (entry["points"], entry["uncovered"]) == (-50, 20)
    assert [allocation["amount"] for allocation in entry["allocations"]] == [30]


def test_ledger_pending_credit_shows_when_it_becomes_available(pos_client, member):
    available_at = timezone.now() + timedelta(days=14)
    ledger_credit(member=member, amount=25, available_at=available_at)

    entry = pos_client.get(pos_ledger_url(member.pk)).json()["results"][0]

    assert entry["available_at"] == _iso(available_at)
    assert entry["remaining"] == 25


def test_ledger_of_a_member_without_entries_is_empty(pos_client, member):
    response = pos_client.get(pos_ledger_url(member.pk))

    assert response.status_code == 200, response.content
    assert response.json() == {"next": None, "previous": None, "results": []}


def test_ledger_cursor_pages_do_not_overlap(pos_client, member, history):
    # when: walking the `next` links two entries at a time
    pages = []
    url = pos_ledger_url(member.pk) + "?page_size=2"
    while url:
        response = pos_client.get(url)
        assert response.status_code == 200, response.content
        pages.append(_ids(response))
        url = response.json()["next"]

    # then
    assert pages == [[history[0].pk, history[1].pk], [history[2].pk, history[3].pk], [history[4].pk, history[5].pk]]


def test_ledger_previous_link_goes_back(pos_client, member, history):
    first = pos_client.get(pos_ledger_url(member.pk), {"page_size": 2})
    second = pos_client.get(first.json()["next"])

    back = pos_client.get(second.json()["previous"])

    assert _ids(back) == _ids(first)


def test_ledger_pages_survive_new_entries(pos_client, member, history):
    """A cursor page does not repeat entries when new ones are posted meanwhile."""
    first = pos_client.get(pos_ledger_url(member.pk), {"page_size": 3})
    ledger_credit(member=member, amount=7)

    second = pos_client.get(first.json()["next"])

    assert _ids(second) == [entry.pk for entry in history[3:6]]


def test_ledger_page_size_above_the_maximum_is_a_validation_error(pos_client, member):
    # The schema declares page_size 1 to 200: a larger one is refused, not silently cut to 200.
    ledger_credit(member=member, amount=1)

    response = pos_client.get(pos_ledger_url(member.pk), {"page_size": 1_000_000})

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"page_size": ["Give a whole number from 1 up to 200."]}


def test_ledger_page_size_at_the_maximum_is_accepted(pos_client, member):
    now = timezone.now()
    for n in range(3):
        ledger_credit(member=member, amount=1, occurred_at=now - timedelta(minutes=n))

    response = pos_client.get(pos_ledger_url(member.pk), {"page_size": 200})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_ledger_invalid_cursor_is_not_found(pos_client, member, history):
    response = pos_client.get(pos_ledger_url(member.pk), {"cursor": "garbage"})

    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (["earn"], [1, 2, 3, 4, 5]),
        (["redeem"], [0]),
        (["earn", "redeem"], [0, 1, 2, 3, 4, 5]),
        (["expire"], []),
    ],
)
def test_ledger_filters_by_kind(pos_client, member, history, kinds, expected):
    response = pos_client.get(pos_ledger_url(member.pk), {"kind": kinds})

    assert response.status_code == 200, response.content
    assert _ids(response) == [history[i].pk for i in expected]


def test_ledger_filters_by_time(pos_client, member, history):
    now = timezone.now()
    after = (now - timedelta(days=3, hours=12)).isoformat()
    before = (now - timedelta(days=1, hours=12)).isoformat()

    only_after = pos_client.get(pos_ledger_url(member.pk), {"occurred_after": after})
    only_before = pos_client.get(pos_ledger_url(member.pk), {"occurred_before": before})
    between = pos_client.get(pos_ledger_url(member.pk), {"occurred_after": after, "occurred_before": before})

    # history: [redeem now, 50 @1d, 40 @2d, 30 @3d, 20 @4d, 10 @5d]
    assert _ids(only_after) == [entry.pk for entry in history[0:4]]
    assert _ids(only_before) == [entry.pk for entry in history[2:6]]
    assert _ids(between) == [history[2].pk, history[3].pk]


def test_ledger_time_bounds_are_inclusive_after_exclusive_before(pos_client, member):
    at = timezone.now() - timedelta(hours=1)
    entry = ledger_credit(member=member, amount=5, occurred_at=at)

    inclusive = pos_client.get(pos_ledger_url(member.pk), {"occurred_after": at.isoformat()})
    exclusive = pos_client.get(pos_ledger_url(member.pk), {"occurred_before": at.isoformat()})

    assert _ids(inclusive) == [entry.pk]
    assert _ids(exclusive) == []


def test_ledger_next_link_keeps_the_filters(pos_client, member, history):
    url = pos_ledger_url(member.pk) + "?kind=earn&page_size=2"
    seen = []
    while url:
        response = pos_client.get(url)
        seen.extend(response.json()["results"])
        url = response.json()["next"]

    assert [entry["id"] for entry in seen] == [entry.pk for entry in history[1:]]
    assert {entry["kind"] for entry in seen} == {"earn"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "bonus"}, "kind"),
        ({"kind": ["earn", "nope"]}, "kind"),
        ({"occurred_after": "yesterday"}, "occurred_after"),
        ({"occurred_before": "2026-13-01T00:00:00Z"}, "occurred_before"),
    ],
)
def test_ledger_invalid_filter_is_a_validation_error(pos_client, member, history, params, field):
    response = pos_client.get(pos_ledger_url(member.pk), params)

    problem = assert_problem(response, 400, "validation_error")
    assert field in problem["errors"]


def test_ledger_only_lists_the_members_own_entries(pos_client, program, member, history):
    other = MemberFactory(program=program)
    ledger_credit(member=other, amount=999)

    response = pos_client.get(pos_ledger_url(member.pk))

    assert 999 not in [entry["points"] for entry in response.json()["results"]]
    assert len(response.json()["results"]) == Entry.objects.filter(member=member).count()


@pytest.mark.parametrize("member_id", ["999999", "abc"])
def test_ledger_of_unknown_member_is_not_found(pos_client, member_id):
    assert_problem(pos_client.get(pos_ledger_url(member_id)), 404, "member_not_found")


def _queries_for_ledger(client, member):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(pos_ledger_url(member.pk))
    assert response.status_code == 200
    return len(queries)


def test_ledger_query_count_does_not_grow_with_entries(pos_client, program):
    small, large = MemberFactory(program=program), MemberFactory(program=program)
    for member, count in ((small, 2), (large, 12)):
        for _ in range(count):
            ledger_credit(member=member, amount=10)
        ledger_debit(member=member, amount=5 * count + 5, kind=EntryKind.REDEEM)
    _queries_for_ledger(pos_client, small)  # warm up: the first request of a key touches last_used_at

    assert _queries_for_ledger(pos_client, large) == _queries_for_ledger(pos_client, small)
