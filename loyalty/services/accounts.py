"""The member's account: its lock (the one every ledger write takes first) and its cached balances.

Several accounts are locked in primary-key order, so two writers locking the same pair cannot deadlock.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, cast

from django.db import connection, models
from django.db.models import BigIntegerField, F, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from config.rows import models_from_row, quote, row_update, rows_select, select_columns
from loyalty.models import Account
from members.exceptions import MemberClosed, MemberSuspended
from members.models import Member, MemberStatus, Program


def plus(field: str, delta: int) -> CombinedExpression:
    """`field + delta` for an UPDATE, with `delta` sent as a bigint. Django binds a bare int as an
    integer (4 bytes) when PostgreSQL binds parameters on the server (DB_PREPARED_STATEMENTS): a delta
    past 2^31 would wrap there."""
    return F(field) + Value(delta, output_field=BigIntegerField())


def ensure_active(member: Member) -> None:
    if member.status == MemberStatus.SUSPENDED:
        raise MemberSuspended()
    if member.status == MemberStatus.CLOSED:
        raise MemberClosed()


def lock_accounts(members: Iterable[Member]) -> dict[int, Account]:
    """Locks the accounts of `members` in primary-key order, creating missing ones.

    The lock is on the fixed account row, never on a ledger row: that row
    does not move, so two writers can never both read the same balance.
    """
    by_id = {member.pk: member for member in members}
    accounts = lock_accounts_by_id(by_id)
    if len(accounts) < len(by_id):
        missing = [Account(member_id=pk, program_id=m.program_id) for pk, m in by_id.items() if pk not in accounts]
        Account.objects.bulk_create(missing, ignore_conflicts=True)
        accounts = lock_accounts_by_id(by_id)
    return accounts


@cache
def _lock_sql(vendor: str, where: str) -> str:
    """The account lock, reading account, member and program in one statement (hand-written: the busiest
    statement of the till's calls, config.rows)."""
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {select_columns(vendor, Account, 'a')}, {select_columns(vendor, Member, 'm')}, "
        f"{select_columns(vendor, Program, 'p')} FROM {quote(Account._meta.db_table)} a "
        f"JOIN {quote(Member._meta.db_table)} m ON m.id = a.member_id "
        f"JOIN {quote(Program._meta.db_table)} p ON p.id = m.program_id WHERE {where} ORDER BY a.member_id{lock}"
    )


def _locked(where: str, params: Sequence[Any]) -> list[Account]:
    accounts = []
    for row in rows_select(_lock_sql(connection.vendor, where), params):
        account, member, program = models_from_row(row, Account, Member, Program)
        member._state.fields_cache["program"] = program
        account._state.fields_cache["member"] = member
        accounts.append(account)
    return accounts


def lock_accounts_by_id(member_ids: Iterable[int]) -> dict[int, Account]:
    """Locks existing accounts in primary-key order (the one lock order everywhere)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    accounts = _locked(f"a.member_id IN ({', '.join(['%s'] * len(ids))})", ids)
    return {account.pk: account for account in accounts}


def lock_buyer_account(*, program: Program, field: str, value: object) -> Account | None:
    """Locks the account of the program's member whose `field` (one of LOOKUP_FIELDS, value normalised by
    `member_lookup`) is `value`, unless the member was referred and has not bought yet (their first purchase
    needs the referrer's account too: `lock_accounts`); reads account, member and program in one statement,
    as `lock_accounts_by_id` does."""
    column = quote(cast("models.Field[Any, Any]", Member._meta.get_field(field)).column)
    where = f"m.program_id = %s AND m.{column} = %s AND (m.referred_by_id IS NULL OR a.purchases > 0)"
    accounts = _locked(where, [program.pk, value])
    return accounts[0] if accounts else None


BALANCE_COLUMNS = ("available", "pending", "debt", "earned", "redeemed", "expired", "purchases")


def apply_deltas(account: Account, **deltas: int) -> None:
    """Moves the cached balances by `deltas`, in the database and on `account` (one statement text for any
    deltas: every balance column moves, most by zero)."""
    deltas = {field: delta for field, delta in deltas.items() if delta}
    if not deltas:
        return
    if unknown := set(deltas) - set(BALANCE_COLUMNS):
        raise ValueError(f"not balance columns of an account: {sorted(unknown)}")
    now = timezone.now()
    row_update(
        Account, account.pk, sets={"updated_at": now}, adds={name: deltas.get(name, 0) for name in BALANCE_COLUMNS}
    )
    account.updated_at = now
    for field, delta in deltas.items():
        setattr(account, field, getattr(account, field) + delta)


def merge_deltas(*parts: dict[str, int]) -> dict[str, int]:
    """The balance moves of `parts` added up, field by field."""
    total: dict[str, int] = defaultdict(int)
    for part in parts:
        for field, delta in part.items():
            total[field] += delta
    return total
