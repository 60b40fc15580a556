"""A stateful property test of the ledger: random sequences of everything that moves points, checked against
a model after every step.

The model keeps each member's lots (remaining, pending, dates) and balances, and applies the ledger's rules:
a credit pays debt first; a debit first makes due pending lots spendable and expires lots past their date,
then consumes spendable lots soonest-expiring first and turns any shortfall into debt (when allowed);
refunds give back the lots a debit consumed with their dates; transfers move lots with their expiry; the
jobs activate and expire what is due at the moment they are given. After every step the accounts'
available, pending, debt, earned, redeemed and expired must equal the model's; after every run each lot's
remaining must equal the model's and `ledger_audit` must find nothing.

Points as payment and returns are being reworked (share cap per basket, per-line returns), so the model
takes from those services only what any correct version must satisfy: a hold within the 30 % share and the
balance is a debit of its points, one worth half its basket is refused and writes nothing; a return
reverses the points it reports (at most the purchase's) from live lots of the member, with debt only once
nothing spendable is left.

Runs on PostgreSQL with prepared statements (server-side binding), with amounts up to the largest one entry
may hold, so balances and single moves pass 2^31 and 2^32. CI runs at least 2,000 steps (about a minute);
HYPOTHESIS_PROFILE=long runs 50,000.
"""

import itertools
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty.audit import ledger_audit
from loyalty.exceptions import AmountTooLarge, InsufficientPoints
from loyalty.models import MAX_POINTS_PER_ENTRY, Account, Allocation, Entry, EntryKind, Lot
from loyalty.services.enrollment import member_enroll
from loyalty.services.ledger import ledger_adjust, ledger_debit, ledger_transfer
from loyalty.services.lots import lots_activate, lots_expire
from loyalty.services.purchases import PurchaseInput, purchase_record
from loyalty.services.returns import return_record
from members.expiry import ExpiryPolicy
from rewards.exceptions import HoldExceedsShare
from rewards.models import RewardKind
from rewards.services.holds import hold_capture, hold_create, hold_release
from rewards.services.vouchers import reward_redeem, voucher_cancel
from tests import builders
from tests.factories import ProgramFactory, RewardFactory, StaffFactory

