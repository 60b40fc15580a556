"""Member app: answering the NPS survey, POST /api/app/v1/me/nps/.

`extend_schema_serializer(component_name=...)` keeps the OpenAPI component names the bodies were published under
(`NpsAnswerIn`, `NpsAnswerOut`): the schema is a contract; the classes take the house suffixes (Input, Output).
"""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.models import NpsSource
from analytics.nps import COMMENT_MAX_LENGTH, MAX_SCORE
from analytics.services.nps import NpsResult, nps_record
from config.api.app import AppAPIView
from config.api.input import InputSerializer, parse
from config.api.problems import problems
from loyalty.apis.purchase_serializers import AwardOutput
from loyalty.apis.serializers import ShortBalancesOutput

TAGS = ["Member app"]


@extend_schema_serializer(component_name="NpsAnswerIn")
class NpsAnswerInput(InputSerializer):
    score = serializers.IntegerField(
        min_value=0, max_value=MAX_SCORE, help_text="How likely are you to recommend us? 0 (not at all) to 10."
    )
    comment = serializers.CharField(
        max_length=COMMENT_MAX_LENGTH, required=False, allow_blank=True, default="", help_text="Why, in words."
    )


@extend_schema_serializer(component_name="NpsAnswerOut")
class NpsAnswerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    score = serializers.IntegerField()
    comment = serializers.CharField()
    # A declared field: the metaclass moves it into _declared_fields, so Field.source is not shadowed.
    source = serializers.ChoiceField(choices=NpsSource.choices)  # type: ignore[assignment]
    answered_at = serializers.DateTimeField()
    points_awarded = serializers.IntegerField(help_text="From the program's nps_answer rules, within their limits.")
    awards = AwardOutput(many=True)
    balances = ShortBalancesOutput()


def nps_output(result: NpsResult) -> dict:
    answer = result.answer
    body = {
        "id": answer.pk,
        "member_id": answer.member_id,
        "score": answer.score,
        "comment": answer.comment,
        "source": answer.source,
        "answered_at": answer.answered_at,
        "points_awarded": result.points,
        "awards": result.awards,
        "balances": result.balances,
    }
    return NpsAnswerOutput(body).data


class MeNpsView(AppAPIView):
    @extend_schema(
        operation_id="app_me_nps_answer",
        tags=TAGS,
        request=NpsAnswerInput,
        responses={201: NpsAnswerOutput, **problems(400, 401, 403, 409, 415, 422, 429)},
        summary="Answer the NPS survey (0–10 and an optional comment)",
        description="Every answer is kept; points come from the program's nps_answer event rules, so their "
        "limits decide whether answering again earns again. A suspended member: 422 member_suspended. With an "
        "Idempotency-Key a retry returns the first answer and records nothing more.",
    )
    def post(self, request: Request) -> Response:
        data = parse(NpsAnswerInput, request.data)
        assert self.member is not None  # IsAppMember let the request through
        result = nps_record(member=self.member, score=data["score"], comment=data["comment"], source=NpsSource.APP)
        return Response(nps_output(result), status=201)
