"""Purchases, their lines, returns and the per-rule awards they earned."""

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Case, DecimalField, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from config.money import DecimalDigits
from loyalty.models.ledger import Entry
from loyalty.models.rules import EarningRule
from members.models import Member, Program


class Channel(models.TextChoices):
    POS = "pos", "Till"
    ESHOP = "eshop", "E-shop"
    APP = "app", "App"
    OTHER = "other", "Other"


MONEY: DecimalDigits = {"max_digits": 14, "decimal_places": 2}

# The one definition of a fully returned purchase: returns reached its total, and the total is above 0. A purchase
# for 0 has nothing to return, so it always counts (as a visit) in member figures, metrics, tiers and CLV.
FULLY_RETURNED = Q(total__gt=0, returned_total__gte=F("total"))


# A purchase's net amount as of the moment given to `as_of()` / `counted_as_of()`.
NET_THEN = F("total") - F("returned_then")


class PurchaseQuerySet(models.QuerySet):
    def counted(self) -> "PurchaseQuerySet":
        """Purchases not fully returned (see FULLY_RETURNED): the ones figures count."""
        return self.exclude(FULLY_RETURNED)

    def as_of(self, moment: datetime, *, returns_after: bool = True) -> "PurchaseQuerySet":
        """Purchases made by `moment` (occurred_at <= it) as they stood then: annotated `returned_then`, what had
        been returned by `moment` (returns dated after it are taken off `returned_total`: a purchase returned
        later is not returned as of `moment`). The subquery runs only for purchases with a return (PostgreSQL
        evaluates CASE lazily); a caller that knows no return is dated after `moment` (a refresh as of now)
        passes `returns_after=False` and skips it."""
        if not returns_after:
            return self.filter(occurred_at__lte=moment).annotate(returned_then=F("returned_total"))
        later = (
            Return.objects.filter(purchase=OuterRef("pk"), occurred_at__gt=moment)
            .order_by()
            .values("purchase")
            .annotate(amount=Sum("amount"))
            .values("amount")
        )
        money: DecimalField[Decimal, Decimal] = DecimalField(**MONEY)
        zero = Value(Decimal(0), output_field=money)
        returned_later = Case(
            When(returned_total__gt=0, then=Coalesce(Subquery(later, output_field=money), zero)),
            default=zero,
            output_field=money,
        )
        return self.filter(occurred_at__lte=moment).annotate(returned_then=F("returned_total") - returned_later)

    def counted_as_of(self, moment: datetime, *, returns_after: bool = True) -> "PurchaseQuerySet":
        """Purchases made by `moment` and not fully returned by then (FULLY_RETURNED as of `moment`); their net
        amount then is NET_THEN."""
        return self.as_of(moment, returns_after=returns_after).exclude(total__gt=0, returned_then__gte=F("total"))


class Purchase(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="purchases")
    external_id = models.CharField(max_length=100, help_text="The shop's receipt or order id.")
    store = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.POS)
    occurred_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total = models.DecimalField(**MONEY)
    eligible_amount = models.DecimalField(**MONEY, help_text="Part of the total that earned base points.")
    points_awarded = models.BigIntegerField(default=0)
    points_reversed = models.BigIntegerField(default=0)
    returned_total = models.DecimalField(**MONEY, default=0)
    returned_eligible = models.DecimalField(**MONEY, default=0)
    entry = models.OneToOneField(Entry, null=True, blank=True, on_delete=models.PROTECT, related_name="purchase")
    awards = models.JSONField(default=list, help_text="Which rule gave how many points.")
    outcome = models.JSONField(default=dict, help_text="Balances and tier change as first answered (for retries).")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PurchaseQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "external_id"], name="purchase_external_id_unique"),
            models.CheckConstraint(condition=Q(total__gte=0), name="purchase_total_not_negative"),
            models.CheckConstraint(
                condition=Q(points_reversed__gte=0, points_reversed__lte=F("points_awarded")),
                name="purchase_reversal_within_award",
            ),
            models.CheckConstraint(
                condition=Q(returned_total__gte=0, returned_total__lte=F("total")), name="purchase_returns_within_total"
            ),
        ]
        indexes = [models.Index(fields=["member", "occurred_at"], name="purchase_member_time_idx")]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.total} {self.currency})"

    @property
    def fully_returned(self) -> bool:
        """See FULLY_RETURNED."""
        return self.total > 0 and self.returned_total >= self.total


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="lines")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=64)
    category = models.CharField(max_length=64, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    eligible = models.BooleanField(default=True, help_text="Earned base points (not excluded).")
    returned_quantity = models.DecimalField(max_digits=12, decimal_places=3, default=0)
    returned_amount = models.DecimalField(**MONEY, default=0)

    class Meta:
        ordering = ["purchase", "position"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="purchaseline_quantity_positive"),
            models.CheckConstraint(
                condition=Q(returned_quantity__gte=0, returned_quantity__lte=F("quantity")),
                name="purchaseline_returned_quantity_within",
            ),
            models.CheckConstraint(
                condition=Q(returned_amount__gte=0, returned_amount__lte=F("amount")),
                name="purchaseline_returned_amount_within",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class Return(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="returns")
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="returns")
    external_id = models.CharField(max_length=100)
    amount = models.DecimalField(**MONEY, help_text="Money returned.")
    eligible_amount = models.DecimalField(**MONEY, help_text="Part of it that had earned points.")
    points_reversed = models.BigIntegerField(default=0)
    lines = models.JSONField(default=list, help_text="Returned lines: sku, quantity, amount.")
    entry = models.OneToOneField(Entry, null=True, blank=True, on_delete=models.PROTECT, related_name="return_record")
    outcome = models.JSONField(default=dict, help_text="Balances and tier change as first answered (for retries).")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "external_id"], name="return_external_id_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="return_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} of {self.purchase_id}"


class Award(models.Model):
    """Points one rule gave one member: the member sees why, and per-member caps count these."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="awards")
    rule = models.ForeignKey(EarningRule, null=True, blank=True, on_delete=models.PROTECT, related_name="awards")
    rule_name = models.CharField(max_length=120)
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="awards", help_text="Its purchase, if any.")
    event = models.CharField(max_length=64, blank=True)
    points = models.BigIntegerField()
    local_date = models.DateField(help_text="Day in the program's time zone (for daily and monthly caps).")
    basis = models.JSONField(
        default=dict,
        blank=True,
        help_text="For a purchase: the award's share of each line, its minimum basket and the lines that met its "
        "SKU condition, as evaluated; returns reverse by these (loyalty.reversals).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="award_points_positive")]
        indexes = [models.Index(fields=["member", "rule", "local_date"], name="award_member_rule_day_idx")]

    def __str__(self) -> str:
        return f"{self.points} from {self.rule_name}"
