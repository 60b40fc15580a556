"""Integration API: purchases, simulations, returns, custom events and the member's tier (DESIGN.md 4, 5, 10)."""

import copy
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from config.api.input import UNKNOWN_FIELD_MESSAGE
from loyalty.models import (
    Account,
    Award,
    EarningRule,
    Entry,
    EntryKind,
    Lot,
    Purchase,
    PurchaseLine,
    Return,
    Tier,
    TierHistory,
)
from loyalty.services.ledger import ledger_credit, ledger_debit
from members.services.members import member_suspend
from tests.api.utils import POS, assert_problem, db_state
from tests.builders import line, purchase, rule, tier
from tests.factories import MemberFactory

PURCHASES_URL = f"{POS}/purchases/"
SIMULATE_URL = f"{POS}/purchases/simulate/"
RETURNS_URL = f"{POS}/returns/"
EVENTS_URL = f"{POS}/events/"

# A till sends whole seconds; an hour ago keeps every purchase inside windows and clear of the future check.
OCCURRED = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)

# 1234.50 in all; the gift card earns nothing: 73 base points on 734.50, books x2 adds 60.
LINES = [
    {"sku": "BK-991", "category": "books", "quantity": "2", "unit_price": "300.00", "amount": "600.00"},
    {"sku": "GC-1", "category": "gift-cards", "quantity": "1", "unit_price": "500.00", "amount": "500.00"},
    {"sku": "TO-1", "category": "toys", "quantity": "1", "unit_price": "134.50", "amount": "134.50"},
]
CARD_REF = {"card": "4000-1234-5678"}


def tier_url(member_id) -> str:
    return f"{POS}/members/{member_id}/tier/"


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def purchase_body(member=CARD_REF, external_id="TILL7-000123", lines=LINES, **fields) -> dict:
    lines = copy.deepcopy(lines)
    total = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    return {
        "external_id": external_id,
        "member": dict(member),
        "store": "PRAGUE-01",
        "channel": "pos",
        "occurred_at": OCCURRED.isoformat(),
        "currency": "EUR",
        "total": f"{total:.2f}",
        "lines": lines,
        **fields,
    }


def state() -> dict:
    """db_state() plus everything a purchase, return or event writes."""
    return {
        **db_state(),
        "accounts_tier": list(Account.objects.order_by("pk").values_list("pk", "tier_id", "purchases")),
        "purchases": list(
            Purchase.objects.order_by("pk").values_list(
                "pk", "external_id", "points_awarded", "points_reversed", "returned_total", "returned_eligible"
            )
        ),
        "purchase_lines": list(PurchaseLine.objects.order_by("pk").values_list("pk", "returned_amount")),
        "returns": list(Return.objects.order_by("pk").values_list("pk", "external_id", "points_reversed")),
        "awards": list(Award.objects.order_by("pk").values_list("pk", "rule_id", "points")),
        "tier_history": list(TierHistory.objects.order_by("pk").values_list("pk", "to_tier_id")),
        "budgets": list(EarningRule.objects.order_by("pk").values_list("pk", "budget_used")),
    }


def post(client, url, body, **headers):
    return client.post(url, body, format="json", **headers)


def balances(member) -> tuple[int, int, int]:
    account = Account.objects.get(pk=member.pk)
    return account.available, account.pending, account.debt


@pytest.fixture
def base_rate(program):
    return rule(program, excluded_categories="gift-cards")


@pytest.fixture
def buyer(program, base_rate):
    return MemberFactory(
        program=program, card="400012345678", external_id="CUST-77", email="jana@example.com", phone="+420601234567"
    )


# --- Recording a purchase ------------------------------------------------------------------------------------------


def test_purchase_answers_with_points_rules_balances_and_tier_change(pos_client, program, buyer, base_rate):
    program.pending_days = 14
    program.save(update_fields=["pending_days"])
    books = rule(program, name="Books double points", kind="multiplier", multiplier=Decimal(2), categories="books")
    tier(program, "Silver", rank=1, threshold="100")
    tier(program, "Gold", rank=2, threshold="1000")
    ledger_credit(member=buyer, amount=950)

    response = post(pos_client, PURCHASES_URL, purchase_body())

    assert response.status_code == 201, response.content
    body = response.json()
    assert when(body["pending_until"]) == OCCURRED + timedelta(days=14)
    record = Purchase.objects.get()
    assert body == {
        "id": record.pk,
        "external_id": "TILL7-000123",
        "member_id": buyer.pk,
        "points_awarded": 133,
        "awards": [
            {"rule": "Base rate", "rule_id": base_rate.pk, "points": 73},
            {"rule": "Books double points", "rule_id": books.pk, "points": 60},
        ],
        "pending_until": body["pending_until"],
        "balances": {"available": 950, "pending": 133, "debt": 0},
        "tier": {"before": None, "after": "Silver"},
    }
    assert (record.member_id, record.store, record.channel, record.currency) == (buyer.pk, "PRAGUE-01", "pos", "EUR")
    assert (record.occurred_at, record.total, record.eligible_amount) == (
        OCCURRED,
        Decimal("1234.50"),
        Decimal("734.50"),
    )
    assert list(record.lines.values_list("sku", "quantity", "amount", "eligible")) == [
        ("BK-991", Decimal(2), Decimal("600.00"), True),
        ("GC-1", Decimal(1), Decimal("500.00"), False),
        ("TO-1", Decimal(1), Decimal("134.50"), True),
    ]
    assert sorted(Award.objects.filter(member=buyer).values_list("rule_id", "points")) == sorted(
        [(base_rate.pk, 73), (books.pk, 60)]
    )
    lot = Lot.objects.get(entry=record.entry)
    assert (lot.amount, lot.pending, lot.available_at) == (133, True, OCCURRED + timedelta(days=14))
    assert balances(buyer) == (950, 133, 0)
    assert TierHistory.objects.get(member=buyer).to_tier.name == "Silver"


