"""Manager API: program figures under /api/manage/v1/analytics/: retention, cohorts, orders, NPS, liability.

Each takes `?program=<slug>` and, where they make sense, the member filters `tier` (id), `segment` and
`channel` (acquisition channel), and `as_of` (a day: figures as of its end). Without `as_of` the figures are as of
the last analytics refresh's as-of (now before the first refresh): default windows end there, and months that
begin after it answer null (no data yet), not 0; figures see only what was dated by it (`analytics.as_of`).
Definitions are in `analytics.metrics`,
`analytics.liability` and `analytics.nps`; months and days are the program's, in its time zone.
"""

from dataclasses import asdict
from datetime import date, datetime, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import liability, metrics, nps
from analytics.apis.serializers import (
    CohortQuery,
    CohortReportOutput,
    LiabilityQuery,
    LiabilityReportOutput,
    MonthSeriesQuery,
    NpsReportOutput,
    OrderReportOutput,
    PeriodQuery,
    RetentionQuery,
    RetentionReportOutput,
)
from analytics.metrics import MemberFilters, Period, add_months, local_midnight, month_of
from analytics.selectors import analytics_as_of, day_end
from config.api.input import parse
from config.api.manage import ManageAPIView
from config.api.problems import problems
from loyalty.models import Tier
from members.models import Program

TAGS = ["Manage: analytics"]
ERRORS = " Errors: validation_error (400: a bad date or month, a tier of another program), program_not_found (404)."
FILTERS = (
    " Filters select members by their current tier (`tier`, an id), RFM segment at the last analytics refresh "
    "(`segment`) and acquisition channel (`channel`). Figures are as of `as_of` (the end of that day), by default "
    "the last analytics refresh's as-of (now before the first refresh); months that begin after it are null (no "
    "data yet)."
)


class AnalyticsView(ManageAPIView):
    required_permissions = {"GET": ("analytics.view_memberanalytics",)}

    def report_input(self, query: type[serializers.Serializer]) -> tuple[Program, MemberFilters, dict]:
        """The program, the member filters and the parsed query, whose `as_of` is the moment the figures are as
        of: the end of the day asked, else the last analytics refresh's as-of, else now."""
        data = parse(query, self.request.query_params)
        program = self.managed_program(data["program"])
        tier_id = data.get("tier")
        if tier_id is not None and not Tier.objects.filter(program=program, pk=tier_id).exists():
            raise serializers.ValidationError({"tier": [f"Not a tier of {program.slug}."]})
        asked = data.get("as_of")
        data["as_of"] = day_end(program, asked) if asked else analytics_as_of(program) or timezone.now()
        return program, MemberFilters(tier_id, data.get("segment"), data.get("channel")), data


def _day(program: Program, moment: datetime) -> date:
    return moment.astimezone(program.tz).date()


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
        "`months` up to `through` (when left out, the last month complete at as_of)." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(RetentionQuery)
        if "start" in data:
            periods = [Period(local_midnight(program, data["start"]), local_midnight(program, data["end"]))]
        else:
            through = data.get("through") or add_months(month_of(program, data["as_of"]), -1)
            periods = metrics.month_periods(program, months=data["months"], through=through)
        rows = [
            {**asdict(row), "start": _day(program, row.start), "end": _day(program, row.end)}
            for row in metrics.retention(program, periods, filters, as_of=data["as_of"])
        ]
        body = {
            "program": program.slug,
            "timezone": program.timezone,
            "inactive_days": program.inactive_days,
            "as_of": data["as_of"],
        }
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
        last = data.get("through") or month_of(program, data["as_of"])
        cohorts = metrics.cohort_matrix(
            program,
            first_month=add_months(last, 1 - data["months"]),
            last_month=last,
            offsets=data["offsets"],
            filters=filters,
            as_of=data["as_of"],
        )
        body = {
            "program": program.slug,
            "timezone": program.timezone,
            "offsets": data["offsets"],
            "as_of": data["as_of"],
        }
        return Response(CohortReportOutput({**body, "cohorts": [asdict(c) for c in cohorts]}).data)


