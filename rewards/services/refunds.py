"""Giving spent points back to the lots they came from: one place for cancelled vouchers
and released or expired holds."""

from datetime import datetime
from typing import Any

from loyalty.models import Account, Allocation, Entry, EntryKind
from loyalty.services.ledger import credit_locked


def refund_allocations(
    *,
    account: Account,
    entry_id: int,
    key_prefix: str,
    now: datetime,
    reason: str,
    details: dict[str, Any],
    actor: Any = None,
) -> list[Entry]:
    """Gives back each lot the debit `entry_id` consumed as a refund lot with that lot's dates, so
    a refund cannot extend the life of points. A lot whose expiry has passed meanwhile is credited
    all the same and the expiry job takes it (its dates keep the lot's CHECK true).

    The caller holds the account's lock. Keys are `<key_prefix>:<lot id>`, unique per program,
    so a second refund of the same debit fails on the constraint instead of paying twice.
    """
    allocations = Allocation.objects.filter(member_id=account.pk, entry_id=entry_id)
    return [
        credit_locked(
            account=account,
            kind=EntryKind.REFUND,
            amount=allocation.amount,
            occurred_at=allocation.lot.occurred_at,
            available_at=now,
            expires_at=allocation.lot.expires_at,
            key=f"{key_prefix}:{allocation.lot_id}",
            actor=actor,
            reason=reason,
            details={**details, "from_lot": allocation.lot_id},
        )
        for allocation in allocations.select_related("lot").order_by("pk")
    ]