def test_points_available_at_once_have_no_pending_until(pos_client, buyer):
    response = post(pos_client, PURCHASES_URL, purchase_body())

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["points_awarded"], body["pending_until"]) == (73, None)
    assert body["balances"] == {"available": 73, "pending": 0, "debt": 0}
    assert body["tier"] == {"before": None, "after": None}


def test_purchase_credits_pay_the_debt_first(pos_client, program, buyer):
    purchase(buyer, "OLD-1", lines=[line("BK-1", "1000.00", "books")], occurred_at=OCCURRED)  # 100 points
    ledger_debit(member=buyer, amount=100)
    ledger_debit(member=buyer, amount=20, kind=EntryKind.REVERSE, allow_debt=True)

    body = post(pos_client, PURCHASES_URL, purchase_body()).json()

    assert (body["points_awarded"], body["balances"]) == (73, {"available": 53, "pending": 0, "debt": 0})


@pytest.mark.parametrize(
    "member_ref",
    [
        pytest.param("id", id="id"),
        pytest.param({"card": "4000-1234-5678"}, id="card"),
        pytest.param({"card": "400012345678"}, id="bare-card"),
        pytest.param({"external_id": "CUST-77"}, id="external_id"),
        pytest.param({"email": "Jana@Example.com"}, id="email"),
        pytest.param({"phone": "+420 601 234 567"}, id="phone"),
    ],
)
def test_member_can_be_named_by_any_identifier(pos_client, program, buyer, member_ref):
    decoy = MemberFactory(program=program)
    member_ref = {"id": buyer.pk} if member_ref == "id" else member_ref

    response = post(pos_client, PURCHASES_URL, purchase_body(member=member_ref))

    assert response.status_code == 201, response.content
    assert response.json()["member_id"] == buyer.pk
    assert Purchase.objects.get().member_id == buyer.pk
    assert balances(buyer) == (73, 0, 0)
    assert not Account.objects.filter(pk=decoy.pk).exists()


def test_lowercase_currency_is_the_program_currency(pos_client, buyer):
    response = post(pos_client, PURCHASES_URL, purchase_body(currency="eur"))

    assert response.status_code == 201, response.content
    assert Purchase.objects.get().currency == "EUR"


def test_purchase_a_few_minutes_ahead_of_the_clock_is_accepted(pos_client, buyer):
    ahead = timezone.now() + timedelta(minutes=4)

    response = post(pos_client, PURCHASES_URL, purchase_body(occurred_at=ahead.isoformat()))

    assert response.status_code == 201, response.content
    assert response.json()["points_awarded"] == 73
    assert Purchase.objects.get().occurred_at == ahead


def test_purchase_without_lines_earns_on_its_total(pos_client, buyer):
    body = purchase_body(total="250.00")
    del body["lines"]

    response = post(pos_client, PURCHASES_URL, body)

    # The lines are optional in the contract, and then the total is checked against nothing:
    # the whole total is the basket, and the base rate applies to it.
    assert response.status_code == 201, response.content
    assert response.json()["points_awarded"] == 25
    assert balances(buyer) == (25, 0, 0)


def test_the_same_external_id_in_another_program_is_another_purchase(
    pos_client, other_pos_client, other_program, buyer
):
    rule(other_program)
    stranger = MemberFactory(program=other_program, card="400012345678")
    first = post(pos_client, PURCHASES_URL, purchase_body())

    second = post(other_pos_client, PURCHASES_URL, purchase_body())

    assert (first.status_code, second.status_code) == (201, 201), second.content
    assert second.json()["member_id"] == stranger.pk
    assert Purchase.objects.filter(external_id="TILL7-000123").count() == 2


# --- Retries ----------------------------------------------------------------------------------------------------------


def test_retry_with_the_same_external_id_replays_the_first_answer(pos_client, program, buyer):
    program.pending_days = 14
    program.save(update_fields=["pending_days"])
    tier(program, "Silver", rank=1, threshold="50")
    first = post(pos_client, PURCHASES_URL, purchase_body())
    after_first = state()

    again = post(pos_client, PURCHASES_URL, purchase_body(member={"email": "jana@example.com"}))

    assert first.status_code == 201, first.content
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert first.json()["tier"] == {"before": None, "after": "Silver"}
    assert "Idempotent-Replayed" not in again
    assert state() == after_first


def test_retry_replays_the_first_balances_even_after_later_activity(pos_client, buyer):
    first = post(pos_client, PURCHASES_URL, purchase_body()).json()
    post(pos_client, PURCHASES_URL, purchase_body(external_id="TILL7-000124"))

    again = post(pos_client, PURCHASES_URL, purchase_body())

    assert again.status_code == 200
    assert again.json() == first
    assert balances(buyer) == (146, 0, 0)


def test_retry_with_other_details_is_a_conflict(pos_client, program, buyer):
    post(pos_client, PURCHASES_URL, purchase_body())
    other = MemberFactory(program=program, card="400099990000")
    before = state()

    changed_total = post(pos_client, PURCHASES_URL, purchase_body(lines=LINES[:1]))
    other_member = post(pos_client, PURCHASES_URL, purchase_body(member={"card": other.card}))
    other_time = post(pos_client, PURCHASES_URL, purchase_body(occurred_at=(OCCURRED - timedelta(days=1)).isoformat()))

    for response in (changed_total, other_member, other_time):
        assert_problem(response, 409, "purchase_conflict")
    assert state() == before


