"""Checks every invariant of the ledger with a handful of set-based queries.

For every member: credits - debits = available + pending - debt, and each
cached balance and lifetime total equals what the entries and lots say.
For every lot: remaining = amount - its allocations. For every debit:
|amount| = its allocations + uncovered. For every credit: exactly one lot of
the same amount. Allocations stay within one member. For every purchase: its
points are its entry's amount and its reversals the sum of its returns'.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import TypeVar

from django.db.models import Case, F, IntegerField, Manager, Model, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from loyalty.models import Account, Allocation, Entry, Lot, Purchase, lifetime_deltas
from members.models import Program

BALANCE_FIELDS = ("available", "pending", "debt", "earned", "redeemed", "expired")


@dataclass(frozen=True)
class Mismatch:
    check: str
    member_id: int | None
    expected: object
    actual: object
    detail: str = ""

    def __str__(self) -> str:
        where = f"member #{self.member_id}" if self.member_id is not None else "ledger"
        return f"{where}: {self.check}: expected {self.expected}, found {self.actual} {self.detail}".rstrip()


_M = TypeVar("_M", bound=Model)


def _scoped(queryset: QuerySet[_M] | Manager[_M], program: Program | None) -> QuerySet[_M]:
    return queryset.filter(program=program) if program is not None else queryset.all()


def _sum(expression) -> Coalesce:
    return Coalesce(Sum(expression), Value(0), output_field=IntegerField())


def _expected_balances(program: Program | None) -> dict[int, dict[str, int]]:
    """What each member's account should hold, recomputed from entries and lots."""
    expected: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BALANCE_FIELDS, 0))
    for row in _scoped(Lot.objects, program).values("member_id", "pending").annotate(points=_sum("remaining")):
        expected[row["member_id"]]["pending" if row["pending"] else "available"] += row["points"]
    by_sign = Case(When(amount__gt=0, then=Value(1)), default=Value(-1))
    rows = (
        _scoped(Entry.objects, program)
        .values("member_id", "kind", sign=by_sign)
        .annotate(points=_sum("amount"), uncovered=_sum("uncovered"))
    )
    for row in rows:
        balances = expected[row["member_id"]]
        balances["debt"] += row["uncovered"]
        for name, delta in lifetime_deltas(row["kind"], row["points"]).items():
            balances[name] += delta
    return expected


def _account_mismatches(program: Program | None) -> list[Mismatch]:
    expected = _expected_balances(program)
    net = dict(
        _scoped(Entry.objects, program).values("member_id").annotate(n=_sum("amount")).values_list("member_id", "n")
    )
    accounts = {a.pk: a for a in _scoped(Account.objects, program)}
    problems = []
    for member_id in sorted(set(expected) | set(accounts) | set(net)):
        account = accounts.get(member_id)
        if account is None:
            problems.append(Mismatch("account exists", member_id, "an account", "none"))
            continue
        should = expected[member_id]
        for name in BALANCE_FIELDS:
            if getattr(account, name) != should[name]:
                problems.append(Mismatch(f"cached {name}", member_id, should[name], getattr(account, name)))
        balance = account.available + account.pending - account.debt
        if net.get(member_id, 0) != balance:
            problems.append(
                Mismatch("credits - debits = available + pending - debt", member_id, net.get(member_id, 0), balance)
            )
    return problems


def _row_mismatches(program: Program | None) -> list[Mismatch]:
    problems = []
    lots = _scoped(Lot.objects, program).annotate(used=_sum("allocations__amount"))
    for lot in lots.filter(~Q(remaining=F("amount") - F("used"))).values(
        "pk", "member_id", "amount", "used", "remaining"
    ):
        problems.append(
            Mismatch(
                "lot remaining = amount - allocations",
                lot["member_id"],
                lot["amount"] - lot["used"],
                lot["remaining"],
                f"(lot #{lot['pk']})",
            )
        )
    debits = _scoped(Entry.objects, program).filter(amount__lt=0).annotate(used=_sum("allocations__amount"))
    for entry in debits.filter(~Q(amount=-F("used") - F("uncovered"))).values(
        "pk", "member_id", "amount", "used", "uncovered"
    ):
        problems.append(
            Mismatch(
                "debit = allocations + uncovered",
                entry["member_id"],
                -entry["amount"],
                entry["used"] + entry["uncovered"],
                f"(entry #{entry['pk']})",
            )
        )
    credits = _scoped(Entry.objects, program).filter(amount__gt=0)
    for credit in credits.filter(Q(lot__isnull=True) | ~Q(lot__amount=F("amount"))).values("pk", "member_id", "amount"):
        problems.append(
            Mismatch(
                "credit has one lot of its amount",
                credit["member_id"],
                credit["amount"],
                "no such lot",
                f"(entry #{credit['pk']})",
            )
        )
    allocations = Allocation.objects.filter(~Q(member_id=F("lot__member_id")) | ~Q(member_id=F("entry__member_id")))
    if program is not None:
        allocations = allocations.filter(entry__program=program)
    for allocation in allocations.values("pk", "member_id"):
        problems.append(
            Mismatch(
                "allocation within one member",
                allocation["member_id"],
                "same member",
                "another member",
                f"(allocation #{allocation['pk']})",
            )
        )
    return problems


def _purchase_mismatches(program: Program | None) -> list[Mismatch]:
    """A purchase's points are its entry's amount, and its reversals are the sum of its returns'."""
    purchases = _scoped(Purchase.objects, program).annotate(reversed_by_returns=_sum("returns__points_reversed"))
    wrong = purchases.filter(
        ~Q(points_reversed=F("reversed_by_returns"))
        | (Q(entry__isnull=True) & ~Q(points_awarded=0))
        | (Q(entry__isnull=False) & ~Q(points_awarded=F("entry__amount")))
    )
    return [
        Mismatch(
            "purchase points = entry, reversals = returns",
            row["member_id"],
            f"{row['points_awarded']} awarded, {row['reversed_by_returns']} reversed by returns",
            f"{row['points_reversed']} reversed",
            f"(purchase {row['external_id']})",
        )
        for row in wrong.values("member_id", "external_id", "points_awarded", "points_reversed", "reversed_by_returns")
    ]


def ledger_audit(*, program: Program | None = None) -> list[Mismatch]:
    """Every broken invariant of the ledger, for one program or all of them."""
    return _row_mismatches(program) + _purchase_mismatches(program) + _account_mismatches(program)
