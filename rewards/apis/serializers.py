"""Input and output of the reward and voucher endpoints.

`extend_schema_serializer(component_name=...)` keeps the OpenAPI component names the bodies were published under
(`RedemptionIn`, `HoldOut`, ...): the schema is a contract; the classes take the house suffixes (Input, Output).
"""

from decimal import Decimal
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from config.api.fields import IdField
from config.api.input import AwareDateTimeField, InputSerializer
from config.money import DecimalDigits
from loyalty.apis.purchase_serializers import MemberRefInput, PurchaseLineInput
from loyalty.apis.serializers import ShortBalancesOutput
from loyalty.models import MAX_POINTS_PER_ENTRY
from members.models import MemberStatus
from rewards.discounts import BasketLine
from rewards.models import HoldStatus, RewardKind, VoucherStatus

MONEY: DecimalDigits = {"max_digits": 14, "decimal_places": 2}


@extend_schema_serializer(component_name="VoucherLineIn")
class VoucherLineInput(PurchaseLineInput):
    """A line of the basket, as a purchase sends it; quantity and unit price are optional here."""

    quantity = serializers.DecimalField(
        max_digits=12, decimal_places=3, min_value=Decimal("0.001"), required=False, help_text="Not used."
    )
    unit_price = serializers.DecimalField(**MONEY, min_value=Decimal(0), required=False, help_text="Not used.")


class ScopeOutput(serializers.Serializer):
    skus = serializers.ListField(child=serializers.CharField(), help_text="SKUs in scope.")
    categories = serializers.ListField(child=serializers.CharField(), help_text="Categories in scope.")


def scope_body(voucher_or_reward: Any) -> dict[str, list[str]]:
    """The scope, as the APIs show it: empty lists for a voucher that applies to the whole basket."""
    return {"skus": voucher_or_reward.scope_skus, "categories": voucher_or_reward.scope_categories}


def redemption_body(result: Any) -> dict[str, Any]:
    """A redemption's answer (till and member app alike): the voucher it issued and the balances after."""
    voucher = result.voucher
    return {
        "id": voucher.pk,
        "code": voucher.display_code,
        "member_id": voucher.member_id,
        "reward": {"id": voucher.reward_id, "name": voucher.reward.name},
        "kind": voucher.kind,
        "value": voucher.value,
        "min_basket": voucher.min_basket,
        "scope": scope_body(voucher),
        "status": voucher.status,
        "expires_at": voucher.expires_at,
        "points_spent": voucher.points_cost,
        "balances": result.balances,
    }


def basket_lines(data: dict[str, Any]) -> list[BasketLine] | None:
    """The parsed `lines` as the discount rules take them; None when the till sent none."""
    if "lines" not in data:
        return None
    return [BasketLine(sku=line["sku"], category=line["category"], amount=line["amount"]) for line in data["lines"]]


@extend_schema_serializer(component_name="RedemptionIn")
class RedemptionInput(InputSerializer):
    reward_id = IdField()


class RewardRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


@extend_schema_serializer(component_name="RedemptionOut")
class RedemptionOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text="The voucher's id.")
    code = serializers.CharField(help_text="Grouped for display: XXXX-XXXX-XXXX.")
    member_id = serializers.IntegerField()
    reward = RewardRefOutput()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    scope = ScopeOutput(help_text="Where the discount applies; empty lists: the whole basket.")
    status = serializers.ChoiceField(choices=VoucherStatus.choices)
    expires_at = serializers.DateTimeField()
    points_spent = serializers.IntegerField()
    balances = ShortBalancesOutput()


@extend_schema_serializer(component_name="VoucherValidateIn")
class VoucherValidateInput(InputSerializer):
    code = serializers.CharField(
        max_length=40,
        help_text="As printed (XXXX-XXXX-XXXX) or typed; case and dashes do not matter, O reads as 0 and I or L as 1.",
    )
    member = MemberRefInput(required=False, help_text="The member at the till, for member-bound vouchers.")
    basket_amount = serializers.DecimalField(
        **MONEY,
        min_value=Decimal(0),
        required=False,
        help_text="The basket's total; enough for a voucher without scope. Not used when lines are sent.",
    )
    # `many=True` hands max_length to the ListSerializer; the stubs miss it.
    lines = VoucherLineInput(  # type: ignore[call-arg]
        many=True,
        required=False,
        allow_empty=False,
        max_length=500,
        help_text="The basket's lines: the discount applies to those in the voucher's scope (SKUs, categories). "
        "Needed by a voucher with a scope.",
    )