def test_idempotency_key_replays_the_purchase(pos_client, program, buyer):
    key = {"HTTP_IDEMPOTENCY_KEY": "3f2c9a1e-purchase"}
    first = post(pos_client, PURCHASES_URL, purchase_body(), **key)
    after_first = state()

    again = post(pos_client, PURCHASES_URL, purchase_body(), **key)

    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert state() == after_first
    assert (Purchase.objects.count(), Entry.objects.count(), balances(buyer)) == (1, 1, (73, 0, 0))


def test_idempotency_key_reused_for_another_purchase_is_refused(pos_client, buyer):
    key = {"HTTP_IDEMPOTENCY_KEY": "3f2c9a1e-purchase"}
    post(pos_client, PURCHASES_URL, purchase_body(), **key)
    before = state()

    response = post(pos_client, PURCHASES_URL, purchase_body(external_id="TILL7-000124"), **key)

    assert_problem(response, 422, "idempotency_key_reused")
    assert state() == before


def test_a_purchase_reads_its_member_once_with_the_account_lock(pos_client, buyer):
    assert post(pos_client, PURCHASES_URL, purchase_body(external_id="TILL7-1")).status_code == 201  # the account

    with CaptureQueriesContext(connection) as queries:
        response = post(pos_client, PURCHASES_URL, purchase_body(external_id="TILL7-2"))

    assert response.status_code == 201, response.content
    assert response.json()["member_id"] == buyer.pk
    member_reads = [q["sql"] for q in queries.captured_queries if '"members_member"' in q["sql"]]
    assert len(member_reads) == 1
    assert 'FROM "loyalty_account"' in member_reads[0]
    assert ("FOR UPDATE" in member_reads[0]) == connection.features.has_select_for_update


# --- Simulation -------------------------------------------------------------------------------------------------------


def test_simulation_predicts_the_answer_and_writes_nothing(pos_client, program, buyer):
    program.pending_days = 14
    program.save(update_fields=["pending_days"])
    rule(program, name="Books double points", kind="multiplier", multiplier=Decimal(2), categories="books")
    rule(program, name="Launch bonus", kind="bonus", points=30, budget_total=100)
    tier(program, "Silver", rank=1, threshold="100")
    ledger_credit(member=buyer, amount=950)
    ledger_debit(member=buyer, amount=960, kind=EntryKind.REVERSE, allow_debt=True)  # 10 points of debt
    before = state()

    simulated = post(pos_client, SIMULATE_URL, purchase_body())

    assert simulated.status_code == 200, simulated.content
    assert state() == before
    body = simulated.json()
    assert (body["id"], body["points_awarded"], body["balances"]) == (
        None,
        163,
        {"available": 0, "pending": 153, "debt": 0},
    )
    recorded = post(pos_client, PURCHASES_URL, purchase_body())
    assert recorded.status_code == 201, recorded.content
    assert body == {**recorded.json(), "id": None}


def test_simulation_for_a_member_without_history(pos_client, buyer):
    response = post(pos_client, SIMULATE_URL, purchase_body(member={"id": buyer.pk}))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": None,
        "external_id": "TILL7-000123",
        "member_id": buyer.pk,
        "points_awarded": 73,
        "awards": [{"rule": "Base rate", "rule_id": EarningRule.objects.get().pk, "points": 73}],
        "pending_until": None,
        "balances": {"available": 73, "pending": 0, "debt": 0},
        "tier": {"before": None, "after": None},
    }
    assert not Account.objects.filter(pk=buyer.pk).exists()


# --- Rejections: problem+json with a stable code, nothing written --------------------------------------------------

BOTH_URLS = pytest.mark.parametrize("url", [PURCHASES_URL, SIMULATE_URL], ids=["record", "simulate"])


def _assert_rejected(response, status, code, before) -> dict:
    body = assert_problem(response, status, code)
    assert state() == before
    return body


@BOTH_URLS
@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param(lambda: {"currency": "CZK"}, "currency_mismatch", id="currency"),
        pytest.param(lambda: {"total": "1234.49"}, "total_mismatch", id="total-below-lines"),
        pytest.param(lambda: {"total": "1300.00"}, "total_mismatch", id="total-above-lines"),
        pytest.param(
            lambda: {"occurred_at": (timezone.now() + timedelta(minutes=6)).isoformat()},
            "occurred_at_in_future",
            id="six-minutes-ahead",
        ),
    ],
)
def test_domain_rejections(pos_client, buyer, url, changes, code):
    ledger_credit(member=buyer, amount=5)
    before = state()

    response = post(pos_client, url, purchase_body(**changes()))

    _assert_rejected(response, 422, code, before)


