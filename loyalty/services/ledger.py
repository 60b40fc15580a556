"""Every write to the points ledger goes through these functions: credits, debits, adjustments, transfers.

Each one runs in a transaction that first locks the member's `Account` row
(several accounts: in primary-key order, so two transfers in opposite
directions cannot deadlock). Everything after the lock sees the latest
committed state of that member, which is what makes concurrent writers,
retries and idempotency keys safe. The lock and the balances live in
`loyalty.services.accounts`; which lots a debit consumes, and debt paid
from a new lot, in `loyalty.services.allocation`.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.rows import instance_insert, row_update, rows_insert
from loyalty.exceptions import AmountTooLarge, InsufficientPoints, InvalidAmount, TransferNotAllowed
from loyalty.models import MAX_POINTS_PER_ENTRY, Account, Allocation, Entry, EntryKind, Lot, lifetime_deltas
from loyalty.services.accounts import apply_deltas, ensure_active, lock_accounts, merge_deltas
from loyalty.services.allocation import allocate, debit_deltas, settle_debt, spendable_lots
from members.exceptions import IdempotencyKeyReused
from members.models import Member

_DEFAULT: Any = object()  # "use the program's policy", distinct from an explicit None
ALLOCATION_COLUMNS = ("member_id", "entry_id", "lot_id", "amount", "created_at")  # as _post_debit writes them


def points_check(amount: int, *, field: str = "points") -> None:
    """The one amount guard of the ledger: every credit and debit a caller asks for passes here.
    InvalidAmount (400) for anything but a whole number from 1, AmountTooLarge (422) past the maximum."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        raise InvalidAmount(f"Points must be a whole number from 1 to {MAX_POINTS_PER_ENTRY}.", field=field)
    if amount > MAX_POINTS_PER_ENTRY:
        raise AmountTooLarge(
            f"{amount} points is more than the {MAX_POINTS_PER_ENTRY} one ledger entry may hold.",
            field=field,
            maximum=MAX_POINTS_PER_ENTRY,
        )


def _replayed(*, member: Member, key: str | None, kind: str, amount: int) -> Entry | None:
    """The entry already posted under `key`, or None. A key names one write only."""
    if key is None:
        return None
    entry = Entry.objects.filter(program_id=member.program_id, key=key).first()
    if entry is None:
        return None
    if (entry.member_id, entry.kind, entry.amount) != (member.pk, kind, amount):
        raise IdempotencyKeyReused()
    entry.replayed = True  # type: ignore[attr-defined]
    return entry


def credit_locked(
    *,
    account: Account,
    kind: str,
    amount: int,
    occurred_at: datetime,
    available_at: datetime,
    expires_at: datetime | None,
    key: str | None = None,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    counterpart: Entry | None = None,
    extra_deltas: dict[str, int] | None = None,
    entry_id: int | None = None,
    lot_id: int | None = None,
) -> Entry:
    """Writes a credit and its lot, paying debt first, for services that hold the account's lock.
    `extra_deltas` move other account counters (a purchase count) in the same update. `entry_id` and `lot_id`,
    taken from their sequences beforehand (config.rows.next_id_sql), let the writes go without reading back."""
    points_check(amount)
    member = account.member
    entry = Entry(
        pk=entry_id,
        program_id=member.program_id,
        member=member,
        kind=kind,
        amount=amount,
        key=key,
        occurred_at=occurred_at,
        actor=actor,
        reason=reason,
        details=details or {},
        counterpart=counterpart,
    )
    instance_insert(entry)
    pending = available_at > timezone.now()
    lot = Lot(
        pk=lot_id,
        program_id=member.program_id,
        member=member,
        entry=entry,
        amount=amount,
        remaining=amount,
        pending=pending,
        occurred_at=occurred_at,
        available_at=available_at,
        expires_at=expires_at,
    )
    instance_insert(lot)
    paid = settle_debt(account, lot) if account.debt else 0
    balance = "pending" if pending else "available"
    apply_deltas(
        account,
        **merge_deltas({balance: lot.remaining, "debt": -paid}, lifetime_deltas(kind, amount), extra_deltas or {}),
    )
    entry.lot_created = lot  # type: ignore[attr-defined]
    return entry


