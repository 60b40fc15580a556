"""Manager API: program figures under /api/manage/v1/analytics/: retention, cohorts, orders, NPS, liability.

Each takes `?program=<slug>` and, where they make sense, the member filters `tier` (id), `segment` and
`channel` (acquisition channel). Definitions are in `loyalty.analytics.metrics` and `loyalty.analytics.nps`;
months and days are the program's, in its time zone.
"""

import re
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ManageAPIView, parse
from config.problems import problems
from members.models import Program

from ..analytics import metrics, nps
from ..analytics.metrics import MemberFilters, Period, add_months, local_midnight, month_of
from ..models import Tier

TAGS = ["Manage: analytics"]
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
ERRORS = " Errors: validation_error (400: a bad date or month, a tier of another program), program_not_found (404)."
FILTERS = (
    " Filters select members by their current tier (`tier`, an id), RFM segment at the last analytics refresh "
    "(`segment`) and acquisition channel (`channel`)."
)


# --- Query parameters ---------------------------------------------------------------------------------------


# Years 1970 to 2999, as EARLIEST and LATEST: the schema promises no month the field refuses.
MONTH_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN, "example": "2026-03"})
class MonthField(serializers.CharField):
    """A calendar month as YYYY-MM, parsed to its first day."""

    def to_internal_value(self, data: Any) -> date:
        text = super().to_internal_value(data)
        if not re.fullmatch(MONTH_PATTERN, text):
            raise serializers.ValidationError("Give a month as YYYY-MM, e.g. 2026-03.")
        return _in_range(date(int(text[:4]), int(text[5:7]), 1))  # the pattern leaves no year 0


def _in_range(day: date) -> date:
    if not EARLIEST <= day <= LATEST:
        raise serializers.ValidationError(f"Must lie between {EARLIEST} and {LATEST}.")
    return day


class DayField(serializers.DateField):
    def to_internal_value(self, value: Any) -> date:
        return _in_range(super().to_internal_value(value))


class ProgramQuery(serializers.Serializer):
    program = serializers.SlugField(max_length=64, help_text="Program slug.")


class MemberFilterQuery(ProgramQuery):
    tier = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="Tier id: members now in this tier."
    )
    segment = serializers.CharField(
        max_length=64, required=False, help_text="RFM segment at the last analytics refresh, e.g. Champions."
    )
    channel = serializers.CharField(max_length=64, required=False, help_text="Members' acquisition channel.")


class MonthSeriesQuery(MemberFilterQuery):
    months = serializers.IntegerField(min_value=1, max_value=36, default=12, help_text="How many months (1–36).")
    through = MonthField(required=False, help_text="The last month, YYYY-MM.")


class RetentionQuery(MonthSeriesQuery):
    start = DayField(required=False, help_text="One period instead of months: its first day.")
    end = DayField(required=False, help_text="One period instead of months: the day after its last (exclusive).")

    def validate(self, data: dict) -> dict:
        if ("start" in data) != ("end" in data):
            raise serializers.ValidationError("Give both start and end, or neither.")
        if "start" in data and "through" in data:
            raise serializers.ValidationError("Give either a period (start, end) or months up to through.")
        return _ordered(data)


def _ordered(data: dict) -> dict:
    if "start" in data and "end" in data and data["end"] <= data["start"]:
        raise serializers.ValidationError({"end": ["Must be after start."]})
    return data


class CohortQuery(MemberFilterQuery):
    months = serializers.IntegerField(min_value=1, max_value=36, default=12, help_text="How many cohorts (1–36).")
    through = MonthField(required=False, help_text="The last cohort month, YYYY-MM; the current month by default.")
    offsets = serializers.IntegerField(
        min_value=0, max_value=36, default=12, help_text="Months after the first purchase month to follow (0–36)."
    )


class PeriodQuery(MemberFilterQuery):
    start = DayField(required=False, help_text="First day of the period.")
    end = DayField(required=False, help_text="The day after the period's last (exclusive).")

    def validate(self, data: dict) -> dict:
        return _ordered(data)