@BOTH_URLS
@pytest.mark.parametrize(
    ("path", "value", "errors_at"),
    [
        pytest.param(("lines", 0, "quantity"), "0", None, id="zero-quantity"),
        pytest.param(("lines", 0, "quantity"), "-1", None, id="negative-quantity"),
        pytest.param(("lines", 0, "quantity"), "abc", None, id="quantity-not-a-number"),
        pytest.param(("lines", 1, "amount"), "-500.00", None, id="negative-amount"),
        pytest.param(("lines", 1, "amount"), "12.345", None, id="amount-three-decimals"),
        pytest.param(("lines", 1, "amount"), "abc", None, id="amount-not-a-number"),
        pytest.param(("lines", 2, "unit_price"), "-1.00", None, id="negative-unit-price"),
        pytest.param(("lines", 2, "sku"), "", None, id="blank-sku"),
        pytest.param(("total",), "12.345", None, id="total-three-decimals"),
        pytest.param(("total",), "abc", None, id="total-not-a-number"),
        pytest.param(("total",), "-1234.50", None, id="negative-total"),
        pytest.param(("total",), "NaN", None, id="total-nan"),
        pytest.param(("currency",), "EURO", None, id="currency-not-iso"),
        pytest.param(("channel",), "fax", None, id="unknown-channel"),
        pytest.param(("occurred_at",), "yesterday", None, id="occurred-at-not-a-time"),
        pytest.param(("external_id",), "", None, id="blank-external-id"),
        pytest.param(("external_id",), "X" * 101, None, id="long-external-id"),
        pytest.param(("lines",), "not a list", ("lines", "non_field_errors"), id="lines-not-a-list"),
    ],
)
def test_malformed_purchases_are_validation_errors_per_field(pos_client, buyer, url, path, value, errors_at):
    body = purchase_body()
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    before = state()

    problem = _assert_rejected(post(pos_client, url, body), 400, "validation_error", before)

    assert list(problem["errors"]) == [path[0]]
    messages = problem["errors"]
    for step in errors_at or path:
        messages = messages[str(step)]  # a line's errors are keyed by its position: {"lines": {"0": {...}}}
    assert messages and all(isinstance(message, str) and message for message in messages), problem["errors"]
    if path[0] == "lines" and len(path) == 3:  # only the bad line is named
        assert list(problem["errors"]["lines"]) == [str(path[1])]


EXACTLY_ONE = {"member": {"non_field_errors": ["Give exactly one of id, card, external_id, email, phone."]}}


@BOTH_URLS
@pytest.mark.parametrize(
    ("member_ref", "status", "code", "errors"),
    [
        pytest.param({"card": "9999-9999-9999"}, 404, "member_not_found", None, id="unknown-card"),
        pytest.param({"email": "nobody@example.com"}, 404, "member_not_found", None, id="unknown-email"),
        pytest.param({"id": 10**30}, 404, "member_not_found", None, id="huge-id"),
        pytest.param(
            {"card": "400012345678", "email": "jana@example.com"}, 400, "validation_error", EXACTLY_ONE, id="two"
        ),
        pytest.param({"id": 1, "phone": "+420601234567"}, 400, "validation_error", EXACTLY_ONE, id="id-and-phone"),
        pytest.param({}, 400, "validation_error", EXACTLY_ONE, id="none"),
        pytest.param(
            {"name": "Jana"},
            400,
            "unknown_field",
            {"member": {"name": [UNKNOWN_FIELD_MESSAGE]}},
            id="unknown-identifier",
        ),
        pytest.param(
            {"id": 0},
            400,
            "validation_error",
            {"member": {"id": ["Ensure this value is greater than or equal to 1."]}},
            id="zero-id",
        ),
    ],
)
def test_member_must_be_named_once_and_exist(pos_client, buyer, url, member_ref, status, code, errors):
    before = state()

    problem = _assert_rejected(post(pos_client, url, purchase_body(member=member_ref)), status, code, before)

    assert problem.get("errors") == errors


@BOTH_URLS
def test_member_of_another_program_is_not_found(pos_client, other_program, url, buyer):
    stranger = MemberFactory(program=other_program, card="400055556666", email="stranger@example.com")
    before = state()

    for member_ref in ({"id": stranger.pk}, {"card": stranger.card}, {"email": "stranger@example.com"}):
        _assert_rejected(post(pos_client, url, purchase_body(member=member_ref)), 404, "member_not_found", before)


@BOTH_URLS
def test_suspended_member_is_refused(pos_client, buyer, url):
    member_suspend(member=buyer)
    before = state()

    _assert_rejected(post(pos_client, url, purchase_body()), 422, "member_suspended", before)


@BOTH_URLS
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "not_authenticated"),
        ("Api-Key lk_not-a-real-key", "authentication_failed"),
        ("Bearer x", "not_authenticated"),
    ],
)
def test_purchases_need_a_valid_api_key(buyer, url, authorization, code):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    before = state()

    response = post(client, url, purchase_body())

    _assert_rejected(response, 401, code, before)
    assert response["WWW-Authenticate"] == "Api-Key"


def test_rejected_purchase_with_an_idempotency_key_releases_it(pos_client, buyer):
    key = {"HTTP_IDEMPOTENCY_KEY": "retry-after-fix"}
    before = state()

    _assert_rejected(
        post(pos_client, PURCHASES_URL, purchase_body(currency="CZK"), **key), 422, "currency_mismatch", before
    )
    fixed = post(pos_client, PURCHASES_URL, purchase_body(), **key)

    assert fixed.status_code == 201, fixed.content
    assert fixed.json()["points_awarded"] == 73


# --- Returns ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def bought(program, buyer):
    """TILL7-1: BK-1 2 x 300.00, BK-2 400.00 and a 200.00 gift card: 1200.00, 100 points on 1000.00 eligible."""
    lines = [
        line("BK-1", "600.00", "books", quantity=2),
        line("BK-2", "400.00", "books"),
        line("GC-1", "200.00", "gift-cards"),
    ]
    return purchase(buyer, "TILL7-1", lines=lines, occurred_at=OCCURRED).purchase


def _return(client, external_id="RET-1", purchase_external_id="TILL7-1", **fields):
    return post(
        client, RETURNS_URL, {"external_id": external_id, "purchase_external_id": purchase_external_id, **fields}
    )


def test_full_return_reverses_every_point(pos_client, buyer, bought):
    response = _return(pos_client, amount="1200.00")

    assert response.status_code == 201, response.content
    record = Return.objects.get()
    assert response.json() == {
        "id": record.pk,
        "external_id": "RET-1",
        "purchase_external_id": "TILL7-1",
        "member_id": buyer.pk,
        "amount": "1200.00",
        "points_reversed": 100,
        "balances": {"available": 0, "pending": 0, "debt": 0},
        "tier": {"before": None, "after": None},
    }
    bought.refresh_from_db()
    assert (bought.returned_total, bought.points_reversed) == (Decimal("1200.00"), 100)
    assert record.entry.kind == EntryKind.REVERSE and record.entry.amount == -100
    assert balances(buyer) == (0, 0, 0)


