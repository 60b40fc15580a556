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
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from events.payloads.common import BalancesData
from loyalty.exceptions import InvalidAmount
from loyalty.models import Account, EntryKind
from loyalty.services.accounts import ensure_active, lock_accounts, lock_accounts_by_id
from loyalty.services.ledger import debit_locked, points_check
from members.exceptions import IdempotencyKeyReused
from members.models import Member, Program
from rewards.exceptions import HoldBasketMismatch, HoldExceedsShare, HoldNotActive, PointsPaymentUnavailable
from rewards.models import Hold, HoldBasket, HoldStatus
from rewards.services.refunds import refund_allocations

CENT = Decimal("0.01")
MAX_BASKET_SHARE = Decimal("0.30")  # default; settings.REWARDS_MAX_POINTS_SHARE overrides it
HOLD_TTL_MINUTES = 30
EXPIRE_BATCH = 500
LIVE = (HoldStatus.HELD, HoldStatus.CAPTURED)  # holds whose points pay (or will pay) for their basket


@dataclass
class HoldResult:
    hold: Hold
    balances: BalancesData
    replayed: bool = False


def max_points_share() -> Decimal:
    """The largest share of a basket points may pay (0.30 = 30 %)."""
    return Decimal(str(getattr(settings, "REWARDS_MAX_POINTS_SHARE", MAX_BASKET_SHARE)))


def points_money_value(program: Program, points: int) -> Decimal:
    """What `points` pay, in the program's currency: rounded down to cents, once, here, so
    points never pay more than they are worth."""
    return (points * program.point_value).quantize(CENT, rounding=ROUND_DOWN)


def _validate(points: int, basket_amount: Decimal) -> None:
    points_check(points)  # the ledger's guard, before the account is locked
    if basket_amount <= 0:
        raise InvalidAmount("The basket amount must be above zero.", field="basket_amount")


def _ensure_payable(program: Program) -> None:
    if program.point_value <= 0:
        raise PointsPaymentUnavailable()


def _basket_lock(*, member: Member, reference: str, amount: Decimal) -> HoldBasket:
    """The basket's row, locked (created by its first hold). Every hold of one basket takes this lock, so
    holds of one basket serialise even when they come from different members' requests."""
    baskets = HoldBasket.objects.select_for_update()
    basket = baskets.filter(program_id=member.program_id, reference=reference).first()
    if basket is None:
        try:
            with transaction.atomic():
                return HoldBasket.objects.create(
                    program_id=member.program_id, reference=reference, member=member, amount=amount
                )
        except IntegrityError:  # created meanwhile by a concurrent first hold: the lock waited for its commit
            basket = baskets.get(program_id=member.program_id, reference=reference)
    return basket


def _live_holds(program_id: int, reference: str, statuses: tuple[str, ...] = LIVE) -> QuerySet[Hold]:
    return Hold.objects.filter(program_id=program_id, basket_reference=reference, status__in=statuses)


def _paid(holds: QuerySet[Hold]) -> Decimal:
    """What the holds pay, in cents (a sum is "0" without holds, and without its scale on SQLite)."""
    return (holds.aggregate(paid=Sum("money_value"))["paid"] or Decimal(0)).quantize(CENT)


def _bind(basket: HoldBasket, member: Member, amount: Decimal) -> None:
    """A basket belongs to one member and, while points pay part of it, keeps its amount: the cap of the
    holds already on it was measured against that amount. Without live holds a new amount is taken."""
    if basket.member_id != member.pk:
        raise HoldBasketMismatch("The basket reference is held for another member.", field="basket_reference")
    if basket.amount == amount:
        return
    if _live_holds(basket.program_id, basket.reference).exists():
        raise HoldBasketMismatch(
            f"The basket has holds for an amount of {basket.amount}; release them to hold against another amount.",
            field="basket_amount",
            basket_amount=str(basket.amount),
        )
    basket.amount = amount
    basket.save(update_fields=["amount", "updated_at"])


def _check_share(program: Program, *, amount: Decimal, paid: Decimal, money: Decimal) -> None:
    """Refuses (never silently caps) points that, with what the basket's other holds pay (`paid`),
    would pay more than the share of the basket."""
    share = max_points_share()
    limit = share * amount
    if paid + money > limit:
        max_points = max(int((limit - paid) / program.point_value), 0) if program.point_value > 0 else 0
        raise HoldExceedsShare(
            f"At most {max_points} more points ({share:.0%} of the basket) can pay for this basket.",
            max_points=max_points,
            max_share=str(share),
            basket_paid=str(paid),
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
    return HoldResult(hold=hold, balances=account.balances, replayed=True)


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

    The share cap counts every held and captured hold of the basket (its reference is unique per
    program), so a second hold, or a retry without a key, cannot pay beyond it.

    Errors: invalid_amount, member_suspended/member_closed, points_payment_unavailable,
    hold_basket_mismatch, hold_exceeds_share, insufficient_points. `key` makes a retry return the first hold.
    """
    _validate(points, basket_amount)
    account = lock_accounts([member])[member.pk]
    if key is not None and (replay := _replay(account, key, basket_reference, basket_amount, points)):
        return replay
    member = account.member
    ensure_active(member)
    _ensure_payable(member.program)
    basket = _basket_lock(member=member, reference=basket_reference, amount=basket_amount)
    _bind(basket, member, basket_amount)
    paid = _paid(_live_holds(member.program_id, basket_reference))
    _check_share(member.program, amount=basket_amount, paid=paid, money=points * member.program.point_value)
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
    return HoldResult(hold=hold, balances=account.balances)


def _lock(hold: Hold, *, basket: bool = False) -> tuple[Account, Hold]:
    """The member's account, then (capture) the basket, then the hold: the one lock order of every hold path."""
    account = lock_accounts_by_id([hold.member_id])[hold.member_id]
    if basket:
        _basket_lock(member=account.member, reference=hold.basket_reference, amount=hold.basket_amount)
    return account, Hold.objects.select_for_update().get(pk=hold.pk)


@transaction.atomic
def hold_capture(*, hold: Hold) -> HoldResult:
    """The basket was paid: the held points stay spent. The share is checked again against what the
    basket's captured holds already pay, so holds that together exceed it (made before the cap counted
    per basket, or under a larger share setting) never all pay. Errors: hold_not_active, hold_exceeds_share."""
    account, hold = _lock(hold, basket=True)
    if hold.status != HoldStatus.HELD:
        raise HoldNotActive(f"The hold is {hold.get_status_display().lower()}.", hold_status=hold.status)
    program = account.member.program
    captured = _paid(_live_holds(hold.program_id, hold.basket_reference, (HoldStatus.CAPTURED,)))
    _check_share(program, amount=hold.basket_amount, paid=captured, money=hold.money_value)
    hold.status = HoldStatus.CAPTURED
    hold.captured_at = timezone.now()
    hold.save(update_fields=["status", "captured_at", "updated_at"])
    return HoldResult(hold=hold, balances=account.balances)


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
    return HoldResult(hold=hold, balances=account.balances)


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
