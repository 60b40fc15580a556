"""Tiers of a program and the history of every member's tier changes.

A member's current tier lives on their `Account` (the row every purchase
locks anyway), so reading it costs no query of its own.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from members.models import Member, Program


class Tier(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="tiers")
    name = models.CharField(max_length=60)
    rank = models.PositiveSmallIntegerField(help_text="Higher is better; the lowest tier usually has threshold 0.")
    threshold = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Metric value needed to reach the tier (points, money or purchases, per the program setting).",
    )
    earn_multiplier = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal(1))],
        help_text="Points from rules are multiplied by this (1 = no bonus).",
    )
    benefits = models.TextField(blank=True, help_text="Shown to members: what the tier gives.")

    class Meta:
        ordering = ["program", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["program", "rank"], name="tier_rank_unique_per_program"),
            models.UniqueConstraint(fields=["program", "name"], name="tier_name_unique_per_program"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_not_negative"),
            models.CheckConstraint(condition=Q(earn_multiplier__gte=1), name="tier_multiplier_at_least_one"),
        ]

    def __str__(self) -> str:
        return self.name


class TierChangeReason(models.TextChoices):
    PROMOTION = "promotion", "Promoted by a purchase"
    REVIEW = "review", "Tier period review"
    RETURN = "return", "A return lowered the qualification"
    PIN = "pin", "Pinned by a manager"
    UNPIN = "unpin", "Pin ended"


class TierHistory(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="tier_history")
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=16, choices=TierChangeReason.choices)
    metric_value = models.DecimalField(max_digits=16, decimal_places=2)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "tier history"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "-created_at"], name="tierhistory_member_idx")]

    def __str__(self) -> str:
        return f"{self.from_tier or '-'} -> {self.to_tier or '-'} ({self.reason})"