MAX = MAX_POINTS_PER_ENTRY
BALANCES = ("available", "pending", "debt", "earned", "redeemed", "expired")
PENDING_DAYS, EXPIRY_DAYS = 14, 30
# Purchase ages in days: pending; pending, expiring soon; spendable, expiring in 10 days; already expired.
# Every date stays days away from the clock, so no lot becomes due while a run lasts.
AGES = st.sampled_from([0, 3, 20, 40])
JOB_DAYS = st.sampled_from([0, 15, 35])  # how far ahead the jobs look
REWARD_COSTS = (1, 1_000, MAX // 2, MAX)

points = st.one_of(
    st.integers(min_value=1, max_value=1_000),
    st.integers(min_value=1, max_value=MAX),
    st.sampled_from([MAX, MAX - 1, 2**31 // 3, 2**31 // 3 + 1]),  # sums cross 2^31 and 2^32
)
too_many = st.sampled_from([MAX + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32 + 100, 10**12])

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
EXAMPLES, STEPS = (settings.default.max_examples, settings.default.stateful_step_count) if LONG else (50, 50)
MIN_STEPS = 2_000 if os.environ.get("CI") else 0
checks, machines = itertools.count(), itertools.count()  # invariant checks (one per step and one per run)


@dataclass
class ModelLot:
    pk: int
    member: int
    remaining: int
    pending: bool
    occurred_at: datetime
    available_at: datetime
    expires_at: datetime | None

    def order(self) -> tuple:
        return (self.expires_at is None, self.expires_at, self.occurred_at, self.pk)


class LedgerMachine(RuleBasedStateMachine):
    members = Bundle("members")

    def __init__(self):
        super().__init__()
        next(machines)
        self.program = ProgramFactory(
            pending_days=PENDING_DAYS,
            expiry_policy=ExpiryPolicy.DAYS,
            expiry_period=EXPIRY_DAYS,
            point_value=Decimal("0.01"),
        )
        builders.rule(self.program, name="Base", kind="base_rate", rate=Decimal(1))
        self.rewards = [
            RewardFactory(program=self.program, name=f"Gift {cost}", kind=RewardKind.GIFT, points_cost=cost)
            for cost in REWARD_COSTS
        ]
        self.actor = StaffFactory()
        self.balances: dict[int, dict[str, int]] = {}
        self.lots: dict[int, ModelLot] = {}
        self.purchases: list[tuple[str, int, Decimal]] = []  # external id, member, total
        self.vouchers: list[tuple[object, list[tuple[int, int]]]] = []  # voucher, the lots its points came from
        self.holds: list[tuple[object, list[tuple[int, int]]]] = []
        self.ids = itertools.count(1)

    # --- the model's ledger --------------------------------------------------------------------------------

    def _move(self, member: int, **deltas: int) -> None:
        for name, delta in deltas.items():
            self.balances[member][name] += delta

    def _credit(self, member: int, amount: int, kind: str, entry) -> None:
        """A credit the service wrote as `entry`: its one lot, with the debt paid from it first."""
        lot = Lot.objects.get(entry=entry)
        paid = min(self.balances[member]["debt"], amount)
        assert (lot.amount, lot.remaining, lot.member_id) == (amount, amount - paid, member)
        self.lots[lot.pk] = ModelLot(
            lot.pk, member, amount - paid, lot.pending, lot.occurred_at, lot.available_at, lot.expires_at
        )
        self._move(member, debt=-paid, **{"pending" if lot.pending else "available": amount - paid})
        self._move(member, **{"redeemed": -amount} if kind == EntryKind.REFUND else {"earned": amount})

    def _live(self, member: int) -> list[ModelLot]:
        return [lot for lot in self.lots.values() if lot.member == member and lot.remaining > 0]

    def _expire(self, member: int, lots: list[ModelLot]) -> None:
        for lot in lots:
            self._move(member, expired=lot.remaining, **{"pending" if lot.pending else "available": -lot.remaining})
            lot.remaining = 0

    def _settle(self, member: int, now: datetime) -> None:
        """What a debit does first: due pending lots become spendable, lots past their date expire."""
        for lot in self._live(member):
            if lot.pending and lot.available_at <= now:
                lot.pending = False
                self._move(member, pending=-lot.remaining, available=lot.remaining)
        self._expire(member, [lot for lot in self._live(member) if lot.expires_at and lot.expires_at <= now])

    def _spendable(self, member: int) -> int:
        """Available points once the due lots are settled, without settling them."""
        now = timezone.now()
        return sum(
            lot.remaining
            for lot in self._live(member)
            if (not lot.pending or lot.available_at <= now) and not (lot.expires_at and lot.expires_at <= now)
        )

    def _take(self, member: int, takes: list[tuple[int, int]], amount: int, kind: str) -> None:
        covered = sum(take for _, take in takes)
        for pk, take in takes:
            lot = self.lots[pk]
            assert lot.member == member and 0 < take <= lot.remaining, (lot, take)
            lot.remaining -= take
            self._move(member, **{"pending" if lot.pending else "available": -take})
        self._move(member, debt=amount - covered)
        if kind == EntryKind.REDEEM:
            self._move(member, redeemed=amount)

    def _debit(self, member: int, amount: int, kind: str) -> list[tuple[int, int]]:
        """A debit of the ledger's own order: soonest expiry first, spendable lots only; returns its takes."""
        self._settle(member, timezone.now())
        takes, needed = [], amount
        for lot in sorted((lot for lot in self._live(member) if not lot.pending), key=ModelLot.order):
            if needed == 0:
                break
            take = min(lot.remaining, needed)
            takes.append((lot.pk, take))
            needed -= take
        self._take(member, takes, amount, kind)
        return takes

    def _last_entry(self) -> int:
        return Entry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def _refund(self, member: int, takes: list[tuple[int, int]], after: int) -> None:
        """Points given back (a cancelled voucher, a released hold): to each lot they came from, same expiry."""
        entries = list(Entry.objects.filter(member_id=member, pk__gt=after).order_by("pk"))
        assert [(entry.kind, entry.amount) for entry in entries] == [(EntryKind.REFUND, take) for _, take in takes]
        for (pk, take), entry in zip(takes, entries, strict=True):
            assert Lot.objects.get(entry=entry).expires_at == self.lots[pk].expires_at
            self._credit(member, take, EntryKind.REFUND, entry)

    def _unchanged(self, call, error, member_ids) -> None:
        before = self._accounts(member_ids)
        with pytest.raises(error):
            call()
        assert self._accounts(member_ids) == before

    def _accounts(self, member_ids) -> dict[int, dict[str, int]]:
        rows = Account.objects.filter(pk__in=member_ids).values("pk", *BALANCES)
        return {row.pop("pk"): row for row in rows}

    # --- rules ---------------------------------------------------------------------------------------------

    @initialize(target=members)
    def first_member(self):
        return self.enrol()

    @rule(target=members)
    def enrol(self):
        member = member_enroll(program=self.program, external_id=f"M-{next(self.ids)}")
        self.balances[member.pk] = dict.fromkeys(BALANCES, 0)
        return member

    @rule(member=members, amounts=st.lists(points, min_size=2, max_size=5), age=AGES)
    def earn_several(self, member, amounts, age):
        """Purchases of one day: lots that become due together (billions of points at once)."""
        for amount in amounts:
            self.earn(member, amount, age)

    @rule(member=members, amount=points, age=AGES)
    def earn(self, member, amount, age):
        external_id = f"P-{next(self.ids)}"
        occurred_at = timezone.now() - timedelta(days=age)
        data = PurchaseInput(external_id=external_id, occurred_at=occurred_at, currency="EUR", total=Decimal(amount))
        result = purchase_record(program=self.program, member=member, data=data)
        assert result.points == amount
        self._credit(member.pk, amount, EntryKind.EARN, result.purchase.entry)
        assert self.lots[result.purchase.entry.lot.pk].pending == (age < PENDING_DAYS)
        self.purchases.append((external_id, member.pk, data.total))

    @rule(member=members, amount=too_many)
    def earn_too_much(self, member, amount):
        data = PurchaseInput(
            external_id=f"P-{next(self.ids)}", occurred_at=timezone.now(), currency="EUR", total=Decimal(amount)
        )
        self._unchanged(
            lambda: purchase_record(program=self.program, member=member, data=data), AmountTooLarge, [member.pk]
        )

    @rule(member=members, amount=points)
    def spend(self, member, amount):
        if amount > self._spendable(member.pk):
            self._unchanged(lambda: ledger_debit(member=member, amount=amount), InsufficientPoints, [member.pk])
            return
        entry = ledger_debit(member=member, amount=amount, kind=EntryKind.REDEEM)
        assert self._debit(member.pk, amount, EntryKind.REDEEM) == [(lot.pk, take) for lot, take in entry.allocated]

    @rule(member=members, amount=points, up=st.booleans())
    def adjust(self, member, amount, up):
        entry = ledger_adjust(
            member=member, points=amount if up else -amount, reason="test", actor=self.actor, allow_debt=True
        )
        if up:
            self._credit(member.pk, amount, EntryKind.ADJUST, entry)
        else:
            takes = self._debit(member.pk, amount, EntryKind.ADJUST)
            assert takes == [(lot.pk, take) for lot, take in entry.allocated]

    @rule(member=members, amount=too_many, up=st.booleans())
    def adjust_too_much(self, member, amount, up):
        adjust = lambda: ledger_adjust(  # noqa: E731
            member=member, points=amount if up else -amount, reason="test", actor=self.actor, allow_debt=True
        )
        self._unchanged(adjust, AmountTooLarge, [member.pk])

    @precondition(lambda self: self.purchases)
    @rule(data=st.data(), share=st.sampled_from([Decimal("0.01"), Decimal("0.3"), Decimal("0.5"), Decimal(1)]))
    def give_back(self, data, share):
        """A return of a share of a purchase's total; the service says how many points it reverses."""
        purchase = data.draw(st.sampled_from(self.purchases))
        self.purchases.remove(purchase)  # returned once
        external_id, member_id, total = purchase
        result = return_record(
            program=self.program,
            external_id=f"R-{next(self.ids)}",
            purchase_external_id=external_id,
            amount=(total * share).quantize(Decimal("0.01")),
        )
        reversed_points = result.record.points_reversed
        assert 0 <= reversed_points <= total
        if not reversed_points:
            return
        self._settle(member_id, timezone.now())
        takes = list(Allocation.objects.filter(entry=result.record.entry).order_by("pk").values_list("lot", "amount"))
        self._take(member_id, takes, reversed_points, EntryKind.REVERSE)
        if reversed_points > sum(take for _, take in takes):
            assert self.balances[member_id]["available"] == 0, "debt while points were spendable"

    @rule(source=members, receiver=members, amount=points)
    def transfer(self, source, receiver, amount):
        if source.pk == receiver.pk:
            return
        if amount > self._spendable(source.pk):
            transfer = lambda: ledger_transfer(source=source, target=receiver, amount=amount)  # noqa: E731
            self._unchanged(transfer, InsufficientPoints, [source.pk, receiver.pk])
            return
        out, received = ledger_transfer(source=source, target=receiver, amount=amount)
        takes = self._debit(source.pk, amount, EntryKind.TRANSFER_OUT)
        assert [(lot.pk, take) for lot, take in out.allocated] == takes
        for (pk, take), entry in zip(takes, received, strict=True):
            lot = Lot.objects.get(entry=entry)
            assert lot.expires_at == self.lots[pk].expires_at and not lot.pending
            self._credit(receiver.pk, take, EntryKind.TRANSFER_IN, entry)

    @rule(days=JOB_DAYS)
    def expire(self, days):
        moment = timezone.now() + timedelta(days=days)
        lots_expire(now=moment)
        for member in self.balances:
            self._expire(member, [lot for lot in self._live(member) if lot.expires_at and lot.expires_at <= moment])

    @rule(days=JOB_DAYS)
    def activate(self, days):
        moment = timezone.now() + timedelta(days=days)
        lots_activate(now=moment)
        for lot in self.lots.values():
            if lot.pending and lot.available_at <= moment:
                lot.pending = False
                self._move(lot.member, pending=-lot.remaining, available=lot.remaining)

    @rule(member=members, reward=st.sampled_from(range(len(REWARD_COSTS))))
    def redeem(self, member, reward):
        reward = self.rewards[reward]
        if reward.points_cost > self._spendable(member.pk):
            redeem = lambda: reward_redeem(member=member, reward=reward)  # noqa: E731
            self._unchanged(redeem, InsufficientPoints, [member.pk])
            return
        result = reward_redeem(member=member, reward=reward)
        self.vouchers.append((result.voucher, self._debit(member.pk, reward.points_cost, EntryKind.REDEEM)))

    @precondition(lambda self: self.vouchers)
    @rule(data=st.data())
    def cancel_voucher(self, data):
        voucher, takes = data.draw(st.sampled_from(self.vouchers))
        self.vouchers.remove((voucher, takes))
        last = self._last_entry()
        voucher_cancel(voucher=voucher, actor=self.actor)
        self._refund(voucher.member_id, takes, last)

    @rule(member=members, amount=points, basket_times=st.sampled_from([Decimal(1), Decimal("0.02")]))
    def hold(self, member, amount, basket_times):
        """Points paying for a basket: all of its price (within the 30 % share), or half of it (refused)."""
        basket = (Decimal(amount) * basket_times).quantize(Decimal("0.01"))
        hold = lambda: hold_create(  # noqa: E731
            member=member, basket_reference=f"B-{next(self.ids)}", basket_amount=basket, points=amount
        )
        if basket_times < 1 or amount > self._spendable(member.pk):
            refusal = HoldExceedsShare if amount <= self._spendable(member.pk) else InsufficientPoints
            self._unchanged(hold, (refusal, HoldExceedsShare) if basket_times < 1 else refusal, [member.pk])
            return
        self.holds.append((hold().hold, self._debit(member.pk, amount, EntryKind.REDEEM)))

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), capture=st.booleans())
    def settle_hold(self, data, capture):
        hold, takes = data.draw(st.sampled_from(self.holds))
        self.holds.remove((hold, takes))
        if capture:
            hold_capture(hold=hold)
            return
        last = self._last_entry()
        hold_release(hold=hold)
        self._refund(hold.member_id, takes, last)

    # --- checks --------------------------------------------------------------------------------------------

    @invariant()
    def balances_match_the_model(self):
        next(checks)
        assert self._accounts(list(self.balances)) == self.balances

    def teardown(self):
        if self.balances:
            remaining = dict(Lot.objects.filter(program=self.program).values_list("pk", "remaining"))
            assert remaining == {pk: lot.remaining for pk, lot in self.lots.items()}
            assert ledger_audit(program=self.program) == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_ledger_matches_its_model_over_random_sequences():
    assert connection.settings_dict["OPTIONS"].get("server_side_binding") is True, "run with prepared statements"
    checks_before, machines_before = next(checks), next(machines)

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )

    steps = (next(checks) - checks_before - 1) - (next(machines) - machines_before - 1)
    assert steps >= MIN_STEPS