class OrderView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_orders",
        tags=TAGS,
        parameters=[PeriodQuery],
        responses={200: OrderReportOutput, **problems(400, 401, 403, 404)},
        summary="Average order value, purchase frequency, time between purchases, inactive members",
        description="Over the purchases not fully returned in [start, end) (by default the 365 days up to and "
        "including the day of as_of), with returns deducted from the revenue." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(PeriodQuery)
        end = data.get("end") or _day(program, data["as_of"]) + timedelta(days=1)
        start = data.get("start") or end - timedelta(days=365)
        if start >= end:
            raise serializers.ValidationError({"start": ["Must be before end."]})
        end_at = local_midnight(program, end)
        moment = min(end_at, data["as_of"])
        figures = metrics.order_figures(
            program, start=local_midnight(program, start), end=end_at, filters=filters, as_of=moment
        )
        as_of = moment if moment < timezone.now() else None
        inactive = metrics.inactive_members(program, as_of=as_of, filters=filters).count()
        body = {
            "program": program.slug,
            "currency": program.currency,
            "as_of": data["as_of"],
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
        "The span is the last `months` months up to `through` (the month of as_of when left out)." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(MonthSeriesQuery)
        as_of = data["as_of"]
        through = data.get("through") or month_of(program, as_of)
        periods = metrics.month_periods(program, months=data["months"], through=through)
        span = Period(periods[0].start, periods[-1].end)
        by_month = nps.nps_by_month(program, periods, filters, as_of=as_of)
        body = {
            "program": program.slug,
            "as_of": as_of,
            "start": _day(program, span.start),
            "end": _day(program, span.end),
            "summary": asdict(nps.nps_summary(program, span, filters, as_of=as_of)),
            "months": [{"month": m, **asdict(f)} for m, f in by_month],
            "tiers": [
                {"tier_id": tier_id, "tier": name, **asdict(f)}
                for tier_id, name, f in nps.nps_by_tier(program, span, filters, as_of=as_of)
            ],
            "segments": [
                {"segment": s, **asdict(f)} for s, f in nps.nps_by_segment(program, span, filters, as_of=as_of)
            ],
        }
        return Response(NpsReportOutput(body).data)


class LiabilityView(AnalyticsView):
    @extend_schema(
        operation_id="manage_analytics_liability",
        tags=TAGS,
        parameters=[LiabilityQuery],
        responses={200: LiabilityReportOutput, **problems(400, 401, 403, 404)},
        summary="Points liability, upcoming expiries by month and breakage",
        description="Outstanding points (available + pending) of members not closed at as_of, valued at the "
        "program's point_value, rebuilt from the ledger as of as_of: lots credited by then and not expired by then "
        "(even before the expiry job has run), with what later debits took from them; debt likewise; points that "
        "will expire in each of the next `months` months "
        "after as_of; breakage = points expired / points issued (earned and added by hand) over [start, end) of the "
        "entries by as_of, all time by default." + FILTERS + ERRORS,
    )
    def get(self, request: Request) -> Response:
        program, filters, data = self.report_input(LiabilityQuery)
        as_of = data["as_of"]
        start, end = data.get("start"), data.get("end")
        breakage = liability.breakage(
            program,
            start=local_midnight(program, start) if start else None,
            end=local_midnight(program, end) if end else None,
            filters=filters,
            as_of=as_of,
        )
        body = {
            "program": program.slug,
            "currency": program.currency,
            "point_value": program.point_value,
            "as_of": as_of,
            **asdict(liability.points_liability(program, as_of=as_of, filters=filters)),
            "expiries": [
                asdict(e)
                for e in liability.upcoming_expiries(program, months=data["months"], as_of=as_of, filters=filters)
            ],
            "breakage": {"start": start, "end": end, **asdict(breakage)},
        }
        return Response(LiabilityReportOutput(body).data)
