"""Manager API: /api/manage/v1/ (staff, scoped to the programs they manage)."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.input import parse
from config.api.manage import ManageAPIView
from config.api.problems import problems
from loyalty.apis.serializers import (
    AdjustmentInput,
    AdjustmentOutput,
    BalancesOutput,
    EntryOutput,
    MemberOutput,
)
from loyalty.selectors import member_balances
from loyalty.services.ledger import ledger_adjust
from members.exceptions import MemberNotFound
from members.models import Member

TAGS = ["Manager: members"]


class ManagedMembersView(ManageAPIView):
    queryset = Member.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        return Member.objects.filter(program__in=self.programs()).select_related("program")

    def get_member(self) -> Member:
        return self.get_row("member_id", MemberNotFound)


class ManageMemberDetailView(ManagedMembersView):
    required_permissions = {"GET": ("members.view_member",)}

    @extend_schema(
        operation_id="manage_member_detail",
        tags=TAGS,
        responses={200: MemberOutput, **problems(401, 403, 404)},
        summary="A member with balances",
    )
    def get(self, request: Request, member_id: str) -> Response:
        return Response(MemberOutput(self.get_member()).data)


class ManageAdjustmentView(ManagedMembersView):
    required_permissions = {"POST": ("loyalty.adjust_points",)}

    @extend_schema(
        operation_id="manage_member_adjust",
        tags=TAGS,
        request=AdjustmentInput,
        responses={201: AdjustmentOutput, **problems(400, 401, 403, 404, 409, 415, 422)},
        summary="Add or remove points by hand",
        description="Recorded with the manager, the time and the reason. A removal larger than the available "
        "balance fails with insufficient_points unless allow_debt is set.",
    )
    def post(self, request: Request, member_id: str) -> Response:
        member = self.get_member()
        data = parse(AdjustmentInput, request.data)
        entry = ledger_adjust(
            member=member,
            points=data["points"],
            reason=data["reason"],
            actor=request.user,
            allow_debt=data["allow_debt"],
            key=self.ledger_key(request),
        )
        balances = BalancesOutput(member_balances(member=member)).data
        return Response({"entry": EntryOutput(entry).data, "balances": balances}, status=201)
