"""Stock, per-member limits and single use under real concurrency (PostgreSQL row locks)."""

import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from loyalty.models import Account, Entry, EntryKind
from rewards.models import Reward, Voucher, VoucherStatus
from rewards.services import reward_redeem, voucher_redeem
from tests.builders import fund
from tests.concurrency import run_at_once
from tests.factories import MemberFactory, ProgramFactory, RewardFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_members_racing_for_a_stock_of_five_get_five_vouchers():
    program = ProgramFactory()
    members = [MemberFactory(program=program) for _ in range(20)]
    for member in members:
        fund(member, 500)
    reward = RewardFactory(program=program, stock=5, points_cost=100)

    results = run_at_once(20, lambda i: reward_redeem(member=members[i], reward=reward))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"RedemptionResult": 5, "RewardOutOfStock": 15}, results
    assert Reward.objects.get(pk=reward.pk).stock == 0
    assert Voucher.objects.filter(reward=reward).count() == 5
    assert Entry.objects.filter(kind=EntryKind.REDEEM).count() == 5
    assert sorted(Account.objects.values_list("available", flat=True)) == [400] * 5 + [500] * 15
    call_command("check_ledger")


def test_redemptions_of_an_unlimited_reward_by_two_members_do_not_wait_for_each_other():
    """Only a stock is counted under the reward's lock: while one member's redemption is still open, another
    member redeems the same unlimited reward at once (the database would refuse to wait over a second)."""
    program = ProgramFactory()
    first, second = MemberFactory(program=program), MemberFactory(program=program)
    for member in (first, second):
        fund(member, 500)
    reward = RewardFactory(program=program, points_cost=100)
    redeemed, release = threading.Event(), threading.Event()

    def open_redemption() -> None:
        try:
            with transaction.atomic():
                reward_redeem(member=first, reward=reward)
                redeemed.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=open_redemption)
    holder.start()
    try:
        assert redeemed.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
            result = reward_redeem(member=second, reward=reward)
    finally:
        release.set()
        holder.join()

    assert result.voucher.reward_id == reward.pk
    assert Voucher.objects.filter(reward=reward).count() == 2
    call_command("check_ledger")


def test_one_member_redeeming_ten_times_at_once_within_a_limit_of_one_gets_one_voucher():
    program = ProgramFactory()
    member = MemberFactory(program=program)
    fund(member, 5000)
    reward = RewardFactory(program=program, per_member_limit=1, points_cost=100)

    results = run_at_once(10, lambda i: reward_redeem(member=member, reward=reward))

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"RedemptionResult": 1, "RewardLimitReached": 9}, results
    assert Voucher.objects.filter(member=member).count() == 1
    assert Account.objects.get(pk=member.pk).available == 4900
    call_command("check_ledger")


def test_ten_retries_of_one_redemption_key_issue_one_voucher():
    program = ProgramFactory()
    member = MemberFactory(program=program)
    fund(member, 5000)
    reward = RewardFactory(program=program, stock=10, points_cost=100)

    results = run_at_once(10, lambda i: reward_redeem(member=member, reward=reward, key="pos:1:retry"))

    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.voucher.pk for r in results}) == 1
    assert sum(r.replayed for r in results) == 9
    assert Reward.objects.get(pk=reward.pk).stock == 9
    assert Account.objects.get(pk=member.pk).available == 4900


def test_two_tills_redeeming_one_code_at_once_one_succeeds():
    program = ProgramFactory()
    member = MemberFactory(program=program)
    fund(member, 500)
    voucher = reward_redeem(member=member, reward=RewardFactory(program=program)).voucher

    results = run_at_once(
        2, lambda i: voucher_redeem(program=program, code=voucher.display_code, reference=f"TILL{i}-1")
    )

    outcomes = Counter(type(r).__name__ for r in results)
    assert outcomes == {"RedeemResult": 1, "VoucherAlreadyRedeemed": 1}, results
    winner = next(r for r in results if not isinstance(r, Exception))
    stored = Voucher.objects.get(pk=voucher.pk)
    assert (stored.status, stored.redeemed_reference) == (VoucherStatus.REDEEMED, winner.voucher.redeemed_reference)
