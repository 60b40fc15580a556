"""Points as payment: an e-shop holds points against a basket, then captures or releases them.

Creating a hold debits the points at once (a `redeem` entry), so held points
leave `available` and cannot be spent twice. Capturing keeps that debit;
releasing, or the expiry of a forgotten hold, gives the points back to the
lots they came from, with their original expiry (as cancelling a voucher does).

Locks: the member's account first, then the hold row, on every path. A
release racing with the expiry job serialises on the account; whoever comes
second finds the hold no longer `held` and gives nothing back twice.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loyalty.exceptions import InvalidAmount
from loyalty.models import Account, EntryKind
from loyalty.services.ledger import (
    debit_locked,
    ensure_active,
    lock_accounts,
    lock_accounts_by_id,
    points_check,
)
from members.exceptions import IdempotencyKeyReused
from members.models import Member, Program

from ..exceptions import HoldExceedsShare, HoldNotActive, PointsPaymentUnavailable
from ..models import Hold, HoldStatus
from .refunds import refund_allocations

CENT = Decimal("0.01")
MAX_BASKET_SHARE = Decimal("0.30")  # default; settings.REWARDS_MAX_POINTS_SHARE overrides it
HOLD_TTL_MINUTES = 30
EXPIRE_BATCH = 500


@dataclass
class HoldResult:
    hold: Hold
    balances: dict[str, int]
    replayed: bool = False


def max_points_share() -> Decimal:
    """The largest share of a basket points may pay (0.30 = 30 %)."""
    return Decimal(str(getattr(settings, "REWARDS_MAX_POINTS_SHARE", MAX_BASKET_SHARE)))


def points_money_value(program: Program, points: int) -> Decimal:
    """What `points` pay, in the program's currency: rounded down to cents, once, here, so
    points never pay more than they are worth."""
    return (points * program.point_value).quantize(CENT, rounding=ROUND_DOWN)


def _balances(account: Account) -> dict[str, int]:
    return {"available": account.available, "pending": account.pending, "debt": account.debt}


def _validate(points: int, basket_amount: Decimal) -> None:
    points_check(points)  # the ledger's guard, before the account is locked
    if basket_amount <= 0:
        raise InvalidAmount("The basket amount must be above zero.", field="basket_amount")


def _check_share(program: Program, points: int, basket_amount: Decimal) -> None:
    """Refuses (never silently caps) points worth more than the share of the basket."""
    if program.point_value <= 0:
        raise PointsPaymentUnavailable()
    share = max_points_share()
    limit = share * basket_amount
    if points * program.point_value > limit:
        max_points = int(limit / program.point_value)
        raise HoldExceedsShare(
            f"At most {max_points} points ({share:.0%} of the basket) can pay for this basket.",
            max_points=max_points,
            max_share=str(share),
        )


def _replay(
    account: Account, key: str, basket_reference: str, basket_amount: Decimal, points: int
) -> HoldResult | None:
    hold = Hold.objects.filter(program_id=account.program_id, key=key).first()
    if hold is None:
        return None
    if (hold.member_id, hold.basket_reference, hold.basket_amount, hold.points) != (
        account.pk,
        basket_reference,
        basket_amount,
        points,
    ):
        raise IdempotencyKeyReused()
    return HoldResult(hold=hold, balances=_balances(account), replayed=True)


@transaction.atomic
def hold_create(
    *,
    member: Member,
    basket_reference: str,
    basket_amount: Decimal,
    points: int,
    key: str | None = None,
    ttl_minutes: int = HOLD_TTL_MINUTES,
) -> HoldResult:
    """Holds `points` of the member against a basket: they leave `available` at once.

    Errors: invalid_amount, member_suspended/member_closed, points_payment_unavailable,
    hold_exceeds_share, insufficient_points. `key` makes a retry return the first hold.
    """
    _validate(points, basket_amount)
    account = lock_accounts([member])[member.pk]
    if key is not None and (replay := _replay(account, key, basket_reference, basket_amount, points)):
        return replay
    member = account.member
    ensure_active(member)
    _check_share(member.program, points, basket_amount)
    entry = debit_locked(
        account=account,
        kind=EntryKind.REDEEM,
        amount=points,
        key=f"hold:{key}" if key else None,
        details={"hold_basket": basket_reference},
    )
    now = timezone.now()
    hold = Hold.objects.create(
        program_id=member.program_id,
        member=member,
        basket_reference=basket_reference,
        basket_amount=basket_amount,
        points=points,
        money_value=points_money_value(member.program, points),
        expires_at=now + timedelta(minutes=ttl_minutes),
        key=key,
        debit_entry=entry,
    )
    return HoldResult(hold=hold, balances=_balances(account))


def _lock(hold: Hold) -> tuple[Account, Hold]:
    """The member's account, then the hold: the one lock order of every hold path."""
    account = lock_accounts_by_id([hold.member_id])[hold.member_id]
    return account, Hold.objects.select_for_update().get(pk=hold.pk)


@transaction.atomic
def hold_capture(*, hold: Hold) -> HoldResult:
    """The basket was paid: the held points stay spent."""
    account, hold = _lock(hold)
    if hold.status != HoldStatus.HELD:
        raise HoldNotActive(f"The hold is {hold.get_status_display().lower()}.", hold_status=hold.status)
    hold.status = HoldStatus.CAPTURED
    hold.captured_at = timezone.now()
    hold.save(update_fields=["status", "captured_at", "updated_at"])
    return HoldResult(hold=hold, balances=_balances(account))


def _give_back(account: Account, hold: Hold, status: str, now: datetime) -> None:
    # The expiry job may be handed a `now` ahead of the clock; refunded points are spendable at once all the same.
    now = min(now, timezone.now())
    refunds = refund_allocations(
        account=account,
        entry_id=hold.debit_entry_id,
        key_prefix=f"hold-refund:{hold.pk}",
        now=now,
        reason=f"Hold on basket {hold.basket_reference} {'released' if status == HoldStatus.RELEASED else 'expired'}",
        details={"hold": hold.pk},
    )
    hold.status = status
    hold.released_at = now
    hold.refund_entry = refunds[0] if refunds else None
    hold.save(update_fields=["status", "released_at", "refund_entry", "updated_at"])


@transaction.atomic
def hold_release(*, hold: Hold) -> HoldResult:
    """The basket was abandoned: the points go back to the lots they came from, same expiry."""
    account, hold = _lock(hold)
    if hold.status != HoldStatus.HELD:
        raise HoldNotActive(f"The hold is {hold.get_status_display().lower()}.", hold_status=hold.status)
    _give_back(account, hold, HoldStatus.RELEASED, timezone.now())
    return HoldResult(hold=hold, balances=_balances(account))


def holds_expire(*, now: datetime | None = None) -> int:
    """Releases every hold past its expiry, one transaction per hold (a refund is ledger
    writes on one member). Safe to run twice or alongside releases: a hold that is no
    longer `held` once its locks are taken is skipped. Returns how many it expired."""
    now = now or timezone.now()
    expired = 0
    due = Hold.objects.filter(status=HoldStatus.HELD, expires_at__lte=now).order_by("pk")
    # Every pass leaves its holds no longer `held` (expired here or released meanwhile): the loop ends.
    while batch := list(due.only("pk", "member_id")[:EXPIRE_BATCH]):
        for hold in batch:
            with transaction.atomic():
                account, locked = _lock(hold)
                if locked.status == HoldStatus.HELD:
                    _give_back(account, locked, HoldStatus.EXPIRED, now)
                    expired += 1
    return expired