def test_partial_returns_by_lines_reverse_in_proportion(pos_client, buyer, bought):
    one_book = _return(pos_client, "RET-1", lines=[{"sku": "BK-1", "quantity": "1", "amount": "300.00"}])
    gift_card = _return(pos_client, "RET-2", lines=[{"sku": "GC-1", "amount": "200.00"}])
    the_rest = _return(
        pos_client,
        "RET-3",
        lines=[{"sku": "BK-1", "quantity": "1", "amount": "300.00"}, {"sku": "BK-2", "amount": "400.00"}],
    )

    assert [r.status_code for r in (one_book, gift_card, the_rest)] == [201, 201, 201], the_rest.content
    assert [r.json()["points_reversed"] for r in (one_book, gift_card, the_rest)] == [30, 0, 70]
    assert [r.json()["balances"]["available"] for r in (one_book, gift_card, the_rest)] == [70, 70, 0]
    assert [r.json()["amount"] for r in (one_book, gift_card, the_rest)] == ["300.00", "200.00", "700.00"]
    lines = dict(PurchaseLine.objects.filter(purchase=bought).values_list("sku", "returned_quantity"))
    assert lines == {"BK-1": Decimal(2), "BK-2": Decimal(0), "GC-1": Decimal(0)}
    assert dict(PurchaseLine.objects.filter(purchase=bought).values_list("sku", "returned_amount")) == {
        "BK-1": Decimal(600),
        "BK-2": Decimal(400),
        "GC-1": Decimal(200),
    }
    bought.refresh_from_db()
    assert (bought.returned_total, bought.points_reversed) == (Decimal(1200), 100)


def test_return_by_amount_reverses_the_eligible_share(pos_client, buyer, bought):
    response = _return(pos_client, amount="600.00")

    # 600.00 of 1200.00 is 500.00 of the 1000.00 eligible: half of 100 points
    assert response.status_code == 201, response.content
    assert (response.json()["points_reversed"], response.json()["balances"]["available"]) == (50, 50)
    assert Return.objects.get().eligible_amount == Decimal("500.00")


def test_returning_a_line_takes_back_what_it_earned_and_the_bonus_the_rest_no_longer_earns(pos_client, program, buyer):
    rule(program, name="BK-1 x2", kind="multiplier", multiplier=Decimal(2), skus="BK-1", priority=200)
    rule(program, name="Big basket", kind="bonus", points=50, min_basket=Decimal(1000), priority=300)
    bought = purchase(
        buyer, "P-9", lines=[line("BK-1", "500.00", "books"), line("BK-2", "500.00", "books")], occurred_at=OCCURRED
    )
    assert bought.points == 50 + 50 + 50 + 50  # base on both lines, BK-1 x2, the bonus

    response = _return(pos_client, purchase_external_id="P-9", lines=[{"sku": "BK-1", "amount": "500.00"}])

    # BK-1 earned 50 base + 50 multiplier; 500.00 left is under the bonus's 1,000.00
    assert response.status_code == 201, response.content
    assert (response.json()["points_reversed"], response.json()["balances"]["available"]) == (150, 50)
    assert Purchase.objects.get(external_id="P-9").points_reversed == 150
    assert Return.objects.get().points_reversed == 150


def test_return_after_the_points_were_spent_makes_debt(pos_client, buyer, bought):
    ledger_debit(member=buyer, amount=80)

    response = _return(pos_client, amount="1200.00")

    assert response.status_code == 201, response.content
    assert response.json()["balances"] == {"available": 0, "pending": 0, "debt": 80}


def test_repeated_return_replays_and_does_nothing(pos_client, buyer, bought):
    first = _return(pos_client, amount="600.00")
    after_first = state()

    again = _return(pos_client, amount="600.00")

    assert (first.status_code, again.status_code) == (201, 200), again.content
    assert again.json() == first.json()
    assert state() == after_first
    assert balances(buyer) == (50, 0, 0)


def test_repeated_return_replays_the_first_answer_with_its_tier_change(pos_client, program, buyer):
    tier(program, "Silver", rank=1, threshold="100")
    tier(program, "Gold", rank=2, threshold="300")
    purchase(buyer, "P-1", lines=[line("BK-1", "1000.00", "books")], occurred_at=OCCURRED)  # 100: Silver
    purchase(buyer, "P-2", lines=[line("BK-1", "2000.00", "books")], occurred_at=OCCURRED)  # 300: Gold
    first = _return(pos_client, purchase_external_id="P-2", amount="2000.00")
    assert first.json()["tier"] == {"before": "Gold", "after": "Silver"}, first.content
    after_first = state()

    again = _return(pos_client, purchase_external_id="P-2", amount="2000.00")

    assert again.status_code == 200
    assert state() == after_first
    # DESIGN.md 3: "a repeat returns the first result" - as purchases do, from what was stored.
    assert again.json() == first.json()


def test_return_with_another_body_under_the_same_id_is_a_conflict(pos_client, buyer, bought):
    _return(pos_client, amount="600.00")
    before = state()

    response = _return(pos_client, amount="500.00")

    _assert_rejected(response, 409, "return_conflict", before)