class LiabilityQuery(PeriodQuery):
    start = DayField(required=False, help_text="Breakage from this day; all time when left out.")
    end = DayField(required=False, help_text="Breakage until the day before this one; all time when left out.")
    months = serializers.IntegerField(
        min_value=1, max_value=36, default=12, help_text="Months of upcoming expiries, the current one first (1–36)."
    )


# --- Responses ------------------------------------------------------------------------------------------------


class RetentionPeriodOutput(serializers.Serializer):
    start = serializers.DateField(help_text="First day of the period.")
    end = serializers.DateField(help_text="The day after its last (exclusive).")
    active_at_start = serializers.IntegerField(help_text="Members with a purchase in the inactive_days before start.")
    active_at_end = serializers.IntegerField(help_text="Members with a purchase in the inactive_days before end.")
    new = serializers.IntegerField(help_text="Active at end, first purchase ever within the period.")
    retained = serializers.IntegerField(help_text="Active at start and at end.")
    reactivated = serializers.IntegerField(help_text="Active at end, not at start, first purchase before the period.")
    retention = serializers.FloatField(
        allow_null=True, help_text="(active_at_end - new) / active_at_start, 4 decimals; null when nobody was active."
    )
    churn = serializers.FloatField(allow_null=True, help_text="1 - retention.")


class RetentionReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    timezone = serializers.CharField(help_text="Months and days are counted in this time zone.")
    inactive_days = serializers.IntegerField(help_text="The activity window of the definition.")
    periods = RetentionPeriodOutput(many=True)


class CohortOutput(serializers.Serializer):
    month = serializers.DateField(help_text="First day of the month of the members' first purchase.")
    size = serializers.IntegerField(help_text="Members whose first purchase fell in that month.")
    shares = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="For month offsets 0, 1, ...: the share of the cohort with a purchase in that month (0–1, 4 "
        "decimals); null for months not begun yet.",
    )


class CohortReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    timezone = serializers.CharField()
    offsets = serializers.IntegerField(help_text="Each cohort has offsets + 1 shares.")
    cohorts = CohortOutput(many=True, help_text="Oldest first; months without new buyers are left out.")


MONEY = {"max_digits": 16, "decimal_places": 2}


class OrderReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    currency = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField(help_text="Exclusive.")
    purchases = serializers.IntegerField(help_text="Purchases not fully returned.")
    purchasing_members = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY, help_text="Totals less returns.")
    average_order_value = serializers.DecimalField(**MONEY, allow_null=True, help_text="revenue / purchases.")
    purchase_frequency = serializers.FloatField(allow_null=True, help_text="purchases / purchasing_members.")
    repeat_members = serializers.IntegerField(help_text="Members with purchases on two days or more.")
    mean_days_between_purchases = serializers.FloatField(
        allow_null=True, help_text="Per repeat member (last day - first day) / (days - 1), averaged over them."
    )
    inactive_days = serializers.IntegerField()
    inactive_members = serializers.IntegerField(
        help_text="Active members enrolled at least inactive_days ago, no purchase in the inactive_days before end "
        "(or now, if sooner)."
    )


class NpsFiguresOutput(serializers.Serializer):
    respondents = serializers.IntegerField(help_text="Members counted (their latest answer).")
    promoters = serializers.IntegerField(help_text="Scores 9–10.")
    passives = serializers.IntegerField(help_text="Scores 7–8.")
    detractors = serializers.IntegerField(help_text="Scores 0–6.")
    nps = serializers.FloatField(allow_null=True, help_text="% promoters - % detractors (-100..100); null: none.")


class NpsMonthOutput(NpsFiguresOutput):
    month = serializers.DateField()


class NpsTierOutput(NpsFiguresOutput):
    tier_id = serializers.IntegerField(allow_null=True, help_text="Null: members without a tier.")
    tier = serializers.CharField(allow_null=True)


class NpsSegmentOutput(NpsFiguresOutput):
    segment = serializers.CharField(allow_null=True, help_text="Null: no segment yet.")


class NpsReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    start = serializers.DateField()
    end = serializers.DateField(help_text="Exclusive.")
    summary = NpsFiguresOutput(help_text="Over the whole span, each member's latest answer in it.")
    months = NpsMonthOutput(many=True, help_text="Each member's latest answer in each month.")
    tiers = NpsTierOutput(many=True, help_text="Over the whole span, by current tier.")
    segments = NpsSegmentOutput(many=True, help_text="Over the whole span, by current segment.")


