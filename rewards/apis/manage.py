"""Manager API for rewards: campaigns. Mounted under /api/manage/v1/ (see rewards.apis.urls)."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import ManageAPIView, parse, problems
from members.exceptions import ProgramNotFound

from ..selectors import campaign_members, reward_get
from ..services import campaign_issue
from .serializers import CampaignIn, CampaignOut

TAGS = ["Manage: rewards"]


class CampaignView(ManageAPIView):
    required_permissions = {"POST": ("rewards.add_voucher",)}

    @extend_schema(
        operation_id="manage_campaign_issue",
        tags=TAGS,
        request=CampaignIn,
        responses={201: CampaignOut, **problems(400, 401, 403, 404, 409, 415, 422, 429)},
        summary="Issue a reward's voucher to every member of a segment, without spending points",
        description="One voucher per member selected by `filters` (all active members when left out), in one "
        "transaction. Errors: program_not_found (404, also for a program you do not manage), reward_not_found "
        "(404), validation_error (400). With an Idempotency-Key a retry issues nothing more.",
    )
    def post(self, request: Request) -> Response:
        data = parse(CampaignIn, request.data)
        program = self.programs().filter(slug=data["program"]).first()
        if program is None:
            raise ProgramNotFound()
        reward = reward_get(program=program, reward_id=data["reward_id"])
        issued = campaign_issue(
            program=program,
            reward=reward,
            members_queryset=campaign_members(program=program, **data.get("filters", {})),
            campaign=data["campaign"],
            valid_days=data.get("valid_days"),
            actor=request.user,
        )
        return Response(CampaignOut({"issued": issued}).data, status=201)
