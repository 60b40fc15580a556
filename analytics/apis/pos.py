"""Integration API: an NPS answer collected by the shop, POST /api/pos/v1/members/{id}/nps/.

The body keeps the component name it was published under, `PosNpsAnswerIn` (the schema is a contract)."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.apis.app import NpsAnswerInput, NpsAnswerOutput, nps_output
from analytics.models import NpsSource
from analytics.services.nps import nps_record
from config.api.input import AwareDateTimeField, parse
from config.api.problems import problems
from loyalty.apis.pos import TAGS, PosMemberView


@extend_schema_serializer(component_name="PosNpsAnswerIn")
class PosNpsAnswerInput(NpsAnswerInput):
    answered_at = AwareDateTimeField(required=False, help_text="When the member answered; now by default.")


class MemberNpsView(PosMemberView):
    @extend_schema(
        operation_id="pos_member_nps_answer",
        tags=TAGS,
        request=PosNpsAnswerInput,
        responses={201: NpsAnswerOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Record a member's NPS answer (0–10 and an optional comment)",
        description="For answers collected by the shop (a survey tool, the till). Every answer is kept; points "
        "come from the program's nps_answer event rules within their limits. Errors: member_not_found (404, "
        "also for another program's member), member_suspended or member_closed (422), occurred_at_in_future "
        "(422, answered_at more than 5 minutes ahead). With an Idempotency-Key a retry returns the first answer "
        "and records nothing more.",
    )
    def post(self, request: Request, member_id: str) -> Response:
        member = self.get_member()
        data = parse(PosNpsAnswerInput, request.data)
        result = nps_record(
            member=member,
            score=data["score"],
            comment=data["comment"],
            source=NpsSource.INTEGRATION,
            answered_at=data.get("answered_at"),
        )
        return Response(nps_output(result), status=201)