EITHER = {"non_field_errors": ["Give either returned lines or an amount."]}


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        pytest.param({"purchase_external_id": "TILL7-404", "amount": "1.00"}, 404, "purchase_not_found", id="unknown"),
        pytest.param({"amount": "1200.01"}, 422, "return_exceeds_purchase", id="amount-too-large"),
        pytest.param(
            {"lines": [{"sku": "BK-2", "amount": "400.01"}]}, 422, "return_exceeds_purchase", id="line-amount"
        ),
        pytest.param(
            {"lines": [{"sku": "BK-1", "quantity": "3", "amount": "300.00"}]},
            422,
            "return_exceeds_purchase",
            id="line-quantity",
        ),
        pytest.param(
            {"lines": [{"sku": "BK-2", "amount": "400.00"}, {"sku": "BK-2", "amount": "1.00"}]},
            422,
            "return_exceeds_purchase",
            id="same-line-twice",
        ),
        pytest.param({"lines": [{"sku": "NOPE", "amount": "1.00"}]}, 422, "return_line_not_in_purchase", id="sku"),
        pytest.param(
            {"amount": "100.00", "occurred_at": "2036-12-04T10:00:00+00:00"}, 422, "occurred_at_in_future", id="future"
        ),
        pytest.param(
            {"amount": "100.00", "occurred_at": "2020-01-01T10:00:00+00:00"},
            422,
            "return_before_purchase",
            id="before-purchase",
        ),
    ],
)
def test_returns_the_purchase_cannot_take_are_refused(pos_client, buyer, bought, fields, status, code):
    before = state()

    _assert_rejected(_return(pos_client, **fields), status, code, before)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        pytest.param({"lines": [{"sku": "BK-2", "amount": "100.00"}], "amount": "100.00"}, EITHER, id="both"),
        pytest.param({}, EITHER, id="neither"),
        pytest.param({"lines": []}, EITHER, id="no-lines"),
        pytest.param({"amount": "0.00"}, {"amount"}, id="zero-amount"),
        pytest.param({"amount": "-5.00"}, {"amount"}, id="negative-amount"),
        pytest.param({"amount": "12.345"}, {"amount"}, id="three-decimals"),
        pytest.param({"lines": [{"sku": "BK-2", "amount": "abc"}]}, {"lines"}, id="line-not-a-number"),
        pytest.param({"lines": [{"sku": "BK-2", "quantity": "0", "amount": "1.00"}]}, {"lines"}, id="zero-quantity"),
        pytest.param({"purchase_external_id": ""}, {"purchase_external_id"}, id="blank-purchase"),
    ],
)
def test_malformed_returns_are_validation_errors(pos_client, buyer, bought, fields, errors):
    before = state()

    problem = _assert_rejected(_return(pos_client, **fields), 400, "validation_error", before)

    assert (problem["errors"] if isinstance(errors, dict) else set(problem["errors"])) == errors


def test_return_of_a_purchase_too_large_after_earlier_returns(pos_client, buyer, bought):
    _return(pos_client, "RET-1", amount="1000.00")
    before = state()

    _assert_rejected(_return(pos_client, "RET-2", amount="200.01"), 422, "return_exceeds_purchase", before)
    assert _return(pos_client, "RET-3", amount="200.00").status_code == 201


def test_return_of_another_programs_purchase_is_not_found(other_pos_client, buyer, bought):
    before = state()

    _assert_rejected(_return(other_pos_client, amount="100.00"), 404, "purchase_not_found", before)


def test_returns_need_a_valid_api_key(buyer, bought):
    before = state()

    _assert_rejected(_return(APIClient(), amount="100.00"), 401, "not_authenticated", before)


# --- Custom events ----------------------------------------------------------------------------------------------------


@pytest.fixture
def review_rule(program):
    return rule(program, name="App review", kind="event", event="app_review", points=50, rate=Decimal(0))


def _event(client, event="app_review", external_id="EV-1", member=CARD_REF, **fields):
    return post(client, EVENTS_URL, {"member": dict(member), "event": event, "external_id": external_id, **fields})


def test_custom_event_awards_its_rule(pos_client, buyer, review_rule):
    response = _event(pos_client)

    assert response.status_code == 201, response.content
    assert response.json() == {
        "member_id": buyer.pk,
        "event": "app_review",
        "points_awarded": 50,
        "awards": [{"rule": "App review", "rule_id": review_rule.pk, "points": 50}],
        "balances": {"available": 50, "pending": 0, "debt": 0},
    }
    award = Award.objects.get()
    assert (award.member_id, award.rule_id, award.event, award.points) == (buyer.pk, review_rule.pk, "app_review", 50)
    assert balances(buyer) == (50, 0, 0)


def test_repeated_event_awards_once(pos_client, buyer, review_rule):
    first = _event(pos_client)
    after_first = state()

    again = _event(pos_client, member={"email": "jana@example.com"})

    assert (first.status_code, again.status_code) == (201, 200), again.content
    assert again.json() == first.json()
    assert state() == after_first
    assert _event(pos_client, external_id="EV-2").json()["points_awarded"] == 50
    assert balances(buyer) == (100, 0, 0)


def test_event_id_reused_for_another_event_is_a_conflict(pos_client, buyer, review_rule):
    _event(pos_client)
    before = state()

    _assert_rejected(_event(pos_client, event="newsletter_signup"), 409, "event_conflict", before)


def test_event_nobody_rewards_gives_no_points(pos_client, buyer, review_rule):
    ledger_credit(member=buyer, amount=7)
    before = state()

    response = _event(pos_client, event="store_visit")

    assert response.status_code == 201, response.content
    assert response.json() == {
        "member_id": buyer.pk,
        "event": "store_visit",
        "points_awarded": 0,
        "awards": [],
        "balances": {"available": 7, "pending": 0, "debt": 0},
    }
    assert state() == before