@extend_schema_serializer(component_name="VoucherRedeemIn")
class VoucherRedeemInput(VoucherValidateInput):
    reference = serializers.CharField(max_length=100, help_text="The till's receipt or order id (idempotency).")


@extend_schema_serializer(component_name="VoucherValidateOut")
class VoucherValidateOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    scope = ScopeOutput(help_text="Where the discount applies; empty lists: the whole basket.")
    discount = serializers.DecimalField(
        **MONEY,
        allow_null=True,
        help_text="Off this basket's lines in scope; null when the basket is needed and was not given.",
    )
    expires_at = serializers.DateTimeField()
    member_id = serializers.IntegerField(allow_null=True, help_text="Null for a campaign voucher.")


@extend_schema_serializer(component_name="VoucherRedeemOut")
class VoucherRedeemOutput(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.ChoiceField(choices=VoucherStatus.choices)
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    discount = serializers.DecimalField(
        **MONEY,
        allow_null=True,
        help_text="Given on the basket's lines in scope; recorded. Null only when replaying a redemption made "
        "before discounts were always recorded.",
    )
    reference = serializers.CharField()
    redeemed_at = serializers.DateTimeField()
    member_id = serializers.IntegerField(allow_null=True)


@extend_schema_serializer(component_name="HoldIn")
class HoldInput(InputSerializer):
    basket_reference = serializers.CharField(max_length=100, help_text="The e-shop's basket or order id.")
    basket_amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"), help_text="The basket's total.")
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS_PER_ENTRY, help_text="Points to pay with.")


@extend_schema_serializer(component_name="HoldActionIn")
class HoldActionInput(InputSerializer):
    """No fields: send an empty object (or no body)."""


class HoldActionInputExtension(OpenApiSerializerExtension):
    """Documents capture's and release's body as the empty object it is (drf-spectacular drops empty serializers)."""

    target_class = HoldActionInput

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {}, "additionalProperties": False, "description": "No fields."}


@extend_schema_serializer(component_name="HoldOut")
class HoldOutput(serializers.Serializer):
    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    basket_reference = serializers.CharField()
    basket_amount = serializers.DecimalField(**MONEY)
    points = serializers.IntegerField()
    money_value = serializers.DecimalField(**MONEY, help_text="What the points pay, in the program's currency.")
    status = serializers.ChoiceField(choices=HoldStatus.choices)
    expires_at = serializers.DateTimeField(help_text="Released by itself if neither captured nor released by then.")
    balances = ShortBalancesOutput()


@extend_schema_serializer(component_name="CampaignFiltersIn")
class CampaignFiltersInput(InputSerializer):
    status = serializers.ChoiceField(
        choices=MemberStatus.choices, required=False, help_text="Members of this status; active when left out."
    )
    enrolled_before = AwareDateTimeField(required=False)
    enrolled_after = AwareDateTimeField(required=False, help_text="Enrolled at or after this time.")
    available_min = serializers.IntegerField(min_value=0, required=False, help_text="At least this many points.")
    available_max = serializers.IntegerField(min_value=0, required=False, help_text="At most this many points.")
    member_ids = serializers.ListField(child=IdField(), required=False, max_length=100_000)

    def validate(self, data: dict) -> dict:
        low, high = data.get("available_min"), data.get("available_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"available_max": "Must not be below available_min."})
        return data


@extend_schema_serializer(component_name="CampaignIn")
class CampaignInput(InputSerializer):
    program = serializers.SlugField(max_length=64, help_text="The program's slug.")
    reward_id = IdField()
    campaign = serializers.CharField(max_length=100, help_text="The campaign's name, kept on every voucher.")
    valid_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, help_text="The reward's voucher validity when left out."
    )
    filters = CampaignFiltersInput(required=False, help_text="Which members get a voucher; all active when left out.")


@extend_schema_serializer(component_name="CampaignOut")
class CampaignOutput(serializers.Serializer):
    issued = serializers.IntegerField(help_text="Vouchers issued, one per member selected.")
