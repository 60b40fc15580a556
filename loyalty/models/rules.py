"""Earning rules: data a program manager edits in the admin, compiled for `loyalty.rules`."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from loyalty.models.ledger import MAX_POINTS_PER_ENTRY
from loyalty.rules import RuleKind
from members.models import Program

LIST_HELP = "Comma-separated; leave empty for no condition."


class EventName(models.TextChoices):
    SIGNUP = "signup", "Signup"
    BIRTHDAY = "birthday", "Birthday (once a year)"
    REFERRAL = "referral", "Referral (both sides, on the referee's first purchase)"
    PROFILE_COMPLETED = "profile_completed", "Profile completed"
    NPS_ANSWER = "nps_answer", "NPS answer"


class EarningRule(models.Model):
    KIND_CHOICES = [
        (RuleKind.BASE_RATE.value, "Base rate: points per currency unit"),
        (RuleKind.MULTIPLIER.value, "Multiplier: × N on matching lines or baskets"),
        (RuleKind.BONUS.value, "Fixed bonus when a condition holds"),
        (RuleKind.EVENT.value, "Event: points for signup, birthday, referral, ..."),
    ]

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="earning_rules")
    name = models.CharField(max_length=100, help_text="Shown to members as the reason for their points.")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    is_active = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower runs first.")
    stop_further = models.BooleanField(default=False, help_text="When this rule applies, skip the rules after it.")
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True, help_text="Exclusive.")
    # Conditions
    event = models.CharField(
        max_length=64,
        blank=True,
        help_text="Event rules: signup, birthday, referral, profile_completed, nps_answer or a custom event name.",
    )
    skus = models.TextField(blank=True, help_text=f"SKUs the rule is about. {LIST_HELP}")
    categories = models.TextField(blank=True, help_text=f"Categories the rule is about. {LIST_HELP}")
    excluded_skus = models.TextField(blank=True, help_text=f"SKUs that never earn (gift cards). {LIST_HELP}")
    excluded_categories = models.TextField(blank=True, help_text=f"Categories that never earn. {LIST_HELP}")
    channels = models.CharField(max_length=100, blank=True, help_text=f"pos, eshop, app, other. {LIST_HELP}")
    stores = models.TextField(blank=True, help_text=f"Store codes. {LIST_HELP}")
    weekdays = models.CharField(max_length=40, blank=True, help_text="Days of the week, 1 = Monday ... 7 = Sunday.")
    tiers = models.ManyToManyField("loyalty.Tier", blank=True, related_name="+", help_text="Only members in these.")
    min_basket = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    first_purchase = models.BooleanField(default=False, help_text="Only on the member's first purchase.")
    nth_purchase = models.PositiveIntegerField(null=True, blank=True, help_text="Only on the member's n-th purchase.")
    # Effect
    rate = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text="Base rate: points per currency unit, e.g. 0.1 = one point per 10 CZK.",
    )
    multiplier = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal(1))],
        help_text="Multiplier: 2 = double points.",
    )
    points = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_POINTS_PER_ENTRY)],  # more could never be posted: every purchase a 422
        help_text="Fixed bonus and event rules: points awarded.",
    )
    # Limits
    cap_per_purchase = models.PositiveIntegerField(null=True, blank=True)
    cap_per_member_day = models.PositiveIntegerField(null=True, blank=True)
    cap_per_member_month = models.PositiveIntegerField(null=True, blank=True)
    budget_total = models.PositiveBigIntegerField(null=True, blank=True, help_text="Total points this rule may give.")
    budget_used = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["program", "priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_total__isnull=True) | Q(budget_used__lte=F("budget_total")),
                name="earningrule_budget_not_overspent",
            ),
            models.CheckConstraint(
                condition=Q(active_from__isnull=True)
                | Q(active_until__isnull=True)
                | Q(active_until__gt=F("active_from")),
                name="earningrule_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {**self._effect_errors(), **self._condition_errors()}
        if errors:
            raise ValidationError(errors)

    def _effect_errors(self) -> dict[str, str]:
        """What the kind needs to give points."""
        errors: dict[str, str] = {}
        kind = RuleKind(self.kind) if self.kind in RuleKind._value2member_map_ else None
        if kind == RuleKind.BASE_RATE and not self.rate:
            errors["rate"] = "A base rate rule needs a rate above 0."
        if kind == RuleKind.MULTIPLIER and self.multiplier <= 1:
            errors["multiplier"] = "A multiplier rule needs a multiplier above 1."
        if kind in (RuleKind.BONUS, RuleKind.EVENT) and not self.points:
            errors["points"] = "Bonus and event rules need a number of points above 0."
        if kind == RuleKind.EVENT and not self.event.strip():
            errors["event"] = "Name the event, e.g. signup, birthday or a custom name."
        if kind != RuleKind.EVENT and self.event:
            errors["event"] = "Only event rules have an event."
        if self.budget_total is not None and self.budget_total < self.budget_used:
            errors["budget_total"] = (
                f"The rule has already given {self.budget_used} points; the budget cannot be lower."
            )
        return errors

    def _condition_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = "The end must be after the start."
        if any(day not in {"1", "2", "3", "4", "5", "6", "7"} for day in split_list(self.weekdays)):
            errors["weekdays"] = "Use numbers 1 (Monday) to 7 (Sunday)."
        bad_channels = set(split_list(self.channels)) - {"pos", "eshop", "app", "other"}
        if bad_channels:
            errors["channels"] = f"Unknown channel: {', '.join(sorted(bad_channels))}."
        return errors


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
