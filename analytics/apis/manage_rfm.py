"""Manager API: RFM segments, the program's RFM grid and the analytics refresh, under /api/manage/v1/analytics/.

Reads need `analytics.view_memberanalytics`; changing the grid and starting a refresh need
`analytics.change_rfmsegment`. A program the user does not manage answers 404 program_not_found, as an
unknown one does.
"""

from datetime import date, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.apis.serializers import DayField
from analytics.rfm import DEFAULT_GRID, SegmentSpec, rfm_grid, rfm_summary
from analytics.selectors import analytics_refresh_status, day_end
from analytics.services.refresh_request import analytics_refresh_request
from analytics.services.rfm import rfm_grid_save
from config.api.input import InputSerializer, parse
from config.api.manage import ManageAPIView, field_errors, requires
from config.api.problems import problems
from config.api.queries import UnboundedProgramQuery
from members.models import Program

TAGS = ["Manage: analytics"]
VIEW_ANALYTICS = "analytics.view_memberanalytics"
CHANGE_GRID = "analytics.change_rfmsegment"
GRID_RULES = (
    "A segment is a range of R (recency score, 1–5) and FM (the mean of the frequency and monetary scores, "
    "1.0–5.0 in steps of 0.5), bounds included. Segments are tried in the order given and the first that "
    "contains a member's cell names it; together they must cover all 45 cells."
)


# --- Serializers ----------------------------------------------------------------------------------


class SegmentInput(InputSerializer):
    name = serializers.CharField(max_length=64)
    r_min = serializers.IntegerField(min_value=1, max_value=5)
    r_max = serializers.IntegerField(min_value=1, max_value=5)
    fm_min = serializers.DecimalField(max_digits=2, decimal_places=1, min_value=1, max_value=5)
    fm_max = serializers.DecimalField(max_digits=2, decimal_places=1, min_value=1, max_value=5)
    description = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="", help_text="Who they are, what to do."
    )


class ProgramInput(InputSerializer, UnboundedProgramQuery):
    """The program, in a request body (where unknown fields are refused)."""


class RefreshInput(ProgramInput):
    as_of = DayField(
        required=False,
        help_text="Compute every figure as of the end of this day (program time zone), e.g. the last day of an "
        "import of history; today or earlier. Now when left out.",
    )


class GridInput(ProgramInput):
    # `many=True` hands max_length to the ListSerializer; the stubs miss it.
    segments = SegmentInput(many=True, allow_empty=False, max_length=45, help_text="In priority order.")  # type: ignore[call-arg]


class SegmentOutput(serializers.Serializer):
    priority = serializers.IntegerField(help_text="1 is tried first.")
    name = serializers.CharField()
    r_min = serializers.IntegerField()
    r_max = serializers.IntegerField()
    fm_min = serializers.DecimalField(max_digits=2, decimal_places=1)
    fm_max = serializers.DecimalField(max_digits=2, decimal_places=1)
    description = serializers.CharField()


class GridOutput(serializers.Serializer):
    program = serializers.SlugField()
    is_default = serializers.BooleanField(help_text="The program has no grid of its own and uses the default.")
    segments = SegmentOutput(many=True)


class SegmentCountOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    r_min = serializers.IntegerField(allow_null=True)
    r_max = serializers.IntegerField(allow_null=True)
    fm_min = serializers.DecimalField(max_digits=2, decimal_places=1, allow_null=True)
    fm_max = serializers.DecimalField(max_digits=2, decimal_places=1, allow_null=True)
    in_grid = serializers.BooleanField(
        help_text="False: a segment of an earlier grid that members hold until the next refresh (no ranges)."
    )
    members = serializers.IntegerField()
    share = serializers.FloatField(help_text="Of the members with a segment, 0–1, 4 decimals.")


class RfmSummaryOutput(serializers.Serializer):
    program = serializers.SlugField()
    as_of = serializers.DateTimeField(allow_null=True, help_text="The last refresh; null before the first one.")
    members = serializers.IntegerField(help_text="Members with figures (all members at the last refresh).")
    without_purchase = serializers.IntegerField(help_text="Members without a counted purchase: no segment.")
    segments = SegmentCountOutput(many=True)
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="5 × 5 member counts: matrix[R - 1][FM - 1], FM rounded down (4.5 counts under 4).",
    )


