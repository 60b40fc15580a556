"""Integration API for tills and e-shops: /api/pos/v1/."""

from dataclasses import replace

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.filters import FilterBackend
from config.api.input import parse, plain_parse
from config.api.pagination import LedgerCursorPagination
from config.api.pos import PosAPIView
from config.api.problems import problems
from loyalty.apis.filters import EntryFilter
from loyalty.apis.purchase_serializers import (
    PosEventInput,
    PosEventOutput,
    PosPurchaseInput,
    PosPurchaseOutput,
    PosReturnInput,
    PosReturnOutput,
    TierSummaryOutput,
    purchase_output,
)
from loyalty.apis.serializers import EntryOutput, MemberEnrollInput, MemberOutput
from loyalty.models import Entry
from loyalty.selectors import ledger_entries_for_member, member_balances, member_tier_summary, member_with_balances
from loyalty.services.bonuses import event_record
from loyalty.services.enrollment import member_enroll
from loyalty.services.purchases import PurchaseInput, purchase_record, purchase_simulate
from loyalty.services.returns import return_record
from members.models import Member
from members.selectors import MemberRef, member_get

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
        return Response(MemberOutput(member_with_balances(program=self.program, field=field, value=value)).data)


class MemberDetailView(PosMemberView):
    @extend_schema(
        operation_id="pos_member_detail",
        tags=TAGS,
        responses={200: MemberOutput, **problems(401, 404, 429)},
        summary="A member with balances",
    )
    def get(self, request: Request, member_id: str) -> Response:
        return Response(MemberOutput(member_with_balances(program=self.program, field="id", value=member_id)).data)


class MemberLedgerView(PosMemberView):
    pagination_class = LedgerCursorPagination
    filter_backends = [FilterBackend]
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


PURCHASE_TAGS = ["Integration: purchases and returns"]


def _member_from_ref(program, ref: dict) -> Member:
    ((field, value),) = ref.items()
    return member_get(program=program, field=field, value=value)


class PurchaseBaseView(PosAPIView):
    def purchase_input(self, request: Request) -> tuple[MemberRef, PurchaseInput]:
        # A plainly valid body skips building the serializer (the same fields validate it); any other is
        # validated, and explained, by the serializer.
        validated = plain_parse(PosPurchaseInput, request.data)
        if validated is None:
            serializer = PosPurchaseInput(data=request.data)
            serializer.is_valid(raise_exception=True)
            validated = serializer.validated_data
        ((field, value),) = validated["member"].items()
        data = PosPurchaseInput.to_input(validated)
        return MemberRef(field, value), replace(data, store=self.store(data.store))


class PurchaseView(PurchaseBaseView):
    @extend_schema(
        operation_id="pos_purchase_record",
        tags=PURCHASE_TAGS,
        request=PosPurchaseInput,
        responses={201: PosPurchaseOutput, 200: PosPurchaseOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Record a purchase and award points",
        description="Points are computed by the program's earning rules at the purchase time. The answer says "
        "which rule gave how many points, the balances after and any tier change. The external id is unique in "
        "the program: sending the same purchase again returns the first answer (200) and awards nothing more.",
    )
    def post(self, request: Request) -> Response:
        # The service looks the member up as it locks their account: one statement for both.
        ref, data = self.purchase_input(request)
        result = purchase_record(program=self.program, member=ref, data=data, savepoint=not self.in_request_transaction)
        return Response(purchase_output(result, data.external_id), status=200 if result.replayed else 201)


class PurchaseSimulateView(PurchaseBaseView):
    @extend_schema(
        operation_id="pos_purchase_simulate",
        tags=PURCHASE_TAGS,
        request=PosPurchaseInput,
        responses={200: PosPurchaseOutput, **problems(400, 401, 404, 415, 422, 429)},
        summary="Compute the points of a purchase without recording it",
    )
    def post(self, request: Request) -> Response:
        ref, data = self.purchase_input(request)
        member = member_get(program=self.program, field=ref.field, value=ref.value)
        result = purchase_simulate(program=self.program, member=member, data=data)
        return Response(purchase_output(result, data.external_id))


class ReturnView(PosAPIView):
    @extend_schema(
        operation_id="pos_return_record",
        tags=PURCHASE_TAGS,
        request=PosReturnInput,
        responses={201: PosReturnOutput, 200: PosReturnOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Reverse a purchase in part or whole",
        description="Give the returned lines (matched by SKU) or an amount. Each returned line gives back what it "
        "earned (base rate and multipliers), and a bonus whose condition the lines left no longer meet (minimum "
        "basket, SKU in basket) goes back whole; an amount gives back its proportional share. Never more than the "
        "purchase gave, all of it once everything is returned; points already spent become debt. "
        "The return's external id is unique: repeating a return does nothing. `occurred_at` (now when left out) "
        "lies between the purchase and 5 minutes from now. Errors: purchase_not_found (404), "
        "return_exceeds_purchase, return_line_not_in_purchase, return_before_purchase, occurred_at_in_future (422).",
    )
    def post(self, request: Request) -> Response:
        serializer = PosReturnInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = return_record(
            program=self.program,
            external_id=data["external_id"],
            purchase_external_id=data["purchase_external_id"],
            lines=serializer.return_lines(),
            amount=data.get("amount"),
            occurred_at=data.get("occurred_at"),
        )
        record = result.record
        body = {
            "id": record.pk,
            "external_id": record.external_id,
            "purchase_external_id": data["purchase_external_id"],
            "member_id": result.member.pk,
            "amount": record.amount,
            "points_reversed": record.points_reversed,
            "balances": result.balances,
            "tier": result.tier,
        }
        return Response(PosReturnOutput(body).data, status=200 if result.replayed else 201)


class EventView(PosAPIView):
    @extend_schema(
        operation_id="pos_event_record",
        tags=PURCHASE_TAGS,
        request=PosEventInput,
        responses={201: PosEventOutput, 200: PosEventOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Record a custom event (points from the program's event rules)",
    )
    def post(self, request: Request) -> Response:
        data = parse(PosEventInput, request.data)
        member = _member_from_ref(self.program, data["member"])
        result = event_record(
            program=self.program,
            member=member,
            event=data["event"],
            external_id=data["external_id"],
            occurred_at=data.get("occurred_at"),
        )
        balances = member_balances(member=member)
        body = {
            "member_id": member.pk,
            "event": result.event,
            "points_awarded": result.points,
            "awards": result.awards,
            "balances": balances,  # ShortBalancesOutput reads the three balances of `Balances`
        }
        return Response(PosEventOutput(body).data, status=200 if result.replayed else 201)


class MemberTierView(PosMemberView):
    @extend_schema(
        operation_id="pos_member_tier",
        tags=TAGS,
        responses={200: TierSummaryOutput, **problems(401, 404, 429)},
        summary="A member's tier: metric, what is missing for the next tier and to keep this one, review date",
    )
    def get(self, request: Request, member_id: str) -> Response:
        return Response(TierSummaryOutput(member_tier_summary(member=self.get_member())).data)
