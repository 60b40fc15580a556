"""Query and response serializers of the manager API's program figures (`analytics.apis.manage`)."""

import re
from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.fields import IdField
from config.api.queries import ProgramQuery
from config.money import DecimalDigits

EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
AS_OF = serializers.DateTimeField(help_text="The moment the figures are as of (see `as_of`).")


# --- Query parameters ---------------------------------------------------------------------------------------


# Years 1970 to 2999, as EARLIEST and LATEST: the schema promises no month the field refuses.
MONTH_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN, "example": "2026-03"})
class MonthField(serializers.CharField):
    """A calendar month as YYYY-MM, parsed to its first day."""

    def to_internal_value(self, data: Any) -> date:  # type: ignore[override]  # text in, a date out
        text = super().to_internal_value(data)
        if not re.fullmatch(MONTH_PATTERN, text):
            raise serializers.ValidationError("Give a month as YYYY-MM, e.g. 2026-03.")
        return _in_range(date(int(text[:4]), int(text[5:7]), 1))  # the pattern leaves no year 0


def _in_range(day: date) -> date:
    if not EARLIEST <= day <= LATEST:
        raise serializers.ValidationError(f"Must lie between {EARLIEST} and {LATEST}.")
    return day


# Days of the years 1970 to 2999, as EARLIEST and LATEST (a date the calendar lacks is still a 400).
DAY_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


@extend_schema_field({"type": "string", "format": "date", "pattern": DAY_PATTERN, "example": "2026-03-31"})
class DayField(serializers.DateField):
    def to_internal_value(self, value: Any) -> date:
        return _in_range(super().to_internal_value(value))


class MemberFilterQuery(ProgramQuery):
    tier = IdField(required=False, help_text="Tier id: members now in this tier.")
    segment = serializers.CharField(
        max_length=64, required=False, help_text="RFM segment at the last analytics refresh, e.g. Champions."
    )
    channel = serializers.CharField(max_length=64, required=False, help_text="Members' acquisition channel.")
    as_of = DayField(
        required=False,
        help_text="Figures as of the end of this day (program time zone); the last analytics refresh's as-of (now "
        "before the first refresh) when left out.",
    )


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
    through = MonthField(required=False, help_text="The last cohort month, YYYY-MM; the month of as_of by default.")
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

NOT_BEGUN = "Null (no data yet) when the period begins after as_of."


class RetentionPeriodOutput(serializers.Serializer):
    start = serializers.DateField(help_text="First day of the period.")
    end = serializers.DateField(help_text="The day after its last (exclusive).")
    active_at_start = serializers.IntegerField(
        allow_null=True, help_text="Members with a purchase in the inactive_days before start. " + NOT_BEGUN
    )
    active_at_end = serializers.IntegerField(
        allow_null=True, help_text="Members with a purchase in the inactive_days before end. " + NOT_BEGUN
    )
    new = serializers.IntegerField(allow_null=True, help_text="Active at end, first purchase ever within the period.")
    retained = serializers.IntegerField(allow_null=True, help_text="Active at start and at end.")
    reactivated = serializers.IntegerField(
        allow_null=True, help_text="Active at end, not at start, first purchase before the period."
    )
    retention = serializers.FloatField(
        allow_null=True,
        help_text="(active_at_end - new) / active_at_start, 4 decimals; null when nobody was active. " + NOT_BEGUN,
    )
    churn = serializers.FloatField(allow_null=True, help_text="1 - retention.")


class RetentionReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    timezone = serializers.CharField(help_text="Months and days are counted in this time zone.")
    inactive_days = serializers.IntegerField(help_text="The activity window of the definition.")
    as_of = AS_OF
    periods = RetentionPeriodOutput(many=True)


class CohortOutput(serializers.Serializer):
    month = serializers.DateField(help_text="First day of the month of the members' first purchase.")
    size = serializers.IntegerField(help_text="Members whose first purchase fell in that month.")
    shares = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="For month offsets 0, 1, ...: the share of the cohort with a purchase in that month (0–1, 4 "
        "decimals); null (no data yet) for months after the month of as_of.",
    )


class CohortReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    timezone = serializers.CharField()
    offsets = serializers.IntegerField(help_text="Each cohort has offsets + 1 shares.")
    as_of = AS_OF
    cohorts = CohortOutput(many=True, help_text="Oldest first; months without new buyers are left out.")


MONEY: DecimalDigits = {"max_digits": 16, "decimal_places": 2}


class OrderReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    currency = serializers.CharField()
    as_of = AS_OF
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
    respondents = serializers.IntegerField(
        allow_null=True, help_text="Members counted (their latest answer). " + NOT_BEGUN
    )
    promoters = serializers.IntegerField(allow_null=True, help_text="Scores 9–10.")
    passives = serializers.IntegerField(allow_null=True, help_text="Scores 7–8.")
    detractors = serializers.IntegerField(allow_null=True, help_text="Scores 0–6.")


class NpsTierOutput(NpsFiguresOutput):
    tier_id = serializers.IntegerField(allow_null=True, help_text="Null: members without a tier.")
    tier = serializers.CharField(allow_null=True)


class NpsSegmentOutput(NpsFiguresOutput):
    segment = serializers.CharField(allow_null=True, help_text="Null: no segment yet.")


class NpsReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    as_of = AS_OF
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
    as_of = AS_OF
    available = serializers.IntegerField(help_text="Spendable at as_of, less points past their expiry by then.")
    pending = serializers.IntegerField(help_text="Not yet spendable at as_of, less points past their expiry by then.")
    outstanding = serializers.IntegerField(help_text="available + pending, of members not closed.")
    value = serializers.DecimalField(**MONEY, help_text="outstanding × point_value.")
    debt = serializers.IntegerField(help_text="Points members owe after returns (not netted).")
    expiries = ExpiryOutput(many=True, help_text="Points that will expire after as_of, by month.")
    breakage = BreakageOutput()
