"""What the analytics refresh stores: per-member figures and segments, the RFM grid, CLV fits, acquisition
costs and NPS answers (DESIGN.md section 8).

`MemberAnalytics` is one row per member, rewritten by the refresh (set-based); the member lists filter on
it (segment, P(alive), predicted CLV). `SegmentChange` keeps each member's segment history: entering a
segment such as At Risk is an event later work acts on.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from members.models import Member, Program, TimeUnit


class RfmSegment(models.Model):
    """One range of the RFM grid: members whose R score and mean of F and M scores fall in it.

    A program's segments are tried by `priority` (lowest first); the first that matches names the member's
    segment. A program without rows uses the default grid (`analytics.rfm.DEFAULT_GRID`)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rfm_segments")
    name = models.CharField(max_length=64)
    priority = models.PositiveSmallIntegerField(help_text="Lower is tried first; the first match wins.")
    r_min = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    r_max = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    fm_min = models.DecimalField(
        max_digits=2, decimal_places=1, validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(5))]
    )
    fm_max = models.DecimalField(
        max_digits=2, decimal_places=1, validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(5))]
    )
    description = models.TextField(blank=True, help_text="Who they are and what to do with them.")

    class Meta:
        db_table = "loyalty_rfmsegment"  # the table keeps the name it had in `loyalty`
        verbose_name = "RFM segment"
        ordering = ["program", "priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "name"], name="rfm_segment_name_unique_per_program"),
            models.CheckConstraint(condition=Q(r_min__lte=F("r_max")), name="rfm_segment_r_range"),
            models.CheckConstraint(condition=Q(fm_min__lte=F("fm_max")), name="rfm_segment_fm_range"),
        ]

    def __str__(self) -> str:
        return self.name


class MemberAnalytics(models.Model):
    """A member's purchase figures, RFM scores and segment, and CLV, as of the last refresh."""

    member = models.OneToOneField(Member, primary_key=True, on_delete=models.CASCADE, related_name="analytics")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField(help_text="The refresh's as-of time.")
    first_purchase_at = models.DateTimeField(null=True, blank=True)
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    purchases = models.PositiveIntegerField(default=0, help_text="Purchases not fully returned (frequency).")
    purchase_days = models.PositiveIntegerField(default=0, help_text="Distinct days with a purchase.")
    monetary = models.DecimalField(max_digits=16, decimal_places=2, default=0, help_text="Spend less returns.")
    average_order_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    mean_days_between = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="Between purchase days; needs two."
    )
    next_purchase_expected_at = models.DateTimeField(null=True, blank=True)
    recency_days = models.PositiveIntegerField(null=True, blank=True, help_text="Days since the last purchase.")
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    segment = models.CharField(max_length=64, blank=True, help_text="Empty: no purchase yet.")
    segment_since = models.DateTimeField(null=True, blank=True)
    clv_historical = models.DecimalField(
        max_digits=16, decimal_places=2, null=True, blank=True, help_text="Margin on spend to date."
    )
    p_alive = models.FloatField(null=True, blank=True, help_text="BG/NBD probability the member is still active.")
    expected_purchases = models.FloatField(null=True, blank=True, help_text="Over the program's CLV horizon.")
    clv_predicted = models.DecimalField(
        max_digits=16, decimal_places=2, null=True, blank=True, help_text="Discounted margin over the horizon."
    )

    class Meta:
        db_table = "loyalty_memberanalytics"  # the table keeps the name it had in `loyalty`
        verbose_name = "member analytics"
        verbose_name_plural = "member analytics"
        indexes = [
            models.Index(fields=["program", "segment"], name="analytics_program_segment_idx"),
            models.Index(fields=["program", "p_alive"], name="analytics_program_alive_idx"),
            models.Index(fields=["program", "clv_predicted"], name="analytics_program_clv_idx"),
        ]

    def __str__(self) -> str:
        return f"Analytics of member #{self.member_id}"


class SegmentChange(models.Model):
    """A member moved from one RFM segment to another at a refresh."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="segment_changes")
    from_segment = models.CharField(max_length=64, blank=True)
    to_segment = models.CharField(max_length=64, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "loyalty_segmentchange"  # the table keeps the name it had in `loyalty`
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["program", "changed_at"], name="segment_change_program_idx"),
            models.Index(fields=["member", "changed_at"], name="segment_change_member_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.member_id}: {self.from_segment or '-'} → {self.to_segment or '-'}"


class ClvFit(models.Model):
    """One maximum-likelihood fit of BG/NBD and Gamma-Gamma on a program's purchases as of a date."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="clv_fits")
    as_of = models.DateTimeField()
    time_unit = models.CharField(max_length=8, choices=TimeUnit.choices, default=TimeUnit.WEEKS)
    members_used = models.PositiveIntegerField(help_text="Members with at least one purchase.")
    repeat_members = models.PositiveIntegerField(help_text="Members with repeat purchases (Gamma-Gamma).")
    params = models.JSONField(help_text="r, alpha, a, b (BG/NBD); p, q, gamma (Gamma-Gamma).")
    log_likelihood = models.JSONField(help_text="Per model.")
    converged = models.BooleanField()
    message = models.TextField(blank=True)
    horizon_months = models.PositiveSmallIntegerField()
    discount_rate = models.DecimalField(max_digits=6, decimal_places=4, help_text="Monthly.")
    margin_rate = models.DecimalField(max_digits=5, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "loyalty_clvfit"  # the table keeps the name it had in `loyalty`
        verbose_name = "CLV fit"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"CLV fit of {self.program} as of {self.as_of:%Y-%m-%d}"


class AcquisitionCost(models.Model):
    """What a program spent to acquire members through one channel in one period (entered by managers)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="acquisition_costs")
    channel = models.CharField(max_length=64, help_text="As on members: acquisition_channel.")
    period_start = models.DateField()
    period_end = models.DateField()
    cost = models.DecimalField(max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal(0))])
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "loyalty_acquisitioncost"  # the table keeps the name it had in `loyalty`
        ordering = ["program", "channel", "period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "channel", "period_start"], name="acquisition_cost_unique_per_period"
            ),
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="acquisition_cost_period"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="acquisition_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.period_start}–{self.period_end}: {self.cost}"


class NpsSource(models.TextChoices):
    APP = "app", "Member app"
    INTEGRATION = "integration", "Integration API"
    IMPORT = "import", "Import"


class NpsAnswer(models.Model):
    """A member's answer to "How likely are you to recommend us?" (0–10)."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="nps_answers")
    score = models.PositiveSmallIntegerField(validators=[MaxValueValidator(10)])
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=NpsSource.choices)
    answered_at = models.DateTimeField()

    class Meta:
        db_table = "loyalty_npsanswer"  # the table keeps the name it had in `loyalty`
        verbose_name = "NPS answer"
        ordering = ["-answered_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(score__lte=10), name="nps_score_0_to_10")]
        indexes = [
            models.Index(fields=["program", "answered_at"], name="nps_program_time_idx"),
            models.Index(fields=["member", "answered_at"], name="nps_member_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.score} from member #{self.member_id}"
