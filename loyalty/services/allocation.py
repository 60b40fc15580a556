"""How points move between lots: which lots a debit consumes, in which order, and how that moves the
balances; a new lot paying the member's debt. The caller holds the account's lock (`loyalty.services.accounts`).
"""

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from django.db.models import F

from loyalty.models import Account, Allocation, Entry, Lot, lifetime_deltas
from loyalty.services.accounts import merge_deltas, plus


def settle_debt(account: Account, lot: Lot) -> int:
    """Pays the member's debt, oldest first, out of a new lot. Returns the points paid."""
    paid = 0
    owed = Entry.objects.filter(member_id=account.pk, uncovered__gt=0).order_by("id")
    for debit in owed:
        take = min(debit.uncovered, lot.remaining - paid)
        Allocation.objects.create(member_id=account.pk, entry=debit, lot=lot, amount=take)
        Entry.objects.filter(pk=debit.pk).update(uncovered=plus("uncovered", -take))
        paid += take
        if paid == lot.remaining:
            break
    if paid:
        Lot.objects.filter(pk=lot.pk).update(remaining=plus("remaining", -paid))
        lot.remaining -= paid
    return paid


def spendable_lots(account: Account, now: datetime, prefer: Sequence[int]) -> Iterator[Lot]:
    """Lots in the order a debit consumes them: the preferred ones (pending or
    not), then soonest expiry first, never-expiring last, ties by age.

    Read in growing pages (the account lock keeps them still): most debits need
    one or two lots, and a plain query is one round trip where a cursor is several."""
    live = Lot.objects.filter(member_id=account.pk, remaining__gt=0).exclude(expires_at__lte=now)
    if prefer:
        yield from live.filter(pk__in=prefer).order_by("pk")
    ordered = live.filter(pending=False).exclude(pk__in=prefer)
    ordered = ordered.order_by(F("expires_at").asc(nulls_last=True), "occurred_at", "pk")
    start, size = 0, 20
    while page := list(ordered[start : start + size]):
        yield from page
        start, size = start + size, size * 4


def allocate(lots: Iterable[Lot], amount: int) -> list[tuple[Lot, int]]:
    """What a debit of `amount` takes from each of `lots`, in their order; less in all when they run out."""
    takes: list[tuple[Lot, int]] = []
    needed = amount
    for lot in lots:
        take = min(lot.remaining, needed)
        takes.append((lot, take))
        needed -= take
        if needed == 0:
            break
    return takes


def debit_deltas(*, kind: str, amount: int, takes: Sequence[tuple[Lot, int]]) -> dict[str, int]:
    """How a debit of `amount` consuming `takes` moves the account's balances."""
    covered = sum(take for _, take in takes)
    from_pending = sum(take for lot, take in takes if lot.pending)
    balances = {"available": from_pending - covered, "pending": -from_pending, "debt": amount - covered}
    return merge_deltas(balances, lifetime_deltas(kind, -amount))
