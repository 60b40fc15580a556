"""The till's hot paths against their ORM reference (tests/loyalty/reference.py).

Hypothesis draws a program (rules with caps and a budget, tiers on one of the three metrics, a return window,
expiry), members (one referred) and a sequence of purchases (some sent twice with their Idempotency-Key), returns
and redemptions. The sequence runs once with the hand-written statements and once with the ORM statements they
replaced, each in a savepoint that is then rolled back; every row the sequence wrote (entries, lots, allocations,
awards, purchases and lines, returns, accounts, tier history, outbox events, idempotency records) and every answer
must be the same, and `ledger_audit` clean after each run.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from events.models import OutboxEvent
from loyalty.audit import ledger_audit
from loyalty.models import Account, Allocation, Award, Entry, Lot, Purchase, PurchaseLine, Return, TierHistory
from members.models import IdempotencyRecord
from rewards.services import reward_redeem
from tests.builders import rule, tier
from tests.clients import pos_client_for
from tests.factories import MemberFactory, ProgramFactory, RewardFactory
from tests.loyalty.reference import REFERENCE, orm_reference

SKUS = {"A": "books", "B": "books", "C": "food", "D": "toys"}
# Rules the till's path evaluates: rates, multipliers, bonuses with per-member caps, a first and n-th purchase
# bonus, a budget small enough to run out, a tier's multiplier.
RULES = (
    {"name": "Base", "kind": "base_rate", "rate": Decimal("0.5")},
    {"name": "Books x2", "kind": "multiplier", "multiplier": Decimal(2), "categories": "books"},
    {"name": "Food x1.5", "kind": "multiplier", "multiplier": Decimal("1.5"), "categories": "food",
     "cap_per_member_day": 40},
    {"name": "Basket 100", "kind": "bonus", "points": 20, "min_basket": Decimal(100), "cap_per_member_month": 30},
    {"name": "Welcome", "kind": "bonus", "points": 15, "first_purchase": True},
    {"name": "Third", "kind": "bonus", "points": 25, "nth_purchase": 3},
    {"name": "Toys launch", "kind": "bonus", "points": 30, "skus": "D", "budget_total": 70},
    {"name": "App x2", "kind": "multiplier", "multiplier": Decimal(2), "channels": "app"},
)  # fmt: skip

lines = st.lists(
    st.tuples(st.sampled_from(sorted(SKUS)), st.integers(min_value=1, max_value=30_000)), min_size=0, max_size=4
)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("purchase"),
            st.sampled_from([0, 0, 1, 2]),  # member: often the same one, for the caps
            lines,
            st.sampled_from(["pos", "eshop", "app"]),
            st.sampled_from([0, 1, 2, 3, 27, 28, 200]),  # hours ago: often the same day, for the daily caps
            st.booleans(),  # sent twice
        ),
        st.tuples(st.just("return"), st.integers(min_value=0, max_value=9), st.sampled_from(["line", "half", "all"])),
        st.tuples(st.just("redeem"), st.integers(min_value=0, max_value=2)),
    ),
    min_size=1,
    max_size=9,
)
programs = st.fixed_dictionaries(
    {
        # The base rate and the capped rules always, others drawn.
        "rules": st.sets(st.integers(min_value=0, max_value=len(RULES) - 1)).map(lambda drawn: drawn | {0, 2, 3}),
        "tier_metric": st.sampled_from(["qualifying_points", "spend", "purchases"]),
        "pending_days": st.sampled_from([0, 14]),
        "expiry_policy": st.sampled_from(["never", "days"]),
    }
)


def _program(spec: dict[str, Any]):
    program = ProgramFactory(
        currency="EUR",
        tier_metric=spec["tier_metric"],
        pending_days=spec["pending_days"],
        expiry_policy=spec["expiry_policy"],
        expiry_period=30,
    )
    tiers = [tier(program, "Silver", rank=1, threshold=2), tier(program, "Gold", rank=2, threshold=400)]
    for index in sorted(spec["rules"]):
        rule(program, **RULES[index])
    rule(program, name="Gold toys", kind="multiplier", multiplier=Decimal(3), categories="toys", tiers=tiers[1:])
    first = MemberFactory(program=program)
    members = [first, MemberFactory(program=program), MemberFactory(program=program, referred_by=first)]
    reward = RewardFactory(program=program, points_cost=50)
    return program, members, reward


def _purchase_body(member, external_id: str, basket, channel: str, hours_ago: int) -> dict[str, Any]:
    body_lines = [
        {"sku": sku, "category": SKUS[sku], "quantity": "1", "unit_price": (money := f"{cents / 100:.2f}"),
         "amount": money}
        for sku, cents in basket
    ]  # fmt: skip
    total = sum((Decimal(line["amount"]) for line in body_lines), Decimal(0)) if body_lines else Decimal("42.50")
    occurred_at = timezone.now() - timedelta(hours=hours_ago, minutes=1)
    return {
        "external_id": external_id,
        "member": {"card": member.card} if hours_ago % 2 else {"id": member.pk},
        "channel": channel,
        "occurred_at": occurred_at.isoformat(),
        "currency": "EUR",
        "total": str(total),
        **({"lines": body_lines} if body_lines else {}),
    }


def _run(program, members, reward, steps) -> list[Any]:
    """The sequence through the integration API (and the redemption service); the answers."""
    client = pos_client_for(program)
    answers: list[Any] = []
    bought: list[dict[str, Any]] = []
    for n, step in enumerate(steps):
        if step[0] == "purchase":
            _, who, basket, channel, hours_ago, twice = step
            body = _purchase_body(members[who], f"P-{n}", basket, channel, hours_ago)
            for _ in range(2 if twice else 1):
                response = client.post("/api/pos/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY=f"K-{n}")
                answers.append((response.status_code, _without_ids(response.json())))
            if response.status_code in (200, 201):
                bought.append(body)
        elif step[0] == "return" and bought:
            _, which, how = step
            body = bought[which % len(bought)]
            returned: dict[str, Any] = {"external_id": f"R-{n}", "purchase_external_id": body["external_id"]}
            if how == "line" and body.get("lines"):
                first = body["lines"][0]
                returned["lines"] = [{"sku": first["sku"], "amount": first["amount"]}]
            else:
                total = Decimal(body["total"])
                returned["amount"] = str(total if how == "all" else (total / 2).quantize(Decimal("0.01")) or total)
            response = client.post("/api/pos/v1/returns/", returned, format="json")
            answers.append((response.status_code, _without_ids(response.json())))
        elif step[0] == "redeem":
            try:
                with transaction.atomic():
                    result = reward_redeem(member=members[step[1]], reward=reward)
                answers.append(("redeemed", result.entry.amount))
            except Exception as exc:  # what the member is told: not enough points, say
                answers.append(("refused", type(exc).__name__))
    return answers


def _without_ids(body: Any) -> Any:
    """An answer without the new rows' ids (sequences move on after a rollback); they are compared as rows."""
    return {key: value for key, value in body.items() if key != "id"} if isinstance(body, dict) else body


