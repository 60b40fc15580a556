"""reward_redeem and voucher_cancel: points, stock, limits, refusals, replays and refunds."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.exceptions import InsufficientPoints
from loyalty.models import Account, Allocation, Entry, EntryKind, Lot, lifetime_deltas
from loyalty.ruleset import program_ruleset
from loyalty.services.ledger import ledger_debit
from loyalty.services.lots import lots_expire
from members.exceptions import IdempotencyKeyReused, MemberSuspended
from members.models import MemberStatus
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
from rewards.services import reward_redeem, voucher_cancel, voucher_redeem
from tests.builders import fund, tier
from tests.factories import MemberFactory, RewardFactory


def ledger_state(member, reward):
    account = Account.objects.filter(pk=member.pk).values("available", "pending", "debt", "redeemed").first()
    return {
        "account": account,
        "entries": list(Entry.objects.filter(member=member).values_list("pk", "amount")),
        "lots": list(Lot.objects.filter(member=member).values_list("pk", "remaining")),
        "vouchers": Voucher.objects.count(),
        "stock": Reward.objects.get(pk=reward.pk).stock,
    }


def test_redemption_spends_soonest_expiring_points_first_and_issues_a_voucher(program, member):
    # given
    late = fund(member, 100, expires_in_days=60).lot_created
    never = fund(member, 100).lot_created
    soon = fund(member, 100, expires_in_days=10).lot_created
    reward = RewardFactory(program=program, points_cost=150, stock=3, voucher_valid_days=14)

    # when
    before = timezone.now()
    result = reward_redeem(member=member, reward=reward)

    # then
    voucher = result.voucher
    assert (voucher.status, voucher.member_id, voucher.reward_id, voucher.points_cost) == (
        "issued",
        member.pk,
        reward.pk,
        150,
    )
    assert (voucher.kind, voucher.value, voucher.program_id) == (reward.kind, reward.value, program.pk)
    assert len(voucher.code) == 12 and voucher.display_code.count("-") == 2
    assert before + timedelta(days=14) <= voucher.expires_at <= timezone.now() + timedelta(days=14)
    assert voucher.redemption_entry == result.entry
    assert (result.entry.kind, result.entry.amount) == (EntryKind.REDEEM, -150)
    assert result.entry.details["reward"] == reward.pk
    taken = dict(Allocation.objects.filter(entry=result.entry).values_list("lot_id", "amount"))
    assert taken == {soon.pk: 100, late.pk: 50}
    assert never.pk not in taken
    assert Reward.objects.get(pk=reward.pk).stock == 2
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.redeemed) == (150, 150)
    assert result.balances == {"available": 150, "pending": 0, "debt": 0}
    assert result.replayed is False
    assert ledger_audit() == []


def test_unlimited_stock_stays_unlimited(funded_member, reward):
    reward_redeem(member=funded_member, reward=reward)

    assert Reward.objects.get(pk=reward.pk).stock is None


def _other_program_reward(program):
    return RewardFactory(program=MemberFactory().program)


REFUSALS = [
    ("inactive", lambda p, m: RewardFactory(program=p, is_active=False), RewardInactive),
    ("not yet", lambda p, m: RewardFactory(program=p, active_from=timezone.now() + timedelta(days=1)), RewardInactive),
    ("over", lambda p, m: RewardFactory(program=p, active_until=timezone.now() - timedelta(seconds=1)), RewardInactive),
    ("out of stock", lambda p, m: RewardFactory(program=p, stock=0), RewardOutOfStock),
    ("too expensive", lambda p, m: RewardFactory(program=p, points_cost=1001), InsufficientPoints),
    ("another program", lambda p, m: _other_program_reward(p), RewardNotFound),
]


@pytest.mark.parametrize(("case", "build", "error"), REFUSALS, ids=[case for case, _, _ in REFUSALS])
def test_a_refused_redemption_writes_nothing(program, funded_member, case, build, error):
    reward = build(program, funded_member)
    before = ledger_state(funded_member, reward)

    with pytest.raises(error) as caught:
        reward_redeem(member=funded_member, reward=reward, key="k1")

    assert caught.value.code == error.code
    assert ledger_state(funded_member, reward) == before


def test_the_per_member_limit_counts_vouchers_not_cancelled(program, funded_member):
    reward = RewardFactory(program=program, per_member_limit=2, stock=10)
    first = reward_redeem(member=funded_member, reward=reward).voucher
    reward_redeem(member=funded_member, reward=reward)
    before = ledger_state(funded_member, reward)

    with pytest.raises(RewardLimitReached):
        reward_redeem(member=funded_member, reward=reward)
    assert ledger_state(funded_member, reward) == before

    voucher_cancel(voucher=first)
    assert reward_redeem(member=funded_member, reward=reward).voucher.status == VoucherStatus.ISSUED
    # another member has their own limit
    other = MemberFactory(program=program)
    fund(other, 500)
    assert reward_redeem(member=other, reward=reward).voucher.member_id == other.pk


def test_a_minimum_tier_is_compared_by_rank(program, funded_member):
    silver = tier(program, "Silver", rank=1, threshold=0)
    gold = tier(program, "Gold", rank=2, threshold=1000)
    reward = RewardFactory(program=program, min_tier=gold)
    before = ledger_state(funded_member, reward)

    with pytest.raises(RewardTierRequired):  # no tier at all
        reward_redeem(member=funded_member, reward=reward)
    Account.objects.filter(pk=funded_member.pk).update(tier=silver)
    with pytest.raises(RewardTierRequired):
        reward_redeem(member=funded_member, reward=reward)
    assert ledger_state(funded_member, reward) == before

    Account.objects.filter(pk=funded_member.pk).update(tier=gold)
    assert reward_redeem(member=funded_member, reward=RewardFactory(program=program, min_tier=silver)).voucher
    assert reward_redeem(member=funded_member, reward=reward).voucher


def test_a_suspended_member_cannot_redeem(funded_member, reward):
    funded_member.status = MemberStatus.SUSPENDED
    funded_member.save(update_fields=["status"])
    before = ledger_state(funded_member, reward)

    with pytest.raises(MemberSuspended):
        reward_redeem(member=funded_member, reward=reward)

    assert ledger_state(funded_member, reward) == before


def test_a_retry_with_the_same_key_returns_the_same_voucher(program, funded_member):
    reward = RewardFactory(program=program, stock=5)
    first = reward_redeem(member=funded_member, reward=reward, key="pos:1:abc")

    again = reward_redeem(member=funded_member, reward=reward, key="pos:1:abc")

    assert again.replayed is True
    assert again.voucher.pk == first.voucher.pk and again.entry.pk == first.entry.pk
    assert Voucher.objects.count() == 1
    assert Entry.objects.filter(member=funded_member, kind=EntryKind.REDEEM).count() == 1
    assert Reward.objects.get(pk=reward.pk).stock == 4
    assert Account.objects.get(pk=funded_member.pk).available == 900
    with pytest.raises(IdempotencyKeyReused):
        reward_redeem(member=funded_member, reward=RewardFactory(program=program), key="pos:1:abc")


def test_cancelling_gives_the_points_back_to_their_lots_with_their_expiry(program, member):
    soon = fund(member, 100, expires_in_days=10, age_days=5).lot_created
    late = fund(member, 100, expires_in_days=60, age_days=3).lot_created
    reward = RewardFactory(program=program, points_cost=150, stock=1)
    voucher = reward_redeem(member=member, reward=reward).voucher
    assert Account.objects.get(pk=member.pk).redeemed == 150

    cancelled = voucher_cancel(voucher=voucher)

    assert cancelled.status == VoucherStatus.CANCELLED and cancelled.cancelled_at is not None
    refunds = list(Entry.objects.filter(member=member, kind=EntryKind.REFUND).order_by("pk"))
    assert [entry.amount for entry in refunds] == [100, 50]
    assert cancelled.refund_entry == refunds[0]
    assert all(entry.details["voucher"] == voucher.pk for entry in refunds)
    lots = {entry.details["from_lot"]: entry.lot for entry in refunds}
    assert (lots[soon.pk].expires_at, lots[soon.pk].occurred_at) == (soon.expires_at, soon.occurred_at)
    assert (lots[late.pk].expires_at, lots[late.pk].occurred_at) == (late.expires_at, late.occurred_at)
    assert (lots[soon.pk].remaining, lots[late.pk].remaining) == (100, 50)
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.redeemed, account.earned) == (200, 0, 200)
    assert Reward.objects.get(pk=reward.pk).stock == 1
    assert ledger_audit() == []
    with pytest.raises(VoucherNotCancellable):
        voucher_cancel(voucher=voucher)
    assert Entry.objects.filter(member=member, kind=EntryKind.REFUND).count() == 2


def test_refunded_points_whose_expiry_passed_are_credited_then_expired(program, member):
    lot = fund(member, 100, expires_in_days=1, age_days=20).lot_created
    voucher = reward_redeem(member=member, reward=RewardFactory(program=program, points_cost=100)).voucher
    later = timezone.now() + timedelta(days=2)

    with mock.patch("django.utils.timezone.now", return_value=later):
        voucher_cancel(voucher=voucher)
    refund = Entry.objects.get(member=member, kind=EntryKind.REFUND)
    assert (refund.lot.expires_at, refund.lot.occurred_at) == (lot.expires_at, lot.occurred_at)
    assert Account.objects.get(pk=member.pk).available == 100
    assert ledger_audit() == []

    lots_expire(now=later)

    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.redeemed, account.expired) == (0, 0, 100)
    assert ledger_audit() == []


def test_a_refund_pays_debt_first(program, member):
    fund(member, 100)
    voucher = reward_redeem(member=member, reward=RewardFactory(program=program, points_cost=100)).voucher
    ledger_debit(member=member, amount=30, kind=EntryKind.REVERSE, allow_debt=True)

    voucher_cancel(voucher=voucher)

    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.debt, account.redeemed) == (70, 0, 0)
    assert ledger_audit() == []


def test_only_an_issued_unused_voucher_can_be_cancelled(program, funded_member, reward):
    used = reward_redeem(member=funded_member, reward=reward).voucher
    voucher_redeem(program=program, code=used.code, reference="R1")
    with pytest.raises(VoucherNotCancellable):
        voucher_cancel(voucher=used)

    old = reward_redeem(member=funded_member, reward=reward).voucher
    with mock.patch("django.utils.timezone.now", return_value=old.expires_at):
        with pytest.raises(VoucherExpired):
            voucher_cancel(voucher=old)
    assert Account.objects.get(pk=funded_member.pk).available == 800
    assert not Entry.objects.filter(kind=EntryKind.REFUND).exists()


def test_a_refund_reduces_the_lifetime_redeemed_total():
    assert lifetime_deltas(EntryKind.REFUND, 40) == {"redeemed": -40}
    assert lifetime_deltas(EntryKind.REDEEM, -40) == {"redeemed": 40}


def test_a_tier_the_compiled_ruleset_does_not_know_yet_still_guards_the_reward(program, funded_member):
    program_ruleset(program)  # compiled before the tiers exist; creating them directly does not bump the version
    gold = tier(program, "Gold", rank=2, threshold=1000)
    silver = tier(program, "Silver", rank=1, threshold=0)
    Account.objects.filter(pk=funded_member.pk).update(tier=silver)

    with pytest.raises(RewardTierRequired):
        reward_redeem(member=funded_member, reward=RewardFactory(program=program, min_tier=gold))
