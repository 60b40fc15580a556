"""The points ledger: accounts, lots, entries and allocations.

- An `Entry` is an append-only journal line with a signed amount.
- A credit entry creates one `Lot`: points that can be spent, with an
  `available_at` (pending until then) and an optional `expires_at`.
- A debit entry consumes lots through `Allocation` rows. What no lot could
  cover (a return after the points were spent) stays on the entry as
  `uncovered`: that is the member's debt, paid off by later credits, which
  add allocations to the same debit entry.
- `Account` is one fixed row per member, keyed by the member id. It caches the
  balances and is the row every writer locks, so writers on one member
  serialise.

Every table carries `member_id`, so the ledger can be distributed by member.
On PostgreSQL, triggers (see migrations) refuse deletes and amount edits.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from events.payloads.common import BalancesData
from members.models import Member, Program


class EntryKind(models.TextChoices):
    EARN = "earn", "Earned"
    ADJUST = "adjust", "Manual adjustment"
    TRANSFER_IN = "transfer_in", "Transfer in"
    TRANSFER_OUT = "transfer_out", "Transfer out"
    REDEEM = "redeem", "Redeemed"
    REVERSE = "reverse", "Reversed"
    EXPIRE = "expire", "Expired"
    REFUND = "refund", "Refunded"  # points of a cancelled voucher coming back


CREDIT_KINDS = frozenset({EntryKind.EARN, EntryKind.TRANSFER_IN, EntryKind.REFUND})
DEBIT_KINDS = frozenset({EntryKind.TRANSFER_OUT, EntryKind.REDEEM, EntryKind.REVERSE, EntryKind.EXPIRE})
# Adjustments go either way.

# The most points one request may credit or debit (a purchase's award, an adjustment, a transfer, a
# reward's cost, a hold): `loyalty.services.ledger.points_check` holds every write to it. Balances are
# bigint, so 9.2 billion entries of the maximum fit in one account. Entries the ledger derives itself
# (one expiry of several lots) may be larger.
MAX_POINTS_PER_ENTRY = 1_000_000_000


class Account(models.Model):
    """Cached balances of one member; the row writers lock."""

    member = models.OneToOneField(Member, primary_key=True, on_delete=models.PROTECT, related_name="account")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    available = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    debt = models.BigIntegerField(default=0)
    earned = models.BigIntegerField(default=0, help_text="Lifetime credits: earned, added, received.")
    redeemed = models.BigIntegerField(default=0, help_text="Lifetime points spent on rewards.")
    expired = models.BigIntegerField(default=0, help_text="Lifetime points lost to expiry.")
    purchases = models.PositiveIntegerField(default=0, help_text="Purchases recorded (first and n-th purchase rules).")
    tier = models.ForeignKey("loyalty.Tier", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tier_achieved_at = models.DateTimeField(null=True, blank=True)
    tier_review_at = models.DateTimeField(null=True, blank=True, help_text="When the tier is reviewed next.")
    tier_pinned_until = models.DateTimeField(null=True, blank=True, help_text="A manager keeps the tier until then.")
    # Marks of the time-driven events (analytics.services.purchase_timing), set in the transaction that emits them.
    inactive_notified_for = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Start (last purchase, or enrolment) of the inactivity member.inactive was sent for.",
    )
    next_purchase_notified_for = models.DateTimeField(
        null=True, blank=True, help_text="Expected next purchase date member.next_purchase_due was sent for."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(available__gte=0), name="account_available_not_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="account_pending_not_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="account_debt_not_negative"),
            models.CheckConstraint(
                condition=Q(earned__gte=0, redeemed__gte=0, expired__gte=0), name="account_totals_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Account of member #{self.member_id}"

    @property
    def balances(self) -> BalancesData:
        """The three balances as events and the answers of the APIs' writes carry them (the one place that
        builds them)."""
        return {"available": self.available, "pending": self.pending, "debt": self.debt}


class Entry(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = models.BigIntegerField(help_text="Positive for credits, negative for debits.")
    uncovered = models.BigIntegerField(default=0, help_text="Part of a debit no lot covered yet (debt).")
    # The caller's key (up to 255 characters) prefixed by who sent it, e.g. "pos:12:<key>".
    key = models.CharField(max_length=320, null=True, blank=True, help_text="Idempotency key, unique per program.")
    occurred_at = models.DateTimeField(help_text="When it happened in the business (the purchase time, say).")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was posted.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    counterpart = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Other side of a transfer."
    )
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        ordering = ["-occurred_at", "-id"]
        permissions = [("adjust_points", "Can add or remove members' points by hand")]
        constraints = [
            models.UniqueConstraint(fields=["program", "key"], name="entry_key_unique_per_program"),
            models.CheckConstraint(
                condition=(
                    Q(amount__gt=0, uncovered=0) | Q(amount__lt=0, uncovered__gte=0, uncovered__lte=-F("amount"))
                ),
                name="entry_amount_and_uncovered_consistent",
            ),
            models.CheckConstraint(
                condition=(
                    (Q(kind__in=CREDIT_KINDS) & Q(amount__gt=0))
                    | (Q(kind__in=DEBIT_KINDS) & Q(amount__lt=0))
                    | Q(kind=EntryKind.ADJUST)
                ),
                name="entry_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.ADJUST) | (Q(actor__isnull=False) & ~Q(reason="")),
                name="entry_adjustment_has_actor_and_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-occurred_at", "-id"], name="entry_member_time_idx"),
            models.Index(fields=["member", "id"], name="entry_member_debt_idx", condition=Q(uncovered__gt=0)),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+d} (member #{self.member_id})"

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


class Lot(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="lots")
    entry = models.OneToOneField(Entry, on_delete=models.PROTECT, related_name="lot")
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    pending = models.BooleanField(help_text="Not spendable until available_at (return window).")
    occurred_at = models.DateTimeField()
    available_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True, help_text="When the member was told it expires soon.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=F("amount")), name="lot_remaining_within_amount"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=F("occurred_at")),
                name="lot_expires_after_it_occurred",
            ),
        ]
        indexes = [
            # Spending order: soonest expiry first, never-expiring last, ties by age.
            # (PostgreSQL sorts NULLs last in ascending order, as the spend order wants.)
            models.Index(
                fields=["member", "expires_at", "occurred_at", "id"],
                name="lot_member_spend_order_idx",
                condition=Q(remaining__gt=0),
            ),
            models.Index(fields=["available_at"], name="lot_pending_due_idx", condition=Q(pending=True)),
            models.Index(fields=["expires_at"], name="lot_expiry_due_idx", condition=Q(remaining__gt=0)),
        ]

    def __str__(self) -> str:
        return f"Lot #{self.pk}: {self.remaining}/{self.amount}"


class Allocation(models.Model):
    """How much of one lot a debit entry consumed."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="allocations")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="allocations")
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_positive"),
            models.UniqueConstraint(fields=["entry", "lot"], name="allocation_once_per_entry_and_lot"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} from lot #{self.lot_id}"


def lifetime_deltas(kind: str, amount: int) -> dict[str, int]:
    """How an entry of `kind` and signed `amount` moves the account's lifetime totals.

    Linear in `amount` for a given kind and sign, so `check_ledger` can apply it
    to sums grouped by kind and sign.
    """
    if kind in (EntryKind.EARN, EntryKind.TRANSFER_IN) or (kind == EntryKind.ADJUST and amount > 0):
        return {"earned": amount}
    if kind in (EntryKind.REDEEM, EntryKind.REFUND):
        # A refund gives back points spent on a reward: it undoes part of `redeemed`.
        return {"redeemed": -amount}
    if kind == EntryKind.EXPIRE:
        return {"expired": -amount}
    return {}
