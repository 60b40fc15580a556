"""Redeeming rewards for vouchers, and cancelling and expiring vouchers (using them at the till: till.py).

Locks: the member's account always comes first (the ledger's one lock per
member). Redeeming a reward then locks the reward row (stock); cancelling a
voucher locks the voucher, then updates its reward's stock; a till using a
voucher locks only that voucher. Whoever holds a reward or voucher lock
never waits for an account, so these paths cannot deadlock with each other
or with the ledger's writers.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from events.outbox import EventType, event_emit
from events.payloads.common import BalancesData, RewardRef, reward_ref
from events.payloads.rewards import reward_redeemed_payload, voucher_issued_payload
from loyalty.models import Account, Entry, EntryKind
from loyalty.ruleset import program_ruleset
from loyalty.services.accounts import ensure_active, lock_accounts
from loyalty.services.ledger import debit_locked
from members.exceptions import IdempotencyKeyReused
from members.models import Member
from rewards.codes import code_generate
from rewards.exceptions import (
    RewardInactive,
    RewardLimitReached,
    RewardNotFound,
    RewardOutOfStock,
    RewardTierRequired,
    VoucherExpired,
    VoucherNotCancellable,
)
from rewards.models import Reward, Voucher, VoucherStatus
from rewards.services.refunds import refund_allocations

CODE_ATTEMPTS = 5  # 60-bit codes: a second attempt is already astronomically rare


@dataclass
class RedemptionResult:
    voucher: Voucher
    entry: Entry
    balances: BalancesData
    replayed: bool = False


def reward_event_data(reward: Reward) -> RewardRef:
    """How events name a reward (docs/events.md)."""
    return reward_ref(id=reward.pk, name=reward.name, kind=reward.kind, points_cost=reward.points_cost)


# --- Redeeming a reward -----------------------------------------------------------


def _check_reward(account: Account, reward: Reward, now: datetime) -> None:
    """Every reason the member may not have this reward now, in the order a member would ask."""
    if not reward.is_active or (reward.active_from and now < reward.active_from):
        raise RewardInactive()
    if reward.active_until and now >= reward.active_until:
        raise RewardInactive("The reward is no longer offered.")
    if reward.min_tier_id is not None:
        _check_tier(account, reward)
    if reward.stock is not None and reward.stock <= 0:
        raise RewardOutOfStock()
    if reward.per_member_limit is not None:
        held_vouchers = Voucher.objects.filter(member_id=account.pk, reward=reward).exclude(
            status=VoucherStatus.CANCELLED
        )
        if held_vouchers.count() >= reward.per_member_limit:
            raise RewardLimitReached(limit=reward.per_member_limit)


def _check_tier(account: Account, reward: Reward) -> None:
    """Tiers compare by rank. The compiled ruleset has them without a query; a tier it does not
    know yet (compiled just before the tier was added) is read from the database instead."""
    ruleset = program_ruleset(account.member.program)
    required = ruleset.tier(reward.min_tier_id) or reward.min_tier
    held = ruleset.tier(account.tier_id) or account.tier if account.tier_id else None
    if required is not None and (held is None or held.rank < required.rank):
        raise RewardTierRequired(f"The reward needs the {required.name} tier or higher.", tier=required.name)


def _replay_redemption(account: Account, reward: Reward, key: str) -> RedemptionResult | None:
    voucher = Voucher.objects.filter(program_id=account.program_id, redeem_key=key).first()
    if voucher is None:
        return None
    if (voucher.member_id, voucher.reward_id) != (account.pk, reward.pk):
        raise IdempotencyKeyReused()
    assert voucher.redemption_entry is not None
    return RedemptionResult(voucher=voucher, entry=voucher.redemption_entry, balances=account.balances, replayed=True)


def voucher_create(**fields: Any) -> Voucher:
    """A voucher with a fresh code; the unique constraint on (program, code) is the guard,
    a collision (about one in 2**60 per pair of codes) draws again."""
    for attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                return Voucher.objects.create(code=code_generate(), **fields)
        except IntegrityError:
            if attempt == CODE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def reward_redeem(
    *, member: Member, reward: Reward, key: str | None = None, savepoint: bool = True
) -> RedemptionResult:
    """Spends the reward's points and issues a voucher, in one transaction.

    `key` (the caller's idempotency key) makes a retry return the first voucher. `savepoint=False` is for a
    caller whose transaction rolls back whole on any error (config.api.idempotency): two statements fewer.
    """
    with transaction.atomic(savepoint=savepoint):
        return _reward_redeem(member=member, reward=reward, key=key)


def _reward_redeem(*, member: Member, reward: Reward, key: str | None) -> RedemptionResult:
    # Account first, then the reward: the lock order of every reward path. The reward's row is locked only
    # when it has a stock to count down: a per-member limit is held by the account's lock, and locking an
    # unlimited reward would make every member's redemption of it wait for the one before.
    account = lock_accounts([member])[member.pk]
    locked = Reward.objects.filter(pk=reward.pk, program_id=member.program_id).first()
    if locked is not None and locked.stock is not None:
        locked = Reward.objects.select_for_update().filter(pk=locked.pk).first()
    if locked is None:
        raise RewardNotFound()
    if key is not None and (replay := _replay_redemption(account, locked, key)):
        return replay
    ensure_active(account.member)
    now = timezone.now()
    _check_reward(account, locked, now)
    entry = debit_locked(
        account=account,
        kind=EntryKind.REDEEM,
        amount=locked.points_cost,
        key=f"redeem:{key}" if key else None,
        details={"reward": locked.pk, "reward_name": locked.name},
    )
    if locked.stock is not None:
        Reward.objects.filter(pk=locked.pk).update(stock=F("stock") - 1)
    voucher = voucher_create(
        program_id=member.program_id,
        member=account.member,
        reward=locked,
        kind=locked.kind,
        value=locked.value,
        min_basket=locked.min_basket,
        scope_skus=locked.scope_skus,
        scope_categories=locked.scope_categories,
        issued_at=now,
        expires_at=now + timedelta(days=locked.voucher_valid_days),
        points_cost=locked.points_cost,
        redemption_entry=entry,
        redeem_key=key,
    )
    balances = account.balances
    reward_data = reward_event_data(locked)
    event_emit(
        program_id=member.program_id,
        member_id=member.pk,
        type=EventType.REWARD_REDEEMED,
        occurred_at=now,
        data=reward_redeemed_payload(
            member_id=member.pk, reward=reward_data, points_spent=locked.points_cost, balances=balances
        ),
    )
    event_emit(
        program_id=member.program_id,
        member_id=member.pk,
        type=EventType.VOUCHER_ISSUED,
        occurred_at=now,
        data=voucher_issued_payload(
            member_id=member.pk,
            voucher_id=voucher.pk,
            code=voucher.display_code,
            reward=reward_data,
            value=voucher.value,
            min_basket=voucher.min_basket,
            expires_at=voucher.expires_at,
            campaign=voucher.campaign,
        ),
    )
    return RedemptionResult(voucher=voucher, entry=entry, balances=balances)


# --- Cancelling and expiring ------------------------------------------------------------


@transaction.atomic
def voucher_cancel(*, voucher: Voucher, actor: Any = None) -> Voucher:
    """Cancels an issued, unused voucher: its points go back to the lots they came from
    (same expiry), and the reward's stock gets the voucher back."""
    accounts = lock_accounts([voucher.member]) if voucher.member is not None else {}
    voucher = Voucher.objects.select_for_update().get(pk=voucher.pk)
    now = timezone.now()
    if voucher.status != VoucherStatus.ISSUED:
        raise VoucherNotCancellable(
            f"The voucher is {voucher.get_status_display().lower()}.", voucher_status=voucher.status
        )
    if voucher.expires_at <= now:
        raise VoucherExpired(expires_at=voucher.expires_at.isoformat())
    refunds = (
        refund_allocations(
            account=accounts[cast(int, voucher.member_id)],  # accounts holds the voucher's member
            entry_id=voucher.redemption_entry_id,
            key_prefix=f"refund:{voucher.pk}",
            now=now,
            reason=f"Voucher {voucher.display_code} cancelled",
            details={"voucher": voucher.pk, "reward": voucher.reward_id},
            actor=actor,
        )
        if accounts and voucher.redemption_entry_id
        else []
    )
    if voucher.reward_id is not None:
        Reward.objects.filter(pk=voucher.reward_id, stock__isnull=False).update(stock=F("stock") + 1)
    voucher.status = VoucherStatus.CANCELLED
    voucher.cancelled_at = now
    voucher.cancelled_by = actor
    voucher.refund_entry = refunds[0] if refunds else None
    voucher.save(update_fields=["status", "cancelled_at", "cancelled_by", "refund_entry"])
    return voucher


def vouchers_expire(*, now: datetime | None = None) -> int:
    """Marks issued vouchers past their expiry as expired, in one UPDATE. Safe to run twice:
    an expired voucher is no longer 'issued'. Returns how many it expired."""
    now = now or timezone.now()
    return Voucher.objects.filter(status=VoucherStatus.ISSUED, expires_at__lte=now).update(status=VoucherStatus.EXPIRED)
