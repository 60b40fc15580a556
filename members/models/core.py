"""Programs (tenants), members, API keys and idempotency records.

`Program` lives here rather than in `loyalty` because every member belongs to
one and imports point one way (members <- loyalty <- rewards): this app is the
base the others build on and knows nothing about points.
"""

import zoneinfo
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from members.expiry import ExpiryPolicy, expiry_date

currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code, e.g. EUR.")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Prague.")


class TierMetric(models.TextChoices):
    QUALIFYING_POINTS = "qualifying_points", "Qualifying points (points earned on purchases)"
    SPEND = "spend", "Spend (purchase totals less returns)"
    PURCHASES = "purchases", "Number of purchases"


class TierWindow(models.TextChoices):
    ROLLING = "rolling", "Rolling window of N days"
    CALENDAR_YEAR = "calendar_year", "Calendar year"


class TierDowngrade(models.TextChoices):
    HIGHEST_QUALIFIED = "highest_qualified", "To the highest tier still qualified for"
    ONE_LEVEL = "one_level", "One level down at most"


class TimeUnit(models.TextChoices):
    DAYS = "days", "Days"
    WEEKS = "weeks", "Weeks"


class Program(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, validators=[currency_validator], help_text="ISO 4217 code.")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    points_name = models.CharField(max_length=40, default="points")
    point_value = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Money value of one point in the program currency (for liability).",
    )
    pending_days = models.PositiveSmallIntegerField(
        default=0, help_text="Return window: days before purchase points become spendable (0 = at once)."
    )
    expiry_policy = models.CharField(max_length=16, choices=ExpiryPolicy.choices, default=ExpiryPolicy.NEVER)
    expiry_period = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(1)],
        help_text="N for 'N days after earning' and 'end of the Nth month after earning'.",
    )
    expiry_warning_days = models.PositiveSmallIntegerField(
        default=30, help_text="Members are warned this many days before their points expire."
    )
    tier_metric = models.CharField(max_length=20, choices=TierMetric.choices, default=TierMetric.QUALIFYING_POINTS)
    tier_window = models.CharField(max_length=16, choices=TierWindow.choices, default=TierWindow.ROLLING)
    tier_window_days = models.PositiveSmallIntegerField(
        default=365, validators=[MinValueValidator(1)], help_text="Length of the rolling qualification window."
    )
    tier_validity_days = models.PositiveSmallIntegerField(
        default=365,
        validators=[MinValueValidator(1)],
        help_text="A tier is reviewed this many days after it was reached.",
    )
    tier_grace_days = models.PositiveSmallIntegerField(
        default=0, help_text="Days after the review date before a member who no longer qualifies is moved down."
    )
    tier_downgrade = models.CharField(
        max_length=20, choices=TierDowngrade.choices, default=TierDowngrade.HIGHEST_QUALIFIED
    )
    attainability_window_days = models.PositiveSmallIntegerField(
        default=180,
        validators=[MinValueValidator(1)],
        help_text="A member's earning pace is measured over this many past days (reward and tier estimates).",
    )
    attainability_target_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(1)],
        help_text="The attainability report warns when the typical member needs longer than this for a first reward.",
    )
    margin_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.3"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="Share of spend that is margin (0.3 = 30 %), for customer lifetime value.",
    )
    inactive_days = models.PositiveSmallIntegerField(
        default=90, validators=[MinValueValidator(1)], help_text="A member with no purchase this long is inactive."
    )
    clv_horizon_months = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="Predicted customer lifetime value covers this many months ahead.",
    )
    clv_discount_rate = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="Monthly discount rate of predicted value (0.01 = 1 % a month).",
    )
    clv_time_unit = models.CharField(
        max_length=8, choices=TimeUnit.choices, default=TimeUnit.WEEKS, help_text="Time unit of the CLV model fit."
    )
    config_version = models.PositiveIntegerField(
        default=0, editable=False, help_text="Bumped whenever earning rules or tiers change (cache key)."
    )
    is_active = models.BooleanField(default=True)
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="managed_programs",
        help_text="Staff who may manage this program in the admin and the manager API.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="program_currency_iso"),
            models.CheckConstraint(condition=Q(expiry_period__gte=1), name="program_expiry_period_positive"),
            models.CheckConstraint(condition=Q(point_value__gte=0), name="program_point_value_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def available_at_for(self, earned_at: datetime) -> datetime:
        return earned_at + timedelta(days=self.pending_days)

    def expires_at_for(self, earned_at: datetime) -> datetime | None:
        return expiry_date(
            policy=ExpiryPolicy(self.expiry_policy), period=self.expiry_period, earned_at=earned_at, tz=self.tz
        )


class MemberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


class Member(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="members")
    external_id = models.CharField(max_length=100, null=True, blank=True, help_text="The shop's customer id.")
    card = models.CharField(max_length=32, help_text="Card number, digits and letters only.")
    email = models.EmailField(null=True, blank=True)
    phone = models.CharField(max_length=32, null=True, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    enrolled_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=MemberStatus.choices, default=MemberStatus.ACTIVE)
    acquisition_channel = models.CharField(max_length=64, blank=True)
    consent_email = models.BooleanField(default=False)
    consent_sms = models.BooleanField(default=False)
    consent_push = models.BooleanField(default=False)
    referral_code = models.CharField(max_length=16)
    referred_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="member"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "card"], name="member_card_unique_per_program"),
            models.UniqueConstraint(fields=["program", "external_id"], name="member_external_id_unique_per_program"),
            models.UniqueConstraint(fields=["program", "email"], name="member_email_unique_per_program"),
            models.UniqueConstraint(fields=["program", "phone"], name="member_phone_unique_per_program"),
            models.UniqueConstraint(fields=["program", "referral_code"], name="member_referral_code_unique"),
            models.CheckConstraint(condition=Q(status__in=MemberStatus.values), name="member_status_valid"),
        ]
        indexes = [models.Index(fields=["program", "status", "enrolled_at"], name="member_program_status_idx")]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name or self.external_id or self.card} (#{self.pk})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ApiKey(models.Model):
    """A key a till or an e-shop sends as `Authorization: Api-Key <key>`.

    Only a SHA-256 digest is stored: keys are long random strings, so a slow
    password hash would add latency to every sale without adding safety.
    """

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    store = models.CharField(max_length=64, blank=True, help_text="Optional store this key is limited to.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The first answer to a write sent with an `Idempotency-Key` header."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    scope = models.CharField(max_length=64, help_text="Who may reuse the key: one program, manager or member.")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique_per_scope")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.state})"
