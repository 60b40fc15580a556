"""The member's account: its lock (the one every ledger write takes first) and its cached balances.

Several accounts are locked in primary-key order, so two writers locking the same pair cannot deadlock.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import BigIntegerField, F, Q, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

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


def lock_accounts_by_id(member_ids: Iterable[int]) -> dict[int, Account]:
    """Locks existing accounts in primary-key order (the one lock order everywhere)."""
    rows = Account.objects.select_for_update(of=("self",)).select_related("member", "member__program")
    return {account.pk: account for account in rows.filter(pk__in=sorted(member_ids)).order_by("pk")}


def lock_account_where(*, program: Program, member_filter: dict[str, object], condition: Q) -> Account | None:
    """Locks the account of the program's member that `member_filter` (Member field lookups)
    names, if it exists and `condition` (on the account) holds, reading account, member and
    program in one statement, as `lock_accounts_by_id` does. One account only: a caller that
    needs another one locked too uses `lock_accounts` (primary-key order)."""
    member_filter = {f"member__{lookup}": value for lookup, value in member_filter.items()}
    rows = Account.objects.select_for_update(of=("self",)).select_related("member", "member__program")
    return rows.filter(condition, member__program=program, **member_filter).first()


def apply_deltas(account: Account, **deltas: int) -> None:
    """Moves the cached balances by `deltas`, in the database and on `account`."""
    deltas = {field: delta for field, delta in deltas.items() if delta}
    if not deltas:
        return
    Account.objects.filter(pk=account.pk).update(
        updated_at=timezone.now(), **{field: plus(field, delta) for field, delta in deltas.items()}
    )
    for field, delta in deltas.items():
        setattr(account, field, getattr(account, field) + delta)


def merge_deltas(*parts: dict[str, int]) -> dict[str, int]:
    """The balance moves of `parts` added up, field by field."""
    total: dict[str, int] = defaultdict(int)
    for part in parts:
        for field, delta in part.items():
            total[field] += delta
    return total