class ExpiryOutput(serializers.Serializer):
    month = serializers.DateField()
    points = serializers.IntegerField()
    value = serializers.DecimalField(**MONEY)


class BreakageOutput(serializers.Serializer):
    start = serializers.DateField(allow_null=True, help_text="Null: from the beginning.")
    end = serializers.DateField(allow_null=True, help_text="Null: up to now.")
    issued = serializers.IntegerField(help_text="Points earned (purchases, events) and added by hand.")
    expired = serializers.IntegerField(help_text="Points lost to expiry.")
    rate = serializers.FloatField(allow_null=True, help_text="expired / issued, 4 decimals; null when none issued.")


class LiabilityReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    currency = serializers.CharField()
    point_value = serializers.DecimalField(max_digits=12, decimal_places=6)
    as_of = serializers.DateTimeField()
    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    outstanding = serializers.IntegerField(help_text="available + pending, of members not closed.")
    value = serializers.DecimalField(**MONEY, help_text="outstanding × point_value.")
    debt = serializers.IntegerField(help_text="Points members owe after returns (not netted).")
    expiries = ExpiryOutput(many=True, help_text="Points that will expire, by month.")
    breakage = BreakageOutput()


# --- Views --------------------------------------------------------------------------------------------------


class AnalyticsView(ManageAPIView):
    required_permissions = {"GET": ("loyalty.view_memberanalytics",)}

    def report_input(self, query: type[serializers.Serializer]) -> tuple[Program, MemberFilters, dict]:
        data = parse(query, self.request.query_params)
        program = self.managed_program(data["program"])
        tier_id = data.get("tier")
        if tier_id is not None and not Tier.objects.filter(program=program, pk=tier_id).exists():
            raise serializers.ValidationError({"tier": [f"Not a tier of {program.slug}."]})
        return program, MemberFilters(tier_id, data.get("segment"), data.get("channel")), data


def _day(program: Program, moment: datetime) -> date:
    return moment.astimezone(program.tz).date()


def _today(program: Program) -> date:
    return _day(program, timezone.now())


class RetentionView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_retention",
        tags=TAGS,
        parameters=[RetentionQuery],
        responses={200: RetentionReportOutput, **problems(400, 401, 403, 404)},
        summary="Retention and churn by month (or for one period)",
        description="A member is active at a moment when they made a purchase that is not fully returned in the "
        "program's inactive_days before it. For each period: retention = (active at end - new) / active at "
        "start, churn = 1 - retention, null when nobody was active at the start. Months by default: the last "
        "`months` up to `through` (the last complete month when left out)." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(RetentionQuery)
        if "start" in data:
            periods = [Period(local_midnight(program, data["start"]), local_midnight(program, data["end"]))]
        else:
            through = data.get("through") or add_months(_today(program), -1)
            periods = metrics.month_periods(program, months=data["months"], through=through)
        rows = [
            {**asdict(row), "start": _day(program, row.start), "end": _day(program, row.end)}
            for row in metrics.retention(program, periods, filters)
        ]
        body = {"program": program.slug, "timezone": program.timezone, "inactive_days": program.inactive_days}
        return Response(RetentionReportOutput({**body, "periods": rows}).data)


class CohortView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_cohorts",
        tags=TAGS,
        parameters=[CohortQuery],
        responses={200: CohortReportOutput, **problems(400, 401, 403, 404)},
        summary="Cohort matrix by first-purchase month",
        description="Members by the month of their first purchase not fully returned, and for each month after "
        "it the share who bought again in that month." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(CohortQuery)
        last = data.get("through") or month_of(program, timezone.now())
        cohorts = metrics.cohort_matrix(
            program,
            first_month=add_months(last, 1 - data["months"]),
            last_month=last,
            offsets=data["offsets"],
            filters=filters,
        )
        body = {"program": program.slug, "timezone": program.timezone, "offsets": data["offsets"]}
        return Response(CohortReportOutput({**body, "cohorts": [asdict(c) for c in cohorts]}).data)


