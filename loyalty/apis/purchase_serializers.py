"""Serializers of purchases, returns, events and tier summaries (integration and manager APIs).

`extend_schema_serializer(component_name=...)` keeps the OpenAPI component names the POS bodies were published under
(`PurchaseIn`, `ReturnOut`, ...): the schema is a contract; the classes take the house suffixes (Input, Output).
"""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from config.api.input import AwareDateTimeField, InputSerializer
from config.money import DecimalDigits
from loyalty.apis.serializers import ShortBalancesOutput
from loyalty.models import Channel
from loyalty.services.purchases import MAX_PURCHASE_TOTAL, LineInput, PurchaseInput
from loyalty.services.returns import ReturnLineInput
from members.selectors import LOOKUP_FIELDS

MONEY: DecimalDigits = {"max_digits": 14, "decimal_places": 2}


class PurchaseMoneyField(serializers.DecimalField):
    """A purchase's amount, of any size here: one past MAX_PURCHASE_TOTAL is refused by the service with
    422 amount_too_large (docs/api.md, "Limits"), as a purchase worth too many points is."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=None, decimal_places=2, min_value=Decimal(0), **kwargs)

    def quantize(self, value: Decimal) -> Decimal:
        # Quantizing needs every digit within the context's 28; far larger values are refused anyway.
        return value if abs(value) > MAX_PURCHASE_TOTAL else super().quantize(value)


class MemberRefInput(InputSerializer):
    """Exactly one way to name the member."""

    exactly_one_field = True  # the schema says so with oneOf (config.api.openapi)

    id = serializers.IntegerField(required=False, min_value=1)
    card = serializers.CharField(required=False, max_length=32)
    external_id = serializers.CharField(required=False, max_length=100)
    email = serializers.CharField(required=False, max_length=254)
    phone = serializers.CharField(required=False, max_length=32)

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError(f"Give exactly one of {', '.join(LOOKUP_FIELDS)}.")
        return attrs


class PurchaseLineInput(InputSerializer):
    sku = serializers.CharField(max_length=64)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"))
    unit_price: serializers.DecimalField = PurchaseMoneyField()  # VoucherLineIn declares a plain one
    amount = PurchaseMoneyField()


@extend_schema_serializer(component_name="PurchaseIn")
class PosPurchaseInput(InputSerializer):
    external_id = serializers.CharField(max_length=100, help_text="Receipt or order id, unique in the program.")
    member = MemberRefInput()
    store = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.POS)
    occurred_at = AwareDateTimeField()
    currency = serializers.RegexField(r"^[A-Za-z]{3}$")
    total = PurchaseMoneyField(help_text="At most 999999999999.99; a larger one is refused with amount_too_large.")
    # `many=True` hands max_length to the ListSerializer; the stubs miss it.
    lines = PurchaseLineInput(many=True, required=False, max_length=500)  # type: ignore[call-arg]

    @staticmethod
    def to_input(data: dict[str, Any]) -> PurchaseInput:
        """The service's input from validated data (of the serializer, or of `plain_parse`)."""
        return PurchaseInput(
            external_id=data["external_id"],
            occurred_at=data["occurred_at"],
            currency=data["currency"].upper(),
            total=data["total"],
            store=data["store"],
            channel=data["channel"],
            lines=tuple(LineInput(**line) for line in data.get("lines", [])),
        )


class AwardOutput(serializers.Serializer):
    rule = serializers.CharField()
    rule_id = serializers.IntegerField(allow_null=True)
    points = serializers.IntegerField()


class TierChangeOutput(serializers.Serializer):
    before = serializers.CharField(allow_null=True)
    after = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="PurchaseOut")
