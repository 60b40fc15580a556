"""The reward catalog and the vouchers members get for their points.

A `Voucher` copies kind, value, minimum basket and scope (SKUs, categories)
from its reward when it is issued: editing the catalog later never changes what a member already holds.
"""

from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from config.money import DecimalDigits
from loyalty.models import MAX_POINTS_PER_ENTRY, Entry, Tier
from members.models import Member, Program
from rewards.codes import format_code

MONEY: DecimalDigits = {"max_digits": 14, "decimal_places": 2}


SCOPE_ITEM_LENGTH = 64  # as a purchase line's SKU and category
SCOPE_ITEMS = 1000


def scope_list(values: Any) -> list[str]:
    """A scope's SKUs or categories: distinct non-empty strings, in the order given; ValueError otherwise."""
    if values is None:
        return []
    if not isinstance(values, list | tuple) or not all(isinstance(value, str) for value in values):
        raise ValueError("Give a list of strings.")
    cleaned = list(dict.fromkeys(value.strip() for value in values))
    if "" in cleaned or any(len(value) > SCOPE_ITEM_LENGTH for value in cleaned):
        raise ValueError(f"Each entry needs 1 to {SCOPE_ITEM_LENGTH} characters.")
    if len(cleaned) > SCOPE_ITEMS:
        raise ValueError(f"At most {SCOPE_ITEMS} entries.")
    return cleaned


class RewardKind(models.TextChoices):
    FIXED_DISCOUNT = "fixed_discount", "Fixed discount"
    PERCENT_DISCOUNT = "percent_discount", "Percent discount"
    FREE_PRODUCT = "free_product", "Free product"
    GIFT = "gift", "Gift"


class Reward(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="rewards")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=RewardKind.choices)
    value = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Money off (fixed discount), percent (percent discount) or the product's price (free product).",
    )
    sku = models.CharField(max_length=64, blank=True, help_text="The free product's SKU.")
    points_cost = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_POINTS_PER_ENTRY)],
        help_text="At most the points one ledger entry may hold (docs/api.md, Limits).",
    )
    min_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Lowest tier to redeem it."
    )
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Vouchers left to issue; empty = unlimited.")
    per_member_limit = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty = no limit."
    )
    voucher_valid_days = models.PositiveSmallIntegerField(default=30, validators=[MinValueValidator(1)])
    min_basket = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="The least amount in scope (the whole basket when the scope is empty) the voucher needs.",
    )
    scope_skus = models.JSONField(
        default=list, blank=True, help_text="SKUs the discount applies to; with no SKUs or categories, every line."
    )
    scope_categories = models.JSONField(default=list, blank=True, help_text="Categories the discount applies to.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["program", "points_cost", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(points_cost__gt=0), name="reward_points_cost_positive"),
            models.CheckConstraint(condition=Q(stock__isnull=True) | Q(stock__gte=0), name="reward_stock_not_negative"),
            models.CheckConstraint(
                condition=Q(per_member_limit__isnull=True) | Q(per_member_limit__gte=1),
                name="reward_per_member_limit_positive",
            ),
            models.CheckConstraint(condition=Q(voucher_valid_days__gte=1), name="reward_voucher_valid_days_positive"),
            models.CheckConstraint(
                condition=(
                    Q(active_from__isnull=True) | Q(active_until__isnull=True) | Q(active_until__gt=F("active_from"))
                ),
                name="reward_window_ordered",
            ),
            models.CheckConstraint(
                condition=~Q(kind=RewardKind.PERCENT_DISCOUNT) | Q(value__gt=0, value__lte=100),
                name="reward_percent_within_range",
            ),
        ]
        indexes = [models.Index(fields=["program", "is_active"], name="reward_program_active_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.kind == RewardKind.PERCENT_DISCOUNT and not (self.value is not None and 0 < self.value <= 100):
            errors["value"] = "A percent discount needs a percentage above 0 and at most 100."
        if self.kind in (RewardKind.FIXED_DISCOUNT, RewardKind.FREE_PRODUCT) and not self.value:
            errors["value"] = "Give the discount amount or the product's price."
        if self.kind == RewardKind.FREE_PRODUCT and not self.sku:
            errors["sku"] = "Give the SKU of the free product."
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = "The end must be after the start."
        if self.min_tier_id and self.program_id and cast(Tier, self.min_tier).program_id != self.program_id:
            errors["min_tier"] = "Choose a tier of the reward's program."
        for name in ("scope_skus", "scope_categories"):
            try:
                setattr(self, name, scope_list(getattr(self, name)))
            except ValueError as exc:
                errors[name] = str(exc)
        if errors:
            raise ValidationError(errors)


class VoucherStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    REDEEMED = "redeemed", "Redeemed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class Voucher(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="vouchers")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers", help_text="None: campaign."
    )
    reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers")
    code = models.CharField(max_length=32, help_text="Normalized: upper case, no dashes.")
    kind = models.CharField(max_length=20, choices=RewardKind.choices)
    value = models.DecimalField(**MONEY, null=True, blank=True)
    min_basket = models.DecimalField(**MONEY, null=True, blank=True)
    scope_skus = models.JSONField(default=list, blank=True, help_text="Copied from the reward: SKUs in scope.")
    scope_categories = models.JSONField(default=list, blank=True, help_text="Copied from the reward.")
    status = models.CharField(max_length=16, choices=VoucherStatus.choices, default=VoucherStatus.ISSUED)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    points_cost = models.PositiveIntegerField(default=0, help_text="Points spent on it (0 for a campaign voucher).")
    redemption_entry = models.ForeignKey(Entry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refund_entry = models.ForeignKey(Entry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_reference = models.CharField(max_length=100, blank=True, help_text="The till's receipt or order id.")
    redeemed_discount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="The discount given, on the basket's lines in scope."
    )
    redeem_key = models.CharField(
        max_length=320, null=True, blank=True, help_text="Idempotency key of the reward redemption that issued it."
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    campaign = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        permissions = [("cancel_voucher", "Can cancel vouchers and give their points back")]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="voucher_code_unique_per_program"),
            models.UniqueConstraint(fields=["program", "redeem_key"], name="voucher_redeem_key_unique_per_program"),
            models.CheckConstraint(condition=Q(status__in=VoucherStatus.values), name="voucher_status_valid"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("issued_at")), name="voucher_expires_after_issue"),
            models.CheckConstraint(
                condition=~Q(status=VoucherStatus.REDEEMED) | Q(redeemed_at__isnull=False),
                name="voucher_redeemed_has_time",
            ),
        ]
        indexes = [
            # The code lookup is served by the unique constraint's index (program, code).
            models.Index(fields=["expires_at"], name="voucher_expiry_due_idx", condition=Q(status="issued")),
            models.Index(fields=["member", "reward", "status"], name="voucher_member_reward_idx"),
        ]

    def __str__(self) -> str:
        return self.display_code

    @property
    def display_code(self) -> str:
        return format_code(self.code)


