"""Returns: each returned line gives back what it earned, and bonuses the rest no longer earns.

What a return takes back follows from the purchase's award rows, which record
what each rule gave and on what (`loyalty.reversals` has the rules). Reversals
are cumulative: after each return the purchase has given back, in all, what
`points_reversed_in_all` says for everything returned so far, so several
partial returns never add up to more than the purchase gave, and to all of it
once everything is returned. The reversal consumes the purchase's own lot
first, even while it is still pending; when those points were already spent,
the rest becomes debt.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.rows import instance_insert, row_update
from events.outbox import EventType, event_emit
from events.payloads.common import BalancesData
from events.payloads.points import points_reversed_payload
from loyalty.exceptions import (
    PurchaseNotFound,
    ReturnBeforePurchase,
    ReturnConflict,
    ReturnExceedsPurchase,
    ReturnLineNotInPurchase,
)
from loyalty.models import Account, Award, EntryKind, Purchase, PurchaseLine, Return
from loyalty.reversals import Returned, points_reversed_in_all
from loyalty.rules import Award as RuleAward
from loyalty.services.accounts import lock_accounts
from loyalty.services.awards import award_from_row
from loyalty.services.ledger import debit_locked
from loyalty.services.purchases import occurred_at_check
from loyalty.services.tiers import TierChange, tier_recheck_after_return
from members.models import Member, Program

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
    balances: BalancesData
    tier: dict[str, str | None]
    replayed: bool = False


def _match_lines(
    remaining: list[PurchaseLine], lines: tuple[ReturnLineInput, ...]
) -> tuple[list[PurchaseLine], Decimal]:
    """Books each returned line against a purchase line with that SKU (changing `remaining` in
    memory); returns the changed purchase lines and the eligible part of the returned money."""
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


def _line_left(line: PurchaseLine) -> Decimal:
    """The part of the line not returned: by amount, or by quantity for a line that cost nothing."""
    if line.amount > 0:
        return (line.amount - line.returned_amount) / line.amount
    return (line.quantity - line.returned_quantity) / line.quantity


def _awards(purchase: Purchase, lines: list[PurchaseLine]) -> list[RuleAward]:
    """The purchase's awards with what they were given for. Awards recorded before their basis
    was kept give back in proportion to the eligible lines, as returns did then."""
    if purchase.entry_id is None:
        return []
    eligible = tuple(line.amount if line.eligible else Decimal(0) for line in lines)
    return [
        award_from_row(row)
        if "lines" in row.basis or row.rule_id is None
        else replace(award_from_row(row), line_shares=eligible)
        for row in Award.objects.filter(member_id=purchase.member_id, entry_id=purchase.entry_id)
    ]


def _points_to_reverse(purchase: Purchase, lines: list[PurchaseLine], returned_total: Decimal) -> int:
    """What this return takes back: the purchase's reversal in all after it, less earlier returns'."""
    returned = Returned(
        total=purchase.total,
        returned_total=returned_total,
        line_money=sum((line.returned_amount for line in lines), Decimal(0)),
        lines_left=tuple(_line_left(line) for line in lines),
    )
    target = min(points_reversed_in_all(_awards(purchase, lines), returned), purchase.points_awarded)
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
    purchase_lines = list(purchase.lines.order_by("position"))
    changed, eligible = _match_lines(purchase_lines, lines) if lines else ([], _eligible_share(purchase, money))
    eligible = min(eligible, purchase.eligible_amount - purchase.returned_eligible)
    points = _points_to_reverse(purchase, purchase_lines, purchase.returned_total + money)
    occurred_at_check(occurred_at, what="return")
    now = occurred_at or timezone.now()
    if now < purchase.occurred_at:
        raise ReturnBeforePurchase(f"The purchase was made at {purchase.occurred_at.isoformat()}.")
    entry = None
    if points:
        entry = debit_locked(
            account=account,
            kind=EntryKind.REVERSE,
            amount=points,
            key=f"return:{external_id}",
            allow_debt=True,
            prefer_lots=[purchase.entry.lot.pk] if purchase.entry else [],
            occurred_at=now,  # the reversal is dated with its return (analytics as of a moment read the ledger)
            details={"purchase": purchase.external_id, "return": external_id},
        )
    Purchase.objects.filter(pk=purchase.pk).update(
        returned_total=F("returned_total") + money,
        returned_eligible=F("returned_eligible") + eligible,
        points_reversed=F("points_reversed") + points,
    )
    for line in changed:
        row_update(
            PurchaseLine,
            line.pk,
            sets={"returned_amount": line.returned_amount, "returned_quantity": line.returned_quantity},
        )
    change: TierChange = tier_recheck_after_return(account=account, purchase=purchase, now=timezone.now())
    tier = {
        "before": change.before.name if change.before else None,
        "after": change.after.name if change.after else None,
    }
    record = Return(
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
        outcome={"balances": account.balances, "tier": tier},
    )
    instance_insert(record)
    if points:
        event_emit(
            program_id=program.pk,
            member_id=account.pk,
            type=EventType.POINTS_REVERSED,
            occurred_at=now,
            data=points_reversed_payload(
                member_id=account.pk,
                points=points,
                purchase_external_id=purchase.external_id,
                return_external_id=external_id,
                amount=money,
                debt_added=entry.uncovered if entry else 0,
                balances=account.balances,
            ),
        )
    return ReturnResult(record=record, member=account.member, balances=account.balances, tier=tier)


def _line_json(line: ReturnLineInput) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "amount": str(line.amount),
        "quantity": str(line.quantity) if line.quantity is not None else None,
    }
