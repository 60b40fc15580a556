"""Manager API: customer lifetime value under /api/manage/v1/analytics/clv/ (the last fit, the distribution of
members' predicted CLV, and CLV:CAC per acquisition channel)."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.lifetime import CAC_TARGET, clv_cac_by_channel, clv_distribution
from analytics.models import ClvFit
from analytics.selectors import analytics_as_of
from config.api.input import parse
from config.api.manage import ManageAPIView
from config.api.problems import problems
from config.api.queries import ProgramQuery
from config.money import DecimalDigits

TAGS = ["Manage: analytics"]
MONEY: DecimalDigits = {"max_digits": 16, "decimal_places": 2}


class ClvFitOutput(serializers.Serializer):
    as_of = serializers.DateTimeField()
    time_unit = serializers.CharField(help_text="days or weeks: the unit of alpha and of the log-likelihood.")
    members_used = serializers.IntegerField()
    repeat_members = serializers.IntegerField()
    params = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="r, alpha, a, b (BG/NBD); p, q, gamma (Gamma-Gamma)."
    )
    log_likelihood = serializers.DictField(child=serializers.FloatField(allow_null=True))
    converged = serializers.BooleanField()
    message = serializers.CharField()
    horizon_months = serializers.IntegerField()
    discount_rate = serializers.DecimalField(max_digits=6, decimal_places=4)
    margin_rate = serializers.DecimalField(max_digits=5, decimal_places=4)
    created_at = serializers.DateTimeField()


class ClvBinOutput(serializers.Serializer):
    low = serializers.DecimalField(**MONEY)
    high = serializers.DecimalField(**MONEY)
    members = serializers.IntegerField()


class ClvDistributionOutput(serializers.Serializer):
    members = serializers.IntegerField(help_text="Members with a predicted CLV.")
    total = serializers.DecimalField(**MONEY)
    mean = serializers.DecimalField(**MONEY, allow_null=True)
    quantiles = serializers.DictField(child=serializers.DecimalField(**MONEY), help_text="p10, p50, p90.")
    bins = ClvBinOutput(many=True)


class ChannelValueOutput(serializers.Serializer):
    channel = serializers.CharField()
    members = serializers.IntegerField(help_text="Members who joined through it within the cost periods.")
    cost = serializers.DecimalField(**MONEY)
    cac = serializers.DecimalField(**MONEY, allow_null=True)
    clv = serializers.DecimalField(**MONEY, allow_null=True, help_text="Mean historical + predicted CLV.")
    ratio = serializers.FloatField(allow_null=True, help_text="CLV / CAC.")
    below_target = serializers.BooleanField(help_text=f"Under {CAC_TARGET}:1.")


class ClvReportOutput(serializers.Serializer):
    program = serializers.SlugField()
    currency = serializers.CharField()
    fit = ClvFitOutput(allow_null=True, help_text="The last fit; null before the first analytics refresh.")
    distribution = ClvDistributionOutput()
    channels = ChannelValueOutput(many=True)


class ClvView(ManageAPIView):
    required_permissions = {"GET": ("analytics.view_memberanalytics",)}

    @extend_schema(
        operation_id="manage_analytics_clv",
        tags=TAGS,
        parameters=[ProgramQuery],
        responses={200: ClvReportOutput, **problems(400, 401, 403, 404)},
        summary="Customer lifetime value: the model fit, the members' predicted CLV, CLV:CAC per channel",
        description="`fit` is the last BG/NBD and Gamma-Gamma maximum-likelihood fit (run by the analytics "
        "refresh or `manage.py clv_fit`); predicted CLV is the discounted margin over the program's horizon. "
        f"CAC per channel = the acquisition costs entered for it / the members who joined through it in those "
        f"periods; channels under {CAC_TARGET}:1 are flagged. Errors: validation_error (400), program_not_found "
        "(404, also for a program you do not manage).",
    )
    def get(self, request: Request) -> Response:
        program = self.managed_program(parse(ProgramQuery, request.query_params)["program"])
        distribution = clv_distribution(program=program)
        body = {
            "program": program.slug,
            "currency": program.currency,
            "fit": ClvFit.objects.filter(program=program).first(),
            "distribution": {
                **asdict(distribution),
                "bins": [{"low": low, "high": high, "members": n} for low, high, n in distribution.bins],
            },
            "channels": [asdict(row) for row in clv_cac_by_channel(program=program, as_of=analytics_as_of(program))],
        }
        return Response(ClvReportOutput(body).data)