@pytest.mark.parametrize("event", ["signup", "birthday", "referral", "nps_answer"])
def test_a_till_cannot_award_the_engines_own_events_again(pos_client, program, buyer, event):
    """Signup, birthday (once a year), referral and NPS-answer bonuses are posted by the engine itself."""
    bonus = rule(program, name=f"{event} bonus", kind="event", event=event, points=100, rate=Decimal(0))

    responses = [_event(pos_client, event=event, external_id=f"EV-{i}") for i in range(3)]

    assert [(r.status_code, r.json()["code"]) for r in responses] == [(400, "event_reserved")] * 3
    assert not Award.objects.filter(rule=bonus).exists()


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        pytest.param({"event": "App Review"}, {"event"}, id="uppercase-and-space"),
        pytest.param({"event": "review!"}, {"event"}, id="punctuation"),
        pytest.param({"event": ""}, {"event"}, id="blank"),
        pytest.param({"event": "e" * 65}, {"event"}, id="too-long"),
        pytest.param({"external_id": ""}, {"external_id"}, id="blank-external-id"),
        pytest.param({"occurred_at": "soon"}, {"occurred_at"}, id="bad-time"),
        pytest.param({"member": {}}, {"member"}, id="no-member"),
    ],
)
def test_bad_events_are_validation_errors(pos_client, buyer, review_rule, fields, errors):
    body = {"member": CARD_REF, "event": "app_review", "external_id": "EV-1", **fields}
    before = state()

    problem = _assert_rejected(post(pos_client, EVENTS_URL, body), 400, "validation_error", before)

    assert set(problem["errors"]) == errors


@pytest.mark.parametrize(
    ("member_ref", "status", "code"),
    [
        ({"card": "9999-9999-9999"}, 404, "member_not_found"),
        ({"card": "400012345678", "id": 1}, 400, "validation_error"),
    ],
)
def test_event_for_an_unknown_or_ambiguous_member(pos_client, buyer, review_rule, member_ref, status, code):
    before = state()

    _assert_rejected(_event(pos_client, member=member_ref), status, code, before)


def test_event_for_a_suspended_member_is_refused(pos_client, buyer, review_rule):
    member_suspend(member=buyer)
    before = state()

    _assert_rejected(_event(pos_client), 422, "member_suspended", before)


def test_event_for_a_member_of_another_program_is_not_found(other_pos_client, buyer, review_rule):
    before = state()

    _assert_rejected(_event(other_pos_client, member={"id": buyer.pk}), 404, "member_not_found", before)


# --- Tiers ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def tiers(program):
    """Qualifying points (the default metric) over a rolling year: Silver from 100, Gold from 300 (x1.5)."""
    assert program.tier_metric == "qualifying_points"
    silver = tier(program, "Silver", rank=1, threshold="100")
    gold = tier(program, "Gold", rank=2, threshold="300", earn_multiplier=Decimal("1.5"))
    return silver, gold


def _tier_ref(tier_row: Tier) -> dict:
    return {
        "id": tier_row.pk,
        "name": tier_row.name,
        "rank": tier_row.rank,
        "threshold": f"{tier_row.threshold:.2f}",
        "earn_multiplier": f"{tier_row.earn_multiplier:.2f}",
    }


def _spend(client, external_id, amount):
    lines = [{"sku": "BK-1", "category": "books", "quantity": "1", "unit_price": amount, "amount": amount}]
    return post(client, PURCHASES_URL, purchase_body(external_id=external_id, lines=lines))


def test_purchases_crossing_thresholds_promote_at_once(pos_client, buyer, tiers):
    first = _spend(pos_client, "T-1", "1000.00")  # 100 qualifying points
    second = _spend(pos_client, "T-2", "2000.00")  # 300
    third = _spend(pos_client, "T-3", "1000.00")  # Gold earns x1.5 from now on

    assert [r.json()["tier"] for r in (first, second, third)] == [
        {"before": None, "after": "Silver"},
        {"before": "Silver", "after": "Gold"},
        {"before": "Gold", "after": "Gold"},
    ]
    assert third.json()["awards"] == [
        {"rule": "Base rate", "rule_id": EarningRule.objects.get().pk, "points": 100},
        {"rule": "Gold tier x1.5", "rule_id": None, "points": 50},
    ]
    assert third.json()["balances"] == {"available": 450, "pending": 0, "debt": 0}
    assert list(TierHistory.objects.filter(member=buyer).order_by("pk").values_list("to_tier__name", "reason")) == [
        ("Silver", "promotion"),
        ("Gold", "promotion"),
    ]


