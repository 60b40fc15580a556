"""Input and output of the reward and voucher endpoints."""

from decimal import Decimal

from rest_framework import serializers

from loyalty.apis.purchase_serializers import MemberRefInput, ShortBalancesOutput

from ..models import RewardKind, VoucherStatus

MONEY = {"max_digits": 14, "decimal_places": 2}


class RedemptionIn(serializers.Serializer):
    reward_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class RewardRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class RedemptionOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="The voucher's id.")
    code = serializers.CharField(help_text="Grouped for display: XXXX-XXXX-XXXX.")
    member_id = serializers.IntegerField()
    reward = RewardRefOutput()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    status = serializers.ChoiceField(choices=VoucherStatus.choices)
    expires_at = serializers.DateTimeField()
    points_spent = serializers.IntegerField()
    balances = ShortBalancesOutput()


class VoucherValidateIn(serializers.Serializer):
    code = serializers.CharField(
        max_length=40,
        help_text="As printed (XXXX-XXXX-XXXX) or typed; case and dashes do not matter, O reads as 0 and I or L as 1.",
    )
    member = MemberRefInput(required=False, help_text="The member at the till, for member-bound vouchers.")
    basket_amount = serializers.DecimalField(**MONEY, min_value=Decimal(0), required=False)


class VoucherRedeemIn(VoucherValidateIn):
    reference = serializers.CharField(max_length=100, help_text="The till's receipt or order id (idempotency).")


class VoucherValidateOut(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    discount = serializers.DecimalField(
        **MONEY, allow_null=True, help_text="Off this basket; null when the basket is needed and was not given."
    )
    expires_at = serializers.DateTimeField()
    member_id = serializers.IntegerField(allow_null=True, help_text="Null for a campaign voucher.")


class VoucherRedeemOut(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.ChoiceField(choices=VoucherStatus.choices)
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    discount = serializers.DecimalField(**MONEY, allow_null=True)
    reference = serializers.CharField()
    redeemed_at = serializers.DateTimeField()
    member_id = serializers.IntegerField(allow_null=True)
