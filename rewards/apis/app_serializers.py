"""Output of the member app's reward and voucher endpoints."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.input import InputSerializer
from rewards.apis.serializers import MONEY, RewardRefOutput, ScopeOutput, scope_body
from rewards.models import RewardKind, VoucherStatus


class RedeemInput(InputSerializer):
    """The reward is in the URL and the member comes from the token; the body is optional."""

    expected_points_cost = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The cost the app showed. If the reward costs something else now: 422 reward_cost_changed, "
        "nothing is spent.",
    )


class AttainabilityOutput(serializers.Serializer):
    cost = serializers.IntegerField(help_text="The reward's points cost.")
    available = serializers.IntegerField(help_text="The member's spendable points.")
    gap = serializers.IntegerField(help_text="Points still missing: max(0, cost - available).")
    progress = serializers.FloatField(help_text="min(1, available / cost), rounded to 4 decimals.")
    redeemable_now = serializers.BooleanField(help_text="Whether redeeming now would succeed.")
    pace_per_day = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Points the member earned per day over the program's attainability window (earned less "
        "returned; at least 30 days, at most the window, counted from enrolment).",
    )
    days = serializers.IntegerField(
        allow_null=True,
        help_text="Days until the gap closes at that pace: 0 when there is none, null when the pace is zero.",
    )
    date = serializers.DateField(allow_null=True, help_text="The date of `days` in the program's time zone.")
    expiring_before = serializers.IntegerField(
        allow_null=True,
        help_text="Of the member's points now, how many expire on or before that date (null when never reached).",
    )


class RewardTierOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AppRewardOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    points_cost = serializers.IntegerField()
    min_tier = RewardTierOutput(allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    scope = ScopeOutput(help_text="Where its vouchers apply; empty lists: the whole basket.")
    active_until = serializers.DateTimeField(allow_null=True)
    stock = serializers.IntegerField(allow_null=True, help_text="Vouchers left; null = unlimited.")
    voucher_valid_days = serializers.IntegerField()
    blocked_by = serializers.CharField(
        allow_null=True,
        help_text="Why it cannot be redeemed now, as the redeem call would answer: insufficient_points, "
        "reward_tier_required, reward_out_of_stock, reward_limit_reached or member_suspended; null if it can.",
    )
    attainability = AttainabilityOutput()


class AppVoucherOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(source="display_code", help_text="Grouped for display: XXXX-XXXX-XXXX.")
    reward = RewardRefOutput(allow_null=True, help_text="Null for a campaign voucher without a reward.")
    kind = serializers.ChoiceField(choices=RewardKind.choices)
    value = serializers.DecimalField(**MONEY, allow_null=True)
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    scope = serializers.SerializerMethodField(help_text="Where the discount applies; empty lists: the whole basket.")
    status = serializers.SerializerMethodField(help_text="issued, redeemed, expired or cancelled.")
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    redeemed_at = serializers.DateTimeField(allow_null=True)
    points_spent = serializers.IntegerField(source="points_cost")
    campaign = serializers.CharField()

    @extend_schema_field(ScopeOutput)
    def get_scope(self, voucher) -> dict[str, list[str]]:
        return scope_body(voucher)

    @extend_schema_field(serializers.ChoiceField(choices=VoucherStatus.choices))
    def get_status(self, voucher) -> str:
        # The nightly job marks vouchers expired; until it runs, an issued voucher past its expiry is shown expired.
        now = self.context["now"]
        if voucher.status == VoucherStatus.ISSUED and voucher.expires_at <= now:
            return VoucherStatus.EXPIRED
        return voucher.status