@transaction.atomic
def ledger_credit(
    *,
    member: Member,
    amount: int,
    kind: str = EntryKind.EARN,
    key: str | None = None,
    occurred_at: datetime | None = None,
    available_at: datetime | None = None,
    expires_at: datetime | None = _DEFAULT,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Entry:
    """Adds a lot of `amount` points. Debt, if any, is paid from it first.

    `available_at` defaults to `occurred_at` (spendable at once); `expires_at`
    defaults to the program's expiry policy.
    """
    points_check(amount)
    account = lock_accounts([member])[member.pk]
    if replay := _replayed(member=member, key=key, kind=kind, amount=amount):
        return replay
    member = account.member
    if kind != EntryKind.ADJUST:
        ensure_active(member)
    occurred_at = occurred_at or timezone.now()
    return credit_locked(
        account=account,
        kind=kind,
        amount=amount,
        key=key,
        occurred_at=occurred_at,
        available_at=available_at or occurred_at,
        expires_at=member.program.expires_at_for(occurred_at) if expires_at is _DEFAULT else expires_at,
        actor=actor,
        reason=reason,
        details=details,
    )


def settle_due_lots(account: Account, now: datetime) -> None:
    """Before a debit: pending lots whose return window has passed become spendable, and lots past
    their expiry date are expired (one entry), so a debit never spends points that are gone.
    One query finds both; normally it finds nothing."""
    due = list(
        Lot.objects.filter(member_id=account.pk)
        .filter(Q(pending=True, available_at__lte=now) | Q(remaining__gt=0, expires_at__lte=now))
        .order_by("pk")
    )
    ripe = [lot for lot in due if lot.pending and lot.available_at <= now]
    if ripe:
        Lot.objects.filter(pk__in=[lot.pk for lot in ripe]).update(pending=False)
        points = sum(lot.remaining for lot in ripe)
        apply_deltas(account, pending=-points, available=points)
        for lot in ripe:
            lot.pending = False
    expired = [lot for lot in due if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now]
    if expired:
        _post_debit(
            account=account,
            kind=EntryKind.EXPIRE,
            amount=sum(lot.remaining for lot in expired),
            takes=[(lot, lot.remaining) for lot in expired],
            occurred_at=now,
        )


def _post_debit(
    *,
    account: Account,
    kind: str,
    amount: int,
    takes: list[tuple[Lot, int]],
    occurred_at: datetime,
    key: str | None = None,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Entry:
    """Writes a debit of `amount` consuming `takes`; what they leave uncovered becomes debt."""
    member = account.member
    covered = sum(take for _, take in takes)
    entry = Entry(
        program_id=member.program_id,
        member=member,
        kind=kind,
        amount=-amount,
        uncovered=amount - covered,
        key=key,
        occurred_at=occurred_at,
        actor=actor,
        reason=reason,
        details=details or {},
    )
    instance_insert(entry)
    now = timezone.now()
    rows_insert(Allocation, ALLOCATION_COLUMNS, [(member.pk, entry.pk, lot.pk, take, now) for lot, take in takes])
    for lot, take in takes:
        lot.remaining -= take
        row_update(Lot, lot.pk, sets={"remaining": lot.remaining})
    apply_deltas(account, **debit_deltas(kind=kind, amount=amount, takes=takes))
    entry.allocated = takes  # type: ignore[attr-defined]
    return entry


@transaction.atomic
def ledger_debit(
    *,
    member: Member,
    amount: int,
    kind: str = EntryKind.REDEEM,
    key: str | None = None,
    allow_debt: bool = False,
    prefer_lots: Sequence[int] = (),
    occurred_at: datetime | None = None,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Entry:
    """Takes `amount` points from the member's lots, soonest-expiring first.

    Without `allow_debt` a debit larger than the available balance fails with
    `insufficient_points`. With it (returns, corrections) the shortfall
    becomes debt. `prefer_lots` are consumed first, even while pending: a
    return takes back the purchase's own points before any others.
    """
    points_check(amount)
    account = lock_accounts([member])[member.pk]
    if replay := _replayed(member=member, key=key, kind=kind, amount=-amount):
        return replay
    if kind in (EntryKind.REDEEM, EntryKind.TRANSFER_OUT):
        ensure_active(account.member)
    return debit_locked(
        account=account,
        kind=kind,
        amount=amount,
        key=key,
        allow_debt=allow_debt,
        prefer_lots=prefer_lots,
        occurred_at=occurred_at,
        actor=actor,
        reason=reason,
        details=details,
    )


def debit_locked(
    *,
    account: Account,
    kind: str,
    amount: int,
    key: str | None = None,
    allow_debt: bool = False,
    prefer_lots: Sequence[int] = (),
    occurred_at: datetime | None = None,
    actor: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> Entry:
    """The debit itself, for services that already hold the account's lock."""
    points_check(amount)
    # Posting history in time order (imports, the demo) passes occurred_at: lots are then
    # judged as they stood at that moment. Never later than now.
    now = min(occurred_at, timezone.now()) if occurred_at else timezone.now()
    settle_due_lots(account, now)
    if not allow_debt and amount > account.available:
        raise InsufficientPoints(
            f"{amount} points requested, {account.available} available.",
            available=account.available,
            requested=amount,
        )
    takes = allocate(spendable_lots(account, now, prefer_lots), amount)
    return _post_debit(
        account=account,
        kind=kind,
        amount=amount,
        takes=takes,
        occurred_at=now,
        key=key,
        actor=actor,
        reason=reason,
        details=details,
    )


def ledger_adjust(
    *,
    member: Member,
    points: int,
    reason: str,
    actor: Any,
    key: str | None = None,
    allow_debt: bool = False,
) -> Entry:
    """A manager's correction: who, when and why are kept on the entry."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("A reason is required for a manual adjustment.", field="reason")
    if actor is None:
        raise InvalidAmount("A manual adjustment needs the manager who makes it.", field="actor")
    if points > 0:
        return ledger_credit(member=member, amount=points, kind=EntryKind.ADJUST, key=key, actor=actor, reason=reason)
    return ledger_debit(
        member=member,
        amount=-points if isinstance(points, int) else points,
        kind=EntryKind.ADJUST,
        key=key,
        allow_debt=allow_debt,
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def ledger_transfer(
    *, source: Member, target: Member, amount: int, key: str | None = None, actor: Any = None, reason: str = ""
) -> tuple[Entry, list[Entry]]:
    """Moves available points between two members of one program.

    Each source lot consumed becomes a lot of the target with the same expiry,
    so a transfer cannot extend the life of points.
    """
    points_check(amount)
    if source.pk == target.pk or source.program_id != target.program_id:
        raise TransferNotAllowed()
    accounts = lock_accounts([source, target])
    if replay := _replayed(member=source, key=key, kind=EntryKind.TRANSFER_OUT, amount=-amount):
        return replay, list(Entry.objects.filter(counterpart=replay).order_by("pk"))
    source_account, target_account = accounts[source.pk], accounts[target.pk]
    ensure_active(source_account.member)
    ensure_active(target_account.member)
    out = ledger_debit(
        member=source_account.member,
        amount=amount,
        kind=EntryKind.TRANSFER_OUT,
        key=key,
        actor=actor,
        reason=reason,
        details={"to_member": target.pk},
    )
    now = timezone.now()
    received = [
        credit_locked(
            account=target_account,
            kind=EntryKind.TRANSFER_IN,
            amount=take,
            occurred_at=now,
            available_at=now,
            expires_at=lot.expires_at,
            actor=actor,
            reason=reason,
            counterpart=out,
            details={"from_member": source.pk, "from_lot": lot.pk},
        )
        for lot, take in out.allocated  # type: ignore[attr-defined]
    ]
    return out, received