class HoldStatus(models.TextChoices):
    HELD = "held", "Held"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class HoldBasket(models.Model):
    """An e-shop basket that points pay part of. Its reference is unique per program and belongs to one
    member; every hold on it locks this row, so the share cap holds across all of the basket's holds,
    concurrent ones included (holds.py)."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=100, help_text="The e-shop's basket or order id.")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY, help_text="The basket's total, the base of the points' share.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "reference"], name="hold_basket_unique_per_program"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_basket_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.reference


class Hold(models.Model):
    """Points held against an e-shop basket: spent at once (so they cannot be spent twice),
    kept on payment (captured), given back to their lots on release or expiry."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="holds")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="holds")
    basket_reference = models.CharField(max_length=100, help_text="The e-shop's basket or order id.")
    basket_amount = models.DecimalField(**MONEY)
    points = models.PositiveIntegerField()
    money_value = models.DecimalField(**MONEY, help_text="What the points pay, at the program's point value.")
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.HELD)
    expires_at = models.DateTimeField(help_text="A hold neither captured nor released by then is released.")
    key = models.CharField(max_length=320, null=True, blank=True, help_text="Idempotency key, unique per program.")
    debit_entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+")
    refund_entry = models.ForeignKey(Entry, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True, help_text="When it was released or expired.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "key"], name="hold_key_unique_per_program"),
            models.CheckConstraint(condition=Q(status__in=HoldStatus.values), name="hold_status_valid"),
            models.CheckConstraint(condition=Q(points__gt=0), name="hold_points_positive"),
            models.CheckConstraint(
                condition=Q(basket_amount__gt=0, money_value__gte=0, money_value__lte=F("basket_amount")),
                name="hold_money_within_basket",
            ),
            models.CheckConstraint(
                condition=~Q(status=HoldStatus.CAPTURED) | Q(captured_at__isnull=False),
                name="hold_captured_has_time",
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="hold_expiry_due_idx", condition=Q(status="held"))]

    def __str__(self) -> str:
        return f"Hold #{self.pk}: {self.points} points on {self.basket_reference}"