# The rows the sequence writes, with the columns that differ between two runs by nature left out: new rows'
# ids (compared by their order instead), clocks of the write itself, random event ids.
TABLES: tuple[tuple[type[Model], tuple[str, ...]], ...] = (
    (Entry, ("created_at",)),
    (Lot, ()),
    (Allocation, ()),
    (Award, ("created_at",)),
    (Purchase, ("created_at",)),
    (PurchaseLine, ()),
    (Return, ("created_at",)),
    (TierHistory, ("created_at",)),
    (OutboxEvent, ("event_id", "created_at")),
)
LINKS = {"entry_id": Entry, "lot_id": Lot, "counterpart_id": Entry, "purchase_id": Purchase}


def _snapshot(program, members) -> dict[str, Any]:
    member_ids = [m.pk for m in members]
    found: dict[str, Any] = {}
    order: dict[type[Model], dict[int, int]] = {}
    for model, skipped in TABLES:
        rows = list(model._default_manager.filter(member_id__in=member_ids).order_by("pk").values())
        order[model] = {row["id"]: n for n, row in enumerate(rows)}
        found[model.__name__] = rows, skipped
    snapshot: dict[str, Any] = {}
    for name, (rows, skipped) in found.items():
        snapshot[name] = [
            {
                key: (order[LINKS[key]].get(value) if key in LINKS and value is not None else value)
                for key, value in row.items()
                if key != "id" and key not in skipped
            }
            for row in rows
        ]
    for event in snapshot["OutboxEvent"]:  # a voucher's code is drawn at random, its id from a sequence
        event["data"] = {key: value for key, value in event["data"].items() if key not in ("code", "voucher_id")}
    snapshot["accounts"] = list(Account.objects.filter(pk__in=member_ids).order_by("pk").values())
    for account in snapshot["accounts"]:
        account.pop("updated_at")
    snapshot["idempotency"] = list(
        IdempotencyRecord.objects.filter(key__startswith="K-")
        .order_by("key")
        .values("scope", "key", "state", "response_status", "response_body")
    )
    for record in snapshot["idempotency"]:
        record["response_body"] = _without_ids(record["response_body"])
    return snapshot


def _rolled_back(program, members, reward, steps, now) -> tuple[list[Any], dict[str, Any], list[Any]]:
    """The sequence run at the moment `now` (the clock stands still, so both runs see the same times)."""
    with mock.patch.object(timezone, "now", lambda: now), transaction.atomic():
        answers = _run(program, members, reward, steps)
        rows = _snapshot(program, members)
        mismatches = ledger_audit(program=program)
        transaction.set_rollback(True)
    return answers, rows, mismatches


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a database sequence shrinks too slowly to be worth it
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=programs, steps=operations)
def test_the_hand_written_path_writes_and_answers_what_the_orm_reference_does(spec, steps):
    now = timezone.now()
    with transaction.atomic():
        program, members, reward = _program(spec)
        fast = _rolled_back(program, members, reward, steps, now)
        with orm_reference() as swapped:
            reference = _rolled_back(program, members, reward, steps, now)
        transaction.set_rollback(True)

    assert swapped >= len(REFERENCE)  # every hand-written function had its twin in place
    assert fast[0] == reference[0]  # the answers
    assert fast[1] == reference[1]  # the rows
    assert fast[2] == reference[2] == []  # ledger_audit


@pytest.mark.django_db
def test_the_reference_is_really_swapped_in():
    """The differential test compares two different implementations: under `orm_reference()` the account lock is
    the ORM's statement (`SELECT "loyalty_account"...`), otherwise the hand-written one (`SELECT a."member_id"`)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from loyalty.services.accounts import lock_accounts

    member = MemberFactory()
    with CaptureQueriesContext(connection) as fast, transaction.atomic():
        lock_accounts([member])
    with orm_reference(), CaptureQueriesContext(connection) as orm, transaction.atomic():
        lock_accounts([member])
    fast_lock = next(q["sql"] for q in fast.captured_queries if '"members_program"' in q["sql"])
    orm_lock = next(q["sql"] for q in orm.captured_queries if '"members_program"' in q["sql"])
    assert fast_lock.startswith('SELECT a."member_id"') and orm_lock.startswith('SELECT "loyalty_account"')
