"""Returns: points reversed in proportion to the returned eligible amount.

Reversals are cumulative: after each return the purchase should have lost
floor(points awarded x returned eligible / eligible amount) points in all (all
of them once everything is returned), so several partial returns add up to
exactly the whole, and no return can take back more than the purchase gave.
The reversal consumes the purchase's own lot first, even while it is still
pending; when those points were already spent, the rest becomes debt.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from members.events import EventType, event_emit
from members.models import Member, Program

from ..exceptions import PurchaseNotFound, ReturnConflict, ReturnExceedsPurchase, ReturnLineNotInPurchase
from ..models import Account, EntryKind, Purchase, PurchaseLine, Return
from .ledger import debit_locked, lock_accounts
from .tiers import TierChange, tier_recheck_after_return

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ReturnLineInput:
    sku: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass
class ReturnResult:
    record: Return
    member: Member
    balances: dict[str, int]
    tier: dict[str, str | None]
    replayed: bool = False


def _match_lines(purchase: Purchase, lines: tuple[ReturnLineInput, ...]) -> tuple[list[PurchaseLine], Decimal]:
    """Books each returned line against a purchase line with that SKU; returns the changed
    purchase lines and the eligible part of the returned money."""
    remaining = list(purchase.lines.all())
    eligible = Decimal(0)
    changed: dict[int, PurchaseLine] = {}
    for returned in lines:
        line = next(
            (
                p
                for p in remaining
                if p.sku == returned.sku
                and p.returned_amount + returned.amount <= p.amount
                and (returned.quantity is None or p.returned_quantity + returned.quantity <= p.quantity)
            ),
            None,
        )
        if line is None:
            if not any(p.sku == returned.sku for p in remaining):
                raise ReturnLineNotInPurchase(f"The purchase has no line with SKU {returned.sku}.")
            raise ReturnExceedsPurchase(f"More of {returned.sku} is returned than was bought.")
        line.returned_amount += returned.amount
        line.returned_quantity += returned.quantity if returned.quantity is not None else Decimal(0)
        eligible += returned.amount if line.eligible else Decimal(0)
        changed[line.pk] = line
    return list(changed.values()), eligible


def _eligible_share(purchase: Purchase, amount: Decimal) -> Decimal:
    """A return by amount only: the eligible part in the purchase's own proportion."""
    if purchase.total == 0:
        return Decimal(0)
    return (amount * purchase.eligible_amount / purchase.total).quantize(CENT, rounding=ROUND_FLOOR)


def _points_to_reverse(purchase: Purchase, returned_total: Decimal, returned_eligible: Decimal) -> int:
    if returned_total >= purchase.total or returned_eligible >= purchase.eligible_amount > 0:
        target = purchase.points_awarded
    elif purchase.eligible_amount == 0:
        target = 0
    else:
        target = int(purchase.points_awarded * returned_eligible // purchase.eligible_amount)
    return max(0, target - purchase.points_reversed)


def _replay(existing: Return, purchase: Purchase, amount: Decimal, account: Account) -> ReturnResult:
    if existing.purchase_id != purchase.pk or existing.amount != amount:
        raise ReturnConflict(f"Return {existing.external_id} was recorded with other details.")
    return ReturnResult(
        record=existing,
        member=account.member,
        balances=existing.outcome["balances"],
        tier=existing.outcome["tier"],
        replayed=True,
    )


def _balances(account: Account) -> dict[str, int]:
    return {"available": account.available, "pending": account.pending, "debt": account.debt}


@transaction.atomic
def return_record(
    *,
    program: Program,
    external_id: str,
    purchase_external_id: str,
    lines: tuple[ReturnLineInput, ...] = (),
    amount: Decimal | None = None,
    occurred_at: datetime | None = None,
) -> ReturnResult:
    """Records a return of lines (matched by SKU) or of an amount, and reverses its points."""
    found = Purchase.objects.filter(program=program, external_id=purchase_external_id).select_related("member").first()
    if found is None:
        raise PurchaseNotFound(f"No purchase {purchase_external_id} in this program.")
    account = lock_accounts([found.member])[found.member_id]
    purchase = Purchase.objects.select_related("entry__lot").get(pk=found.pk)  # fresh, now that the member is locked
    money = sum((line.amount for line in lines), Decimal(0)) if lines else (amount or Decimal(0))
    existing = Return.objects.filter(program=program, external_id=external_id).first()
    if existing is not None:
        return _replay(existing, purchase, money, account)
    if purchase.returned_total + money > purchase.total:
        raise ReturnExceedsPurchase(f"At most {purchase.total - purchase.returned_total} is left to return.")
    changed, eligible = _match_lines(purchase, lines) if lines else ([], _eligible_share(purchase, money))
    eligible = min(eligible, purchase.eligible_amount - purchase.returned_eligible)
    points = _points_to_reverse(purchase, purchase.returned_total + money, purchase.returned_eligible + eligible)
    now = occurred_at or timezone.now()
    entry = None
    if points:
        entry = debit_locked(
            account=account,
            kind=EntryKind.REVERSE,
            amount=points,
            key=f"return:{external_id}",
            allow_debt=True,
            prefer_lots=[purchase.entry.lot.pk] if purchase.entry else [],
            details={"purchase": purchase.external_id, "return": external_id},
        )
    Purchase.objects.filter(pk=purchase.pk).update(
        returned_total=F("returned_total") + money,
        returned_eligible=F("returned_eligible") + eligible,
        points_reversed=F("points_reversed") + points,
    )
    PurchaseLine.objects.bulk_update(changed, ["returned_amount", "returned_quantity"])
    change: TierChange = tier_recheck_after_return(account=account, purchase=purchase, now=timezone.now())
    tier = {
        "before": change.before.name if change.before else None,
        "after": change.after.name if change.after else None,
    }
    record = Return.objects.create(
        program=program,
        member=account.member,
        purchase=purchase,
        external_id=external_id,
        amount=money,
        eligible_amount=eligible,
        points_reversed=points,
        entry=entry,
        occurred_at=now,
        lines=[_line_json(line) for line in lines],
        outcome={"balances": _balances(account), "tier": tier},
    )
    if points:
        event_emit(
            program_id=program.pk,
            member_id=account.pk,
            type=EventType.POINTS_REVERSED,
            occurred_at=now,
            data={
                "member_id": account.pk,
                "points": points,
                "purchase": purchase.external_id,
                "return": external_id,
                "amount": money,
                "debt_added": entry.uncovered if entry else 0,
                "balances": _balances(account),
            },
        )
    return ReturnResult(record=record, member=account.member, balances=_balances(account), tier=tier)


def _line_json(line: ReturnLineInput) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "amount": str(line.amount),
        "quantity": str(line.quantity) if line.quantity is not None else None,
    }