class RefreshStepOutput(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field; Field.label is not shadowed
    done = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True, help_text="Null until the step has counted its work.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RefreshStatusOutput(serializers.Serializer):
    program = serializers.SlugField()
    state = serializers.ChoiceField(choices=["idle", "queued", "running", "done", "failed"])
    step = serializers.CharField(allow_null=True, required=False, help_text="The step running now.")
    as_of = serializers.DateTimeField(required=False, help_text="What the refresh computes as of.")
    queued_at = serializers.DateTimeField(required=False)
    started_at = serializers.DateTimeField(required=False)
    finished_at = serializers.DateTimeField(required=False)
    updated_at = serializers.DateTimeField(required=False, help_text="The last progress report.")
    error = serializers.CharField(required=False, help_text="Why a failed refresh stopped.")
    steps = RefreshStepOutput(many=True)
    results = serializers.DictField(required=False, help_text="Each finished step's summary, by step name.")


# --- Views ----------------------------------------------------------------------------------------


class AnalyticsView(ManageAPIView):
    """Base of the RFM grid and refresh views (program scoping and permissions from ManageAPIView)."""


def _grid_output(program: Program) -> dict:
    grid = rfm_grid(program)
    segments = [{"priority": priority, **vars(segment)} for priority, segment in enumerate(grid, start=1)]
    return {"program": program.slug, "is_default": grid is DEFAULT_GRID, "segments": segments}


class RfmSummaryView(AnalyticsView):
    required_permissions = {"GET": (VIEW_ANALYTICS,)}

    @extend_schema(
        operation_id="manage_analytics_rfm",
        tags=TAGS,
        parameters=[UnboundedProgramQuery],
        responses={200: RfmSummaryOutput, **problems(400, 401, 403, 404)},
        summary="Members per RFM segment and per cell of the R × FM matrix",
        description="As of the program's last analytics refresh. Scores are quintiles among members with a "
        "purchase not fully returned: R by days since the last purchase (most recent 5), F by purchases, M by "
        "spend less returns; ties share a score. FM is the mean of F and M. " + GRID_RULES + " Errors: "
        "validation_error (400), program_not_found (404). " + requires(VIEW_ANALYTICS),
    )
    def get(self, request: Request) -> Response:
        program = self.managed_program(parse(UnboundedProgramQuery, request.query_params)["program"])
        return Response(RfmSummaryOutput(rfm_summary(program)).data)


class RfmGridView(AnalyticsView):
    required_permissions = {"GET": (VIEW_ANALYTICS,), "PUT": (CHANGE_GRID,)}

    @extend_schema(
        operation_id="manage_analytics_rfm_grid",
        tags=TAGS,
        parameters=[UnboundedProgramQuery],
        responses={200: GridOutput, **problems(400, 401, 403, 404)},
        summary="The program's RFM grid",
        description=GRID_RULES
        + " A program without a grid of its own uses the default one. "
        + requires(VIEW_ANALYTICS),
    )
    def get(self, request: Request) -> Response:
        program = self.managed_program(parse(UnboundedProgramQuery, request.query_params)["program"])
        return Response(GridOutput(_grid_output(program)).data)

    @extend_schema(
        operation_id="manage_analytics_rfm_grid_replace",
        tags=TAGS,
        request=GridInput,
        responses={200: GridOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Replace the program's RFM grid",
        description=GRID_RULES + " Names are unique (ignoring case). Members get the new segments at the next "
        "refresh. Errors: validation_error (400: a bad range, a repeated name, an uncovered cell; nothing is "
        "saved), program_not_found (404). " + requires(CHANGE_GRID),
    )
    def put(self, request: Request) -> Response:
        data = parse(GridInput, request.data)
        program = self.managed_program(data["program"])
        segments = [SegmentSpec(**segment) for segment in data["segments"]]
        try:
            rfm_grid_save(program=program, segments=segments)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(field_errors(exc)) from exc
        return Response(GridOutput(_grid_output(program)).data)


class RefreshView(AnalyticsView):
    required_permissions = {"GET": (VIEW_ANALYTICS,), "POST": (CHANGE_GRID,)}

    @extend_schema(
        operation_id="manage_analytics_refresh_status",
        tags=TAGS,
        parameters=[UnboundedProgramQuery],
        responses={200: RefreshStatusOutput, **problems(400, 401, 403, 404)},
        summary="Progress of the program's analytics refresh",
        description="The last refresh's state (idle when none is known), its steps with done/total and their "
        "times. Errors: validation_error (400), program_not_found (404). " + requires(VIEW_ANALYTICS),
    )
    def get(self, request: Request) -> Response:
        program = self.managed_program(parse(UnboundedProgramQuery, request.query_params)["program"])
        return Response(RefreshStatusOutput({"program": program.slug, **analytics_refresh_status(program)}).data)

    @extend_schema(
        operation_id="manage_analytics_refresh",
        tags=TAGS,
        request=RefreshInput,
        responses={202: RefreshStatusOutput, **problems(400, 401, 403, 404, 415)},
        summary="Refresh the program's analytics now",
        description="Queues a refresh (member figures, RFM scores and segments, and the later steps) and answers "
        "with its status; follow it with GET. Every step computes as of one moment: the end of the day `as_of` "
        "(after an import of history, its last day), now when left out; the analytics endpoints then default "
        "their windows to it. While one is queued or running, no second one is queued. The refresh also runs "
        "nightly (as of now). Errors: validation_error (400: a bad date, a day after today), program_not_found "
        "(404). " + requires(CHANGE_GRID),
    )
    def post(self, request: Request) -> Response:
        data = parse(RefreshInput, request.data)
        program = self.managed_program(data["program"])
        status = analytics_refresh_request(program=program, as_of=_refresh_as_of(program, data.get("as_of")))
        return Response(RefreshStatusOutput({"program": program.slug, **status}).data, status=202)


def _refresh_as_of(program: Program, day: date | None) -> datetime | None:
    """The end of `day` in the program's time zone (now, for today); a day after today (there) is refused."""
    if day is None:
        return None
    now = timezone.now()
    if day > now.astimezone(program.tz).date():
        raise serializers.ValidationError({"as_of": ["Must be today or earlier."]})
    return min(day_end(program, day), now)