def test_tier_summary_shows_the_metric_and_what_is_missing(pos_client, buyer, tiers):
    silver, gold = tiers
    _spend(pos_client, "T-1", "1500.00")  # 150 qualifying points: Silver
    started = timezone.now()

    response = pos_client.get(tier_url(buyer.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    account = Account.objects.get(pk=buyer.pk)
    assert account.tier_review_at - account.tier_achieved_at == timedelta(days=365)
    assert when(body["review_at"]) == account.tier_review_at
    assert started - timedelta(days=365, seconds=5) < when(body["window_start"]) <= timezone.now() - timedelta(days=365)
    today = timezone.now().astimezone(buyer.program.tz).date()
    assert body == {
        "tier": _tier_ref(silver),
        "metric": "qualifying_points",
        "metric_value": "150.00",
        "window_start": body["window_start"],
        "next_tier": _tier_ref(gold),
        "missing_for_next": "150.00",
        "missing_to_keep": "0.00",
        "review_at": body["review_at"],
        "pinned_until": None,
        # 150 points in a member's first days count over the 30-day minimum: 5 a day, 30 days to 150 more.
        "metric_pace_per_day": "5.00",
        "next_tier_days": 30,
        "next_tier_date": (today + timedelta(days=30)).isoformat(),
        "keep_days": 0,
        "keep_date": today.isoformat(),
        "keep_on_track": True,
    }


def test_tier_summary_of_a_member_without_a_tier(pos_client, buyer, tiers):
    silver, _ = tiers
    _spend(pos_client, "T-1", "400.00")  # 40 qualifying points

    body = pos_client.get(tier_url(buyer.pk)).json()

    assert (body["tier"], body["metric_value"], body["next_tier"]) == (None, "40.00", _tier_ref(silver))
    assert (body["missing_for_next"], body["missing_to_keep"], body["review_at"]) == ("60.00", None, None)


def test_tier_summary_at_the_top_tier(pos_client, buyer, tiers):
    _, gold = tiers
    _spend(pos_client, "T-1", "3500.00")

    body = pos_client.get(tier_url(buyer.pk)).json()

    assert (body["tier"], body["metric_value"]) == (_tier_ref(gold), "350.00")
    assert (body["next_tier"], body["missing_for_next"], body["missing_to_keep"]) == (None, None, "0.00")


def test_returns_lower_the_metric_and_the_tier(pos_client, buyer, tiers):
    _spend(pos_client, "T-1", "1000.00")
    _spend(pos_client, "T-2", "2000.00")

    response = _return(pos_client, purchase_external_id="T-2", amount="1500.00")

    assert response.status_code == 201, response.content
    assert response.json()["tier"] == {"before": "Gold", "after": "Silver"}
    assert (response.json()["points_reversed"], response.json()["balances"]["available"]) == (150, 150)
    assert pos_client.get(tier_url(buyer.pk)).json()["metric_value"] == "150.00"


def test_tier_summary_of_unknown_members_and_without_a_key(pos_client, other_program, buyer, tiers):
    stranger = MemberFactory(program=other_program)

    for member_id in (stranger.pk, 10**30, "abc"):
        assert_problem(pos_client.get(tier_url(member_id)), 404, "member_not_found")
    assert_problem(APIClient().get(tier_url(buyer.pk)), 401, "not_authenticated")


# --- The contract in the OpenAPI schema ---------------------------------------------------------------------------


@pytest.fixture
def schema(db):
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _component(schema, ref_holder) -> dict:
    ref = ref_holder.get("$ref") or ref_holder["allOf"][0]["$ref"]
    return schema["components"]["schemas"][ref.removeprefix("#/components/schemas/")]


def _request_body(schema, path) -> dict:
    body = schema["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    return _component(schema, body["content"]["application/json"]["schema"])


def _response(schema, path, method, status) -> dict:
    return _component(
        schema, schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    )


def test_schema_documents_the_purchase_contract(schema):
    for path in ("/api/pos/v1/purchases/", "/api/pos/v1/purchases/simulate/"):
        body = _request_body(schema, path)
        assert set(body["properties"]) == {
            "external_id",
            "member",
            "store",
            "channel",
            "occurred_at",
            "currency",
            "total",
            "lines",
        }
        assert set(body["required"]) == {"external_id", "member", "occurred_at", "currency", "total"}
        line = _component(schema, body["properties"]["lines"]["items"])
        assert set(line["properties"]) == {"sku", "category", "quantity", "unit_price", "amount"}
        member = _component(schema, body["properties"]["member"])
        assert [branch["required"] for branch in member["oneOf"]] == [
            ["id"],
            ["card"],
            ["external_id"],
            ["email"],
            ["phone"],
        ]
        params = {p["name"] for p in schema["paths"][path]["post"]["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in params
    record = schema["paths"]["/api/pos/v1/purchases/"]["post"]["responses"]
    assert {"200", "201", "400", "401", "404", "409", "422"} <= set(record)
    out = _response(schema, "/api/pos/v1/purchases/", "post", "201")
    assert set(out["properties"]) >= {
        "id",
        "external_id",
        "member_id",
        "points_awarded",
        "awards",
        "pending_until",
        "balances",
        "tier",
    }
    assert set(_component(schema, out["properties"]["awards"]["items"])["properties"]) == {"rule", "rule_id", "points"}
    assert set(_component(schema, out["properties"]["balances"])["properties"]) == {"available", "pending", "debt"}
    assert set(_component(schema, out["properties"]["tier"])["properties"]) == {"before", "after"}
    assert _response(schema, "/api/pos/v1/purchases/simulate/", "post", "200") == out


def test_schema_documents_returns_events_and_tier(schema):
    returns = _request_body(schema, "/api/pos/v1/returns/")
    assert set(returns["properties"]) == {"external_id", "purchase_external_id", "lines", "amount", "occurred_at"}
    assert set(returns["required"]) == {"external_id", "purchase_external_id"}
    assert set(_component(schema, returns["properties"]["lines"]["items"])["properties"]) == {
        "sku",
        "quantity",
        "amount",
    }
    assert {"points_reversed", "balances", "tier"} <= set(
        _response(schema, "/api/pos/v1/returns/", "post", "201")["properties"]
    )

    events = _request_body(schema, "/api/pos/v1/events/")
    assert set(events["properties"]) == {"member", "event", "external_id", "occurred_at"}
    assert set(events["required"]) == {"member", "event", "external_id"}
    assert events["properties"]["event"]["pattern"] == "^[a-z0-9_.-]{1,64}$"
    assert {"points_awarded", "awards", "balances"} <= set(
        _response(schema, "/api/pos/v1/events/", "post", "201")["properties"]
    )

    tier_get = schema["paths"]["/api/pos/v1/members/{member_id}/tier/"]["get"]
    assert "requestBody" not in tier_get
    summary = _response(schema, "/api/pos/v1/members/{member_id}/tier/", "get", "200")
    assert {"tier", "metric", "metric_value", "next_tier", "missing_for_next", "missing_to_keep", "review_at"} <= set(
        summary["properties"]
    )
