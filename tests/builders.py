"""Test data made by the real services, as a till, the app or a manager makes it: the ledger's rows (accounts, lots,
entries, allocations), the purchase's awards and the outbox events are written as in production.

Rows without rules of their own come from tests/factories.py; a rule or tier made here goes through its service
(via the factory) so the program's ruleset is recompiled.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from loyalty.models import EarningRule, Entry, Tier
from loyalty.services.ledger import ledger_adjust, ledger_credit
from loyalty.services.purchases import LineInput, PurchaseInput, PurchaseResult, purchase_record
from loyalty.services.returns import ReturnLineInput, ReturnResult, return_record
from members.models import Member, Program
from members.selectors import MemberRef
from rewards.models import Reward
from rewards.services import RedemptionResult, reward_redeem
from tests.factories import EarningRuleFactory, ProgramFactory, StaffFactory, TierFactory

Money = Decimal | str | int


# --- Rules and tiers ---------------------------------------------------------------------------


def rule(program: Program, *, tiers: Iterable[Tier] | None = None, **fields: Any) -> EarningRule:
    """An earning rule saved by earning_rule_save: "Base rate", 0.1 point per currency unit, unless `fields` say
    otherwise (a rule of another kind has no rate unless given one)."""
    return EarningRuleFactory(program=program, tiers=tiers, **fields)


def tier(program: Program, name: str, *, rank: int, threshold: Money = 0, **fields: Any) -> Tier:
    """A tier saved by tier_save."""
    return TierFactory(program=program, name=name, rank=rank, threshold=Decimal(threshold), **fields)


def tiered_program(**settings: Any) -> tuple[Program, dict[str, Tier]]:
    """An EUR program giving 1 point per EUR, with tiers Silver from 100 and Gold from 500 (x1.5) on its tier metric
    (qualifying points unless `settings` say otherwise); returns the program and its tiers by name."""
    program = ProgramFactory(currency="EUR", **settings)
    rule(program, name="Base", rate=Decimal(1))
    tiers = {
        name: tier(program, name, rank=rank, threshold=threshold, earn_multiplier=Decimal(multiplier))
        for name, rank, threshold, multiplier in [("Silver", 1, 100, "1"), ("Gold", 2, 500, "1.5")]
    }
    return program, tiers


# --- Purchases and returns ---------------------------------------------------------------------


def line(sku: str = "X", amount: Money = "100.00", category: str = "", quantity: Money = 1) -> LineInput:
    """A basket line of `quantity` units costing `amount` in all."""
    amount, quantity = Decimal(amount), Decimal(quantity)
    return LineInput(sku=sku, category=category, quantity=quantity, unit_price=amount / quantity, amount=amount)


def purchase_data(
    external_id: str = "P-1",
    total: Money | None = None,
    *,
    lines: Iterable[LineInput] = (),
    occurred_at: datetime | None = None,
    currency: str = "EUR",
    **fields: Any,
) -> PurchaseInput:
    """What a till sends: the total defaults to the sum of the lines, the time to now."""
    lines = tuple(lines)
    return PurchaseInput(
        external_id=external_id,
        occurred_at=occurred_at or timezone.now(),
        currency=currency,
        total=Decimal(total) if total is not None else sum((item.amount for item in lines), Decimal(0)),
        lines=lines,
        **fields,
    )


def purchase(
    member: Member | MemberRef,
    external_id: str = "P-1",
    total: Money | None = None,
    *,
    program: Program | None = None,
    currency: str | None = None,
    **fields: Any,
) -> PurchaseResult:
    """A purchase recorded by purchase_record (points, awards, tier, events), in the program's currency unless told
    otherwise; `fields` go to purchase_data (lines, occurred_at, store, channel)."""
    program = program or member.program
    data = purchase_data(external_id, total, currency=currency or program.currency, **fields)
    return purchase_record(program=program, member=member, data=data)


def return_line(sku: str, amount: Money, quantity: Money | None = None) -> ReturnLineInput:
    return ReturnLineInput(
        sku=sku, amount=Decimal(amount), quantity=Decimal(quantity) if quantity is not None else None
    )


def return_(
    program: Program,
    purchase_external_id: str,
    external_id: str | None = None,
    *,
    amount: Money | None = None,
    lines: Iterable[ReturnLineInput] = (),
    occurred_at: datetime | None = None,
) -> ReturnResult:
    """A return recorded by return_record (of lines, or of an amount), `R-<purchase>` unless named."""
    return return_record(
        program=program,
        external_id=external_id or f"R-{purchase_external_id}",
        purchase_external_id=purchase_external_id,
        lines=tuple(lines),
        amount=Decimal(amount) if amount is not None else None,
        occurred_at=occurred_at,
    )


# --- Points and rewards ------------------------------------------------------------------------


def fund(member: Member, amount: int, *, expires_in_days: int | None = None, age_days: int = 1) -> Entry:
    """A lot of `amount` points earned `age_days` ago, expiring `expires_in_days` from now (None: never)."""
    now = timezone.now()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
    return ledger_credit(
        member=member, amount=amount, occurred_at=now - timedelta(days=age_days), expires_at=expires_at
    )


def adjust(member: Member, points: int, *, reason: str = "Correction", actor: Any = None, **fields: Any) -> Entry:
    """A manager's adjustment by ledger_adjust (by a new manager unless `actor` is given)."""
    return ledger_adjust(member=member, points=points, reason=reason, actor=actor or StaffFactory(), **fields)


def redeem(member: Member, reward: Reward, *, key: str | None = None) -> RedemptionResult:
    """A redemption by reward_redeem: the points spent, a voucher issued."""
    return reward_redeem(member=member, reward=reward, key=key)