class OrderView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_orders",
        tags=TAGS,
        parameters=[PeriodQuery],
        responses={200: OrderReportOutput, **problems(400, 401, 403, 404)},
        summary="Average order value, purchase frequency, time between purchases, inactive members",
        description="Over the purchases not fully returned in [start, end) (by default the 365 days up to and "
        "including today), with returns deducted from the revenue." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(PeriodQuery)
        end = data.get("end") or _today(program) + timedelta(days=1)
        start = data.get("start") or end - timedelta(days=365)
        if start >= end:
            raise serializers.ValidationError({"start": ["Must be before end."]})
        end_at = local_midnight(program, end)
        figures = metrics.order_figures(program, start=local_midnight(program, start), end=end_at, filters=filters)
        as_of = end_at if end_at < timezone.now() else None
        inactive = metrics.inactive_members(program, as_of=as_of, filters=filters).count()
        body = {
            "program": program.slug,
            "currency": program.currency,
            "start": start,
            "end": end,
            **asdict(figures),
            "inactive_days": program.inactive_days,
            "inactive_members": inactive,
        }
        return Response(OrderReportOutput(body).data)


class NpsView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_nps",
        tags=TAGS,
        parameters=[MonthSeriesQuery],
        responses={200: NpsReportOutput, **problems(400, 401, 403, 404)},
        summary="Net Promoter Score: overall, by month, by tier and by segment",
        description="Promoters answer 9–10, passives 7–8, detractors 0–6; NPS = % promoters - % detractors. A "
        "member counts once: with their latest answer in the span (summary, tiers, segments) or in the month. "
        "The span is the last `months` months up to `through` (the current month when left out)." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(MonthSeriesQuery)
        through = data.get("through") or month_of(program, timezone.now())
        periods = metrics.month_periods(program, months=data["months"], through=through)
        span = Period(periods[0].start, periods[-1].end)
        body = {
            "program": program.slug,
            "start": _day(program, span.start),
            "end": _day(program, span.end),
            "summary": asdict(nps.nps_summary(program, span, filters)),
            "months": [{"month": m, **asdict(f)} for m, f in nps.nps_by_month(program, periods, filters)],
            "tiers": [
                {"tier_id": tier_id, "tier": name, **asdict(f)}
                for tier_id, name, f in nps.nps_by_tier(program, span, filters)
            ],
            "segments": [{"segment": s, **asdict(f)} for s, f in nps.nps_by_segment(program, span, filters)],
        }
        return Response(NpsReportOutput(body).data)


class LiabilityView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_liability",
        tags=TAGS,
        parameters=[LiabilityQuery],
        responses={200: LiabilityReportOutput, **problems(400, 401, 403, 404)},
        summary="Points liability, upcoming expiries by month and breakage",
        description="Outstanding points (available + pending) of members not closed, valued at the program's "
        "point_value; points that will expire in each of the next `months` months; breakage = points expired / "
        "points issued (earned and added by hand) over [start, end), all time by default." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(LiabilityQuery)
        now = timezone.now()
        start, end = data.get("start"), data.get("end")
        breakage = metrics.breakage(
            program,
            start=local_midnight(program, start) if start else None,
            end=local_midnight(program, end) if end else None,
            filters=filters,
        )
        body = {
            "program": program.slug,
            "currency": program.currency,
            "point_value": program.point_value,
            "as_of": now,
            **asdict(metrics.points_liability(program, filters=filters)),
            "expiries": [
                asdict(e) for e in metrics.upcoming_expiries(program, months=data["months"], now=now, filters=filters)
            ],
            "breakage": {"start": start, "end": end, **asdict(breakage)},
        }
        return Response(LiabilityReportOutput(body).data)


urlpatterns = [
    path("retention/", RetentionView.as_view(), name="analytics-retention"),
    path("cohorts/", CohortView.as_view(), name="analytics-cohorts"),
    path("orders/", OrderView.as_view(), name="analytics-orders"),
    path("nps/", NpsView.as_view(), name="analytics-nps"),
    path("liability/", LiabilityView.as_view(), name="analytics-liability"),
]