class PosPurchaseOutput(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null for a simulation.")
    external_id = serializers.CharField()
    member_id = serializers.IntegerField()
    points_awarded = serializers.IntegerField()
    awards = AwardOutput(many=True)
    pending_until = serializers.DateTimeField(allow_null=True)
    balances = ShortBalancesOutput()
    tier = TierChangeOutput()


def purchase_output(result, external_id: str) -> dict:
    return {
        "id": result.purchase.pk if result.purchase else None,
        "external_id": external_id,
        "member_id": result.member.pk,
        "points_awarded": result.points,
        "awards": result.awards,
        "pending_until": result.outcome["pending_until"],
        "balances": result.outcome["balances"],
        "tier": result.outcome["tier"],
    }


@extend_schema_serializer(component_name="ReturnLineIn")
class PosReturnLineInput(InputSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"), required=False)
    amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))


@extend_schema_serializer(component_name="ReturnIn")
class PosReturnInput(InputSerializer):
    external_id = serializers.CharField(max_length=100, help_text="The return's own id, unique in the program.")
    purchase_external_id = serializers.CharField(max_length=100)
    # `many=True` hands max_length to the ListSerializer; the stubs miss it.
    lines = PosReturnLineInput(many=True, required=False, max_length=500)  # type: ignore[call-arg]
    amount = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"), required=False)
    occurred_at = AwareDateTimeField(required=False)
    schema_required_groups = ("oneOf", [("lines",), ("amount",)])  # config.api.openapi

    def validate(self, attrs):
        if bool(attrs.get("lines")) == ("amount" in attrs):
            raise serializers.ValidationError("Give either returned lines or an amount.")
        return attrs

    def return_lines(self) -> tuple[ReturnLineInput, ...]:
        return tuple(ReturnLineInput(**line) for line in self.validated_data.get("lines", []))


@extend_schema_serializer(component_name="ReturnOut")
class PosReturnOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    purchase_external_id = serializers.CharField()
    member_id = serializers.IntegerField()
    amount = serializers.DecimalField(**MONEY)
    points_reversed = serializers.IntegerField()
    balances = ShortBalancesOutput()
    tier = TierChangeOutput()


@extend_schema_serializer(component_name="EventIn")
class PosEventInput(InputSerializer):
    member = MemberRefInput()
    event = serializers.RegexField(r"^[a-z0-9_.-]{1,64}$", help_text="signup-like names or your own, e.g. app_review.")
    external_id = serializers.CharField(max_length=100, help_text="Your id for this occurrence (once only).")
    occurred_at = AwareDateTimeField(required=False)


@extend_schema_serializer(component_name="EventOut")
class PosEventOutput(serializers.Serializer):
    member_id = serializers.IntegerField()
    event = serializers.CharField()
    points_awarded = serializers.IntegerField()
    awards = AwardOutput(many=True)
    balances = ShortBalancesOutput()


class TierRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    rank = serializers.IntegerField()
    threshold = serializers.DecimalField(**MONEY)
    earn_multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)


class TierSummaryOutput(serializers.Serializer):
    tier = TierRefOutput(allow_null=True)
    metric = serializers.CharField(help_text="qualifying_points, spend or purchases")
    metric_value = serializers.DecimalField(**MONEY)
    window_start = serializers.DateTimeField()
    next_tier = TierRefOutput(allow_null=True)
    missing_for_next = serializers.DecimalField(**MONEY, allow_null=True)
    missing_to_keep = serializers.DecimalField(**MONEY, allow_null=True, help_text="0 when the tier is secured.")
    review_at = serializers.DateTimeField(allow_null=True)
    pinned_until = serializers.DateTimeField(allow_null=True)
    metric_pace_per_day = serializers.DecimalField(
        **MONEY, help_text="The metric gained per day over the program's attainability window (the member's pace)."
    )
    next_tier_days = serializers.IntegerField(
        allow_null=True, help_text="Days to the next tier at that pace; null when there is none or the pace is zero."
    )
    next_tier_date = serializers.DateField(allow_null=True, help_text="The date of next_tier_days (program time zone).")
    keep_days = serializers.IntegerField(
        allow_null=True, help_text="Days to make up missing_to_keep at that pace (0 when secured); null without a tier."
    )
    keep_date = serializers.DateField(allow_null=True)
    keep_on_track = serializers.BooleanField(
        allow_null=True, help_text="Whether the current tier is secured by the review date at this pace."
    )
