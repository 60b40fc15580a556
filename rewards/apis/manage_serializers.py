"""Manager API serializers for the reward catalog and vouchers.

The inputs parse types and bounds only; what makes a reward valid (a percent within 0-100, a SKU for a
free product, an end after the start, a tier of the same program) is the model's `clean()` and check
constraints, applied by `reward_save`. Unknown or server-owned fields are refused (`InputSerializer`).
`VoucherCancelInput` keeps its published component name, `VoucherCancelIn` (the schema is a contract).
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from config.api.fields import IdField
from config.api.input import AwareDateTimeField, InputSerializer
from config.money import DecimalDigits
from loyalty.apis.serializers import ShortBalancesOutput
from loyalty.apis.tier_serializers import TierNameOutput
from loyalty.models import MAX_POINTS_PER_ENTRY
from rewards.models import SCOPE_ITEM_LENGTH, SCOPE_ITEMS, RewardKind, VoucherStatus

MONEY: DecimalDigits = {"max_digits": 14, "decimal_places": 2}
MAX_INT = 2_147_483_647  # PositiveIntegerField
MAX_SMALL_INT = 32_767  # PositiveSmallIntegerField


class RewardInput(InputSerializer):
    """The fields a manager sets on a reward. The program is chosen once, at creation; timestamps are the server's."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(
        **MONEY,
        required=False,
        allow_null=True,
        help_text="Money off (fixed discount), percent (percent discount, above 0 and at most 100) or the free "
        "product's price. Needed by every kind but gift.",
    )
    sku = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text="The free product's SKU.")
    # The model's bounds (its validators and check constraints) stated here too, so the schema says them.
    points_cost = serializers.IntegerField(min_value=1, max_value=MAX_POINTS_PER_ENTRY, help_text="At least 1.")
    min_tier = IdField(
        required=False,
        allow_null=True,
        help_text="Id of a tier of the reward's program: the lowest that may redeem it. Null: every member.",
    )
    active_from = AwareDateTimeField(required=False, allow_null=True)
    active_until = AwareDateTimeField(required=False, allow_null=True, help_text="After active_from.")
    stock = serializers.IntegerField(
        min_value=0,
        max_value=MAX_INT,
        required=False,
        allow_null=True,
        help_text="Vouchers left to issue; null: unlimited.",
    )
    per_member_limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_INT,
        required=False,
        allow_null=True,
        help_text="Vouchers per member; null: no limit.",
    )
    voucher_valid_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SMALL_INT,
        required=False,
        help_text="Days a voucher is valid after it is issued (30).",
    )
    min_basket = serializers.DecimalField(
        **MONEY,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="The least amount of the basket's lines in scope (the whole basket without a scope).",
    )
    scope_skus = serializers.ListField(
        child=serializers.CharField(max_length=SCOPE_ITEM_LENGTH),
        required=False,
        max_length=SCOPE_ITEMS,
        help_text="SKUs the discount applies to. With neither SKUs nor categories: the whole basket.",
    )
    scope_categories = serializers.ListField(
        child=serializers.CharField(max_length=SCOPE_ITEM_LENGTH),
        required=False,
        max_length=SCOPE_ITEMS,
        help_text="Categories the discount applies to (a line is in scope by its SKU or its category).",
    )
    is_active = serializers.BooleanField(required=False, help_text="False switches the reward off (no DELETE).")


class RewardCreateInput(RewardInput):
    program = serializers.SlugField(max_length=64, help_text="Slug of a program you manage.")


class RewardOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug", help_text="Program slug.")
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    kind_label = serializers.CharField(source="get_kind_display")
    value = serializers.DecimalField(**MONEY, allow_null=True)
    sku = serializers.CharField()
    points_cost = serializers.IntegerField()
    min_tier = TierNameOutput(allow_null=True)
    active_from = serializers.DateTimeField(allow_null=True)
    active_until = serializers.DateTimeField(allow_null=True)
    stock = serializers.IntegerField(allow_null=True, help_text="Null: unlimited.")
    per_member_limit = serializers.IntegerField(allow_null=True)
    voucher_valid_days = serializers.IntegerField()
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    scope_skus = serializers.ListField(child=serializers.CharField())
    scope_categories = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class VoucherRewardOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class VoucherOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug", help_text="Program slug.")
    code = serializers.CharField(source="display_code", help_text="Grouped for display: XXXX-XXXX-XXXX.")
    member_id = serializers.IntegerField(allow_null=True, help_text="Null for a campaign code.")
    reward = VoucherRewardOutput(allow_null=True)
    campaign = serializers.CharField(help_text="The campaign's name; empty for a redemption.")
    kind = serializers.ChoiceField(choices=RewardKind.choices, help_text="Copied from the reward when issued.")
    value = serializers.DecimalField(**MONEY, allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    scope_skus = serializers.ListField(child=serializers.CharField(), help_text="Copied from the reward when issued.")
    scope_categories = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=VoucherStatus.choices)
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    points_cost = serializers.IntegerField(help_text="Points spent on it (0 for a campaign voucher).")
    redeemed_at = serializers.DateTimeField(allow_null=True)
    redeemed_reference = serializers.CharField(help_text="The till's receipt or order id.")
    redeemed_discount = serializers.DecimalField(
        **MONEY, allow_null=True, help_text="The discount given at redemption, on the basket's lines in scope."
    )
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancelled_by = serializers.CharField(
        source="cancelled_by.get_username", allow_null=True, default=None, help_text="The manager who cancelled it."
    )


@extend_schema_serializer(component_name="VoucherCancelIn")
class VoucherCancelInput(InputSerializer):
    """No fields: send an empty object (or no body)."""


class VoucherCancelInputExtension(OpenApiSerializerExtension):
    """Documents the cancel body as the empty object it is (drf-spectacular drops empty serializers)."""

    target_class = VoucherCancelInput

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {}, "additionalProperties": False, "description": "No fields."}


class VoucherCancelOutput(serializers.Serializer):
    voucher = VoucherOutput()
    balances = ShortBalancesOutput(allow_null=True, help_text="The member's balances after; null for a campaign code.")
