"""Integration API for rewards and vouchers: /api/pos/v1/ (see rewards.apis.urls)."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.input import parse
from config.api.pos import ApiKeyThrottle, PosAPIView
from config.api.problems import problems
from members.models import Member
from members.selectors import member_get
from rewards.apis.serializers import (
    HoldActionInput,
    HoldInput,
    HoldOutput,
    RedemptionInput,
    RedemptionOutput,
    VoucherRedeemInput,
    VoucherRedeemOutput,
    VoucherValidateInput,
    VoucherValidateOutput,
    basket_lines,
    redemption_body,
    scope_body,
)
from rewards.apis.throttling import VoucherGuessThrottle
from rewards.exceptions import VoucherNotFound
from rewards.models import Hold, Voucher
from rewards.selectors import hold_get, reward_get
from rewards.services import (
    HoldResult,
    hold_capture,
    hold_create,
    hold_release,
    reward_redeem,
    voucher_redeem,
    voucher_validate,
)

TAGS = ["Integration: rewards and vouchers"]
HOLD_TAGS = ["Integration: points as payment"]


class RedemptionView(PosAPIView):
    @extend_schema(
        operation_id="pos_reward_redeem",
        tags=TAGS,
        request=RedemptionInput,
        responses={201: RedemptionOutput, 200: RedemptionOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Redeem a reward for a member: spend the points, issue a voucher",
        description="Errors: reward_not_found (404), reward_inactive, reward_out_of_stock, reward_limit_reached, "
        "reward_tier_required, insufficient_points, member_suspended (422). With an Idempotency-Key a retry "
        "returns the same voucher and spends nothing more.",
    )
    def post(self, request: Request, member_id: str) -> Response:
        member = member_get(program=self.program, field="id", value=member_id)
        data = parse(RedemptionInput, request.data)
        reward = reward_get(program=self.program, reward_id=data["reward_id"])
        result = reward_redeem(
            member=member, reward=reward, key=self.ledger_key(request), savepoint=not self.in_request_transaction
        )
        return Response(RedemptionOutput(redemption_body(result)).data, status=200 if result.replayed else 201)


class VoucherView(PosAPIView):
    """Base of the code-taking endpoints: unknown codes count towards the guessing throttle."""

    throttle_classes = [ApiKeyThrottle, VoucherGuessThrottle]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, VoucherNotFound):
            VoucherGuessThrottle().record_failure(self.request)
        return super().handle_exception(exc)

    def member_from(self, data: dict[str, Any]) -> Member | None:
        if "member" not in data:
            return None
        ((field, value),) = data["member"].items()
        return member_get(program=self.program, field=field, value=value)


def _validate_body(voucher: Voucher, discount: Any) -> dict[str, Any]:
    return {
        "valid": True,
        "code": voucher.display_code,
        "kind": voucher.kind,
        "value": voucher.value,
        "min_basket": voucher.min_basket,
        "scope": scope_body(voucher),
        "discount": discount,
        "expires_at": voucher.expires_at,
        "member_id": voucher.member_id,
    }


VOUCHER_ERRORS = (
    "Errors: voucher_not_found (404, also for another program's code), voucher_expired, voucher_already_redeemed, "
    "voucher_cancelled, voucher_wrong_member, voucher_out_of_scope (no line in the voucher's scope), "
    "voucher_min_basket_not_met (the amount in scope is below the minimum), voucher_basket_required (a voucher "
    "with a scope was sent no lines; the problem's `needs` says what to send) (422). Too many unknown codes from "
    "one key or address: 429 throttled."
)
DISCOUNT = (
    "The discount applies to the basket's lines in the voucher's scope (SKUs, categories; every line without a "
    "scope), or to basket_amount for a voucher without scope: a fixed discount up to that amount, a percentage "
    "of it rounded half up to cents, a free product's price, 0 for a gift. "
)


class VoucherValidateView(VoucherView):
    @extend_schema(
        operation_id="pos_voucher_validate",
        tags=TAGS,
        request=VoucherValidateInput,
        responses={200: VoucherValidateOutput, **problems(400, 401, 404, 415, 422, 429)},
        summary="Check a voucher code against a basket (changes nothing)",
        description=DISCOUNT + "Without a basket the discount is null where it depends on it. " + VOUCHER_ERRORS,
    )
    def post(self, request: Request) -> Response:
        data = parse(VoucherValidateInput, request.data)
        result = voucher_validate(
            program=self.program,
            code=data["code"],
            basket_amount=data.get("basket_amount"),
            lines=basket_lines(data),
            member=self.member_from(data),
        )
        return Response(VoucherValidateOutput(_validate_body(result.voucher, result.discount)).data)


class VoucherRedeemView(VoucherView):
    @extend_schema(
        operation_id="pos_voucher_redeem",
        tags=TAGS,
        request=VoucherRedeemInput,
        responses={200: VoucherRedeemOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Use a voucher on a sale",
        description=DISCOUNT + "The discount given is recorded. A percent discount needs basket_amount or lines, "
        "a voucher with a scope needs lines (voucher_basket_required otherwise); a fixed discount without scope "
        "may be redeemed without a basket (its full value). Idempotent by reference: the same code with the same "
        "reference answers as the first time; with another reference: voucher_already_redeemed. Of two tills "
        "using one code at once exactly one succeeds. " + VOUCHER_ERRORS,
    )
    def post(self, request: Request) -> Response:
        data = parse(VoucherRedeemInput, request.data)
        result = voucher_redeem(
            program=self.program,
            code=data["code"],
            reference=data["reference"],
            basket_amount=data.get("basket_amount"),
            lines=basket_lines(data),
            member=self.member_from(data),
        )
        voucher = result.voucher
        body = {
            "code": voucher.display_code,
            "status": voucher.status,
            "kind": voucher.kind,
            "value": voucher.value,
            "discount": result.discount,
            "reference": voucher.redeemed_reference,
            "redeemed_at": voucher.redeemed_at,
            "member_id": voucher.member_id,
        }
        return Response(VoucherRedeemOutput(body).data)


# --- Points as payment ------------------------------------------------------------------


def _hold_body(result: HoldResult) -> dict[str, Any]:
    hold: Hold = result.hold
    return {
        "id": hold.pk,
        "member_id": hold.member_id,
        "basket_reference": hold.basket_reference,
        "basket_amount": hold.basket_amount,
        "points": hold.points,
        "money_value": hold.money_value,
        "status": hold.status,
        "expires_at": hold.expires_at,
        "balances": result.balances,
    }


class HoldCreateView(PosAPIView):
    @extend_schema(
        operation_id="pos_hold_create",
        tags=HOLD_TAGS,
        request=HoldInput,
        responses={201: HoldOutput, 200: HoldOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="Hold a member's points against an e-shop basket",
        description="The points leave the available balance at once (they cannot be spent twice) and pay "
        "`money_value` at the program's point value. Capture the hold when the basket is paid, release it when "
        "it is not; a hold left alone is released when it expires. Errors: member_not_found (404), "
        "hold_exceeds_share (422, with what the basket's other held and captured holds pay, the points would pay "
        "more than the program's share of the basket; the problem carries max_points still allowed and "
        "basket_paid), points_payment_unavailable, insufficient_points, member_suspended, member_closed (422), "
        "hold_basket_mismatch (409, the basket reference belongs to another member, or has live holds for another "
        "basket_amount). A basket reference is unique in the program. With an Idempotency-Key a retry returns the "
        "same hold (200) and holds nothing more; without one it is a second hold, within the basket's share.",
    )
    def post(self, request: Request, member_id: str) -> Response:
        member = member_get(program=self.program, field="id", value=member_id)
        data = parse(HoldInput, request.data)
        result = hold_create(member=member, key=self.ledger_key(request), **data)
        return Response(HoldOutput(_hold_body(result)).data, status=200 if result.replayed else 201)


class HoldCaptureView(PosAPIView):
    @extend_schema(
        operation_id="pos_hold_capture",
        tags=HOLD_TAGS,
        request=HoldActionInput,
        responses={200: HoldOutput, **problems(400, 401, 404, 409, 415, 422, 429)},
        summary="The basket was paid: keep the held points",
        description="The share is checked again: the basket's captured holds and this one together pay at most "
        "the program's share of the basket. Errors: hold_not_found (404, also for another program's hold), "
        "hold_not_active (409, the hold was already captured, released or expired), hold_exceeds_share (422).",
    )
    def post(self, request: Request, hold_id: str) -> Response:
        parse(HoldActionInput, request.data)
        result = hold_capture(hold=hold_get(program=self.program, hold_id=hold_id))
        return Response(HoldOutput(_hold_body(result)).data)


class HoldReleaseView(PosAPIView):
    @extend_schema(
        operation_id="pos_hold_release",
        tags=HOLD_TAGS,
        request=HoldActionInput,
        responses={200: HoldOutput, **problems(400, 401, 404, 409, 415, 429)},
        summary="The basket was abandoned: give the held points back",
        description="The points return to the lots they came from, with their original expiry. Errors: "
        "hold_not_found (404, also for another program's hold), hold_not_active (409).",
    )
    def post(self, request: Request, hold_id: str) -> Response:
        parse(HoldActionInput, request.data)
        result = hold_release(hold=hold_get(program=self.program, hold_id=hold_id))
        return Response(HoldOutput(_hold_body(result)).data)
