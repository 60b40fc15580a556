"""One batch of valid rows, written in the caller's transaction.

What `purchase_record` does for one purchase, done for thousands: the members'
accounts are locked once (primary-key order), the rules are evaluated in
memory with what each member's context would be at that point (purchases so
far, tier, capped rules' awards of the day and month, budgets left), and the
rows are written with a handful of bulk inserts and one account update.
Members in debt, referred members before their first purchase and their
referrers go through `purchase_record` itself, in their place in time: paying
debt and referral bonuses touch other rows (old debits, the referrer) and are rare.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from django.db import IntegrityError, transaction

from loyalty.exceptions import AmountTooLarge
from loyalty.imports.posting import Posting
from loyalty.imports.rows import ImportRow, RowError
from loyalty.models import Account, Purchase
from members.models import Member, MemberStatus, Program
from members.services.members import members_create_bulk

CREATE_ATTEMPTS = 3


@dataclass
class BatchOutcome:
    imported: int = 0
    skipped: int = 0  # imported before (same purchase id)
    points: int = 0
    members_created: int = 0
    errors: list[RowError] = field(default_factory=list)


def _not_imported(program: Program, rows: list[ImportRow], outcome: BatchOutcome) -> list[ImportRow]:
    ids = [row.data.external_id for row in rows]
    done = set(Purchase.objects.filter(program=program, external_id__in=ids).values_list("external_id", flat=True))
    outcome.skipped += len(done)
    return [row for row in rows if row.data.external_id not in done]


def _members_found(program: Program, customers: Iterable[str]) -> dict[str, Member]:
    found = Member.objects.filter(program=program, external_id__in=list(customers))
    # Found by external id: none is None.
    return {
        cast(str, m.external_id): m for m in found.only("pk", "program_id", "external_id", "status", "referred_by_id")
    }


def _first_seen(rows: Iterable[ImportRow]) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for row in rows:
        if row.customer not in first or row.data.occurred_at < first[row.customer]:
            first[row.customer] = row.data.occurred_at
    return first


def _members(program: Program, rows: list[ImportRow], outcome: BatchOutcome) -> dict[str, Member]:
    """The rows' members, created as needed, enrolled at their first purchase in the batch.
    A member enrolled meanwhile by a till makes the insert fail: look up again and retry."""
    first = _first_seen(rows)
    for attempt in range(CREATE_ATTEMPTS):
        members = _members_found(program, first)
        missing = {customer: when for customer, when in first.items() if customer not in members}
        if not missing:
            return members
        try:
            with transaction.atomic():
                created = members_create_bulk(program=program, enrolled=missing)
        except IntegrityError:
            if attempt == CREATE_ATTEMPTS - 1:
                raise
            continue
        outcome.members_created += len(created)
        return members | {cast(str, m.external_id): m for m in created}  # created with one
    raise AssertionError("unreachable")


def _earning(rows: list[ImportRow], members: dict[str, Member], outcome: BatchOutcome) -> list[ImportRow]:
    """Suspended and closed members cannot earn: their rows are refused, as a till's would be.
    Rows of customers not in `members` (new ones) are kept."""
    kept = []
    for row in rows:
        member = members.get(row.customer)
        if member is None or member.status == MemberStatus.ACTIVE:
            kept.append(row)
        else:
            outcome.errors.append(RowError(row.line, f"member {row.customer} is {member.status}", row.raw))
    return kept


def batch_check(
    *, program: Program, rows: list[ImportRow], award_points: bool, new_customers: set[str]
) -> BatchOutcome:
    """A dry run of `batch_import`: what it would import, skip and refuse; writes nothing.
    `new_customers` (members the dry run would have created in earlier batches) grows."""
    outcome = BatchOutcome()
    rows = _not_imported(program, rows, outcome)
    members = _members_found(program, {row.customer for row in rows})
    if award_points:
        rows = _earning(rows, members, outcome)
    new = {row.customer for row in rows} - set(members) - new_customers
    new_customers |= new
    outcome.members_created = len(new)
    outcome.imported = len(rows)
    return outcome


def batch_import(*, program: Program, rows: list[ImportRow], award_points: bool, now: datetime) -> BatchOutcome:
    """Imports valid `rows`: skips those imported before, creates missing members, and records
    the others in time order, with points by the current rules when `award_points`."""
    outcome = BatchOutcome()
    rows = _not_imported(program, rows, outcome)
    members = _members(program, rows, outcome)
    if award_points:
        rows = _earning(rows, members, outcome)
    if not rows:
        return outcome
    rows.sort(key=lambda row: (row.data.occurred_at, row.line))
    member_ids = {row.customer: members[row.customer].pk for row in rows}
    accounts = _lock(program, [members[customer] for customer in member_ids])
    slow = _one_by_one(accounts, members, set(member_ids)) if award_points else set()
    posting = Posting(
        program=program,
        accounts={pk: accounts[pk] for customer, pk in member_ids.items() if customer not in slow},
        rows=[row for row in rows if row.customer not in slow],
        award_points=award_points,
        now=now,
    )
    for row in rows:
        try:
            if row.customer in slow:
                posting.record(members[row.customer], row)
            else:
                posting.add(member_ids[row.customer], row)
        except AmountTooLarge as error:  # more points than one ledger entry may hold: nothing written
            outcome.errors.append(RowError(row.line, error.detail, row.raw))
            continue
        outcome.imported += 1
    posting.save()
    outcome.points += posting.points
    return outcome


def _lock(program: Program, members: list[Member]) -> dict[int, Account]:
    """The members' accounts, and their referrers' (a first purchase may pay them a bonus),
    locked in primary-key order as `lock_accounts` locks them, without reading members and
    programs along; missing accounts are created and locked after."""
    ids = sorted({m.pk for m in members} | {m.referred_by_id for m in members if m.referred_by_id})
    locked = Account.objects.select_for_update().order_by("pk")
    accounts = {a.pk: a for a in locked.filter(pk__in=ids)}
    if len(accounts) < len(ids):  # members without an account yet (new ones)
        missing = [Account(member_id=pk, program_id=program.pk) for pk in ids if pk not in accounts]
        Account.objects.bulk_create(missing, batch_size=2_000, ignore_conflicts=True)
        accounts |= {a.pk: a for a in locked.filter(pk__in=[a.member_id for a in missing])}
    for member in members:
        member.program = program  # what `_tier_change` reads, without a query
        accounts[member.pk].member = member
    return accounts


def _one_by_one(accounts: dict[int, Account], members: dict[str, Member], customers: set[str]) -> set[str]:
    """Customers whose purchases go through `purchase_record`: members in debt (a credit pays
    old debits first), referred members without purchases (the first one pays both sides'
    referral bonuses), and those referrers (their balances move in between)."""
    slow = set()
    for customer in customers:
        member = members[customer]
        account = accounts[member.pk]
        if account.debt > 0 or (member.referred_by_id and account.purchases == 0):
            slow.add(customer)
    referrers = {members[customer].referred_by_id for customer in slow}
    return slow | {customer for customer in customers if members[customer].pk in referrers}
