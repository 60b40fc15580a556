"""Integration API for tills and e-shops: /api/pos/v1/."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import LedgerCursorPagination, PosAPIView, parse, problems
from members.models import Member
from members.selectors import member_get

from ..models import Entry
from ..selectors import ledger_entries_for_member
from ..services.enrollment import member_enroll
from .filters import EntryFilter
from .serializers import EntryOutput, MemberEnrollInput, MemberOutput

TAGS = ["Integration: members"]


class PosMemberView(PosAPIView):
    """A view about one member of the key's program, named by id in the URL."""

    def get_member(self) -> Member:
        return member_get(program=self.program, field="id", value=self.kwargs["member_id"])


class MemberEnrollView(PosAPIView):
    @extend_schema(
        operation_id="pos_member_enroll",
        tags=TAGS,
        request=MemberEnrollInput,
        responses={201: MemberOutput, **problems(400, 401, 409, 415, 422, 429)},
        summary="Enroll a member",
        description="Creates a member and an empty points account. A card number is generated when none is given.",
    )
    def post(self, request: Request) -> Response:
        member = member_enroll(program=self.program, **parse(MemberEnrollInput, request.data))
        return Response(MemberOutput(member).data, status=201)


class LookupQuery(serializers.Serializer):
    card = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError("Give exactly one of card, external_id, email or phone.")
        return attrs


class MemberLookupView(PosAPIView):
    @extend_schema(
        operation_id="pos_member_lookup",
        tags=TAGS,
        parameters=[OpenApiParameter(name, str, required=False) for name in ("card", "external_id", "email", "phone")],
        responses={200: MemberOutput, **problems(400, 401, 404, 429)},
        summary="Find a member by card, external id, email or phone",
    )
    def get(self, request: Request) -> Response:
        ((field, value),) = parse(LookupQuery, request.query_params).items()
        return Response(MemberOutput(member_get(program=self.program, field=field, value=value)).data)


class MemberDetailView(PosMemberView):
    @extend_schema(
        operation_id="pos_member_detail",
        tags=TAGS,
        responses={200: MemberOutput, **problems(401, 404, 429)},
        summary="A member with balances",
    )
    def get(self, request: Request, member_id: str) -> Response:
        return Response(MemberOutput(self.get_member()).data)


class MemberLedgerView(PosMemberView):
    pagination_class = LedgerCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = EntryFilter
    serializer_class = EntryOutput
    queryset = Entry.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        return ledger_entries_for_member(member=self.get_member())

    @extend_schema(
        operation_id="pos_member_ledger",
        tags=TAGS,
        responses={200: EntryOutput(many=True), **problems(400, 401, 404, 429)},
        summary="A member's ledger, newest first",
        description="Cursor-paginated. Each debit lists the lots it consumed (`allocations`).",
    )
    def get(self, request: Request, member_id: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(EntryOutput(page, many=True).data)
