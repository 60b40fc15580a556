"""What a purchase costs the database, asserted: the statements and the client-server round trips of
`POST purchases/` with an Idempotency-Key, the same with one earning rule or twenty (docs/benchmarks.md,
"Accrual"). Counted on PostgreSQL from libpq's protocol trace: the client waits for the server after each
simple-protocol Query, each Sync (a pipeline of several statements ends in one) and each Flush (a pipeline's
statement whose result is read before the pipeline ends)."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import pq

from tests.builders import rule
from tests.clients import pos_client_for
from tests.factories import MemberFactory, ProgramFactory

pytestmark = pytest.mark.postgres

# The statements of a purchase that earns points, in order (config.rows, loyalty.services.purchases).
STATEMENTS = [
    "INSERT members_idempotencyrecord",  # the key, first: a copy of the request waits on it
    "SELECT loyalty_account",  # the member found and the account locked (with member and program)
    "SELECT",  # after the lock: a replay? the tier metric, the capped rules' use, the new rows' keys
    "INSERT loyalty_entry",  # then the writes, sent together:
    "INSERT loyalty_lot",
    "UPDATE loyalty_account",
    "INSERT loyalty_award",
    "INSERT members_outboxevent",
    "INSERT loyalty_purchase",
    "INSERT loyalty_purchaseline",
    "UPDATE members_idempotencyrecord",  # the answer kept for replays
]
# BEGIN, the key, the lock, the read, the writes (one pipeline), the answer, COMMIT.
ROUND_TRIPS = 7


def waits(messages: list[str]) -> int:
    """The client's waits for the server in its protocol messages: after a simple Query, a Sync, and the Flush
    of a pipeline that needs a result before its end (psycopg's Flush right after a Sync waits for nothing more)."""
    return sum(
        kind in ("Query", "Sync") or kind == "Flush" and (n == 0 or messages[n - 1] != "Sync")
        for n, kind in enumerate(messages)
    )


@contextmanager
def round_trips() -> Iterator[list[int]]:
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    counted = [0]
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield counted
        finally:
            pgconn.untrace()
        trace.seek(0)
        counted[0] = waits(
            [
                line.rstrip("\n").split("\t")[2].split(" ")[0]
                for line in trace
                if line.startswith("F\t") and line.count("\t") >= 2
            ]
        )


def _summary(sql: str) -> str:
    verb, rest = sql.split(None, 1)
    table = rest.split('"')[1] if verb in ("INSERT", "UPDATE") else ""
    if verb == "SELECT" and 'FROM "loyalty_account"' in sql:
        table = "loyalty_account"
    return f"{verb} {table}".strip()


def _purchase(client, member, external_id: str):
    body = {
        "external_id": external_id,
        "member": {"card": member.card},
        "occurred_at": "2026-01-05T10:00:00+01:00",
        "currency": "EUR",
        "total": "120.00",
        "lines": [
            {"sku": "A", "category": "books", "quantity": "1", "unit_price": "100.00", "amount": "100.00"},
            {"sku": "B", "category": "food", "quantity": "2", "unit_price": "10.00", "amount": "20.00"},
        ],
    }
    with CaptureQueriesContext(connection) as captured, round_trips() as trips:
        response = client.post("/api/pos/v1/purchases/", body, format="json", HTTP_IDEMPOTENCY_KEY=external_id)
    assert response.status_code == 201, response.content
    statements = [_summary(q["sql"]) for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    return statements, trips[0]


@pytest.fixture
def kept_connection():
    """One connection for the whole test, as a server keeps it (CONN_MAX_AGE): the trace follows one."""
    connection.close()
    max_age = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = None
    yield
    connection.settings_dict["CONN_MAX_AGE"] = max_age
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_purchase_takes_eleven_statements_in_seven_round_trips_whatever_the_rules(kept_connection):
    program = ProgramFactory(currency="EUR")
    rule(program, name="Base", rate=Decimal(1))
    client = pos_client_for(program)
    first, second = MemberFactory(program=program), MemberFactory(program=program)
    for member in (first, second):  # their accounts made by a first purchase
        _purchase(client, member, f"first-{member.pk}")

    with_one_rule = _purchase(client, first, "one-rule")
    for n in range(19):
        rule(program, name=f"Promo {n}", kind="multiplier", multiplier=Decimal(2), skus=f"PROMO-{n}")
    rule(program, name="Books capped", kind="multiplier", multiplier=Decimal(2), categories="books",
         cap_per_member_day=500)  # fmt: skip
    _purchase(client, second, "rules-compiled")  # the program's new rule set, read once (loyalty.ruleset)
    with_twenty_rules = _purchase(client, second, "twenty-rules")

    assert with_one_rule == with_twenty_rules == (STATEMENTS, ROUND_TRIPS)
