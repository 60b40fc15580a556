"""Manager API serializers for tiers, tier history and tier pins."""

from decimal import Decimal

from rest_framework import serializers

from config.api.fields import ProgramSlugField
from config.api.input import AwareDateTimeField, InputSerializer
from loyalty.apis.rule_serializers import MONEY
from loyalty.models import TierHistory

# --- Tiers ----------------------------------------------------------------------------------------


class TierInput(InputSerializer):
    name = serializers.CharField(max_length=60)
    rank = serializers.IntegerField(min_value=0, max_value=32767, help_text="Higher is better; unique per program.")
    threshold = serializers.DecimalField(
        **MONEY, min_value=Decimal(0), help_text="Metric value (points, money or purchases) needed to reach the tier."
    )
    earn_multiplier = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal(1), required=False, help_text="1 = no bonus."
    )
    benefits = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class TierCreateInput(TierInput):
    program = ProgramSlugField()


class TierOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug")
    name = serializers.CharField()
    rank = serializers.IntegerField()
    threshold = serializers.DecimalField(**MONEY)
    earn_multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)
    benefits = serializers.CharField()
    members = serializers.IntegerField(source="member_count", help_text="Members who hold the tier now.")


class TierNameOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


# --- Tier history and pins ------------------------------------------------------------------------


class TierHistoryOutput(serializers.ModelSerializer):
    program = serializers.CharField(source="program.slug")
    member_id = serializers.IntegerField()
    from_tier = TierNameOutput(allow_null=True)
    to_tier = TierNameOutput(allow_null=True)
    reason_label = serializers.CharField(source="get_reason_display")
    actor = serializers.CharField(source="actor.get_username", allow_null=True, default=None)

    class Meta:
        model = TierHistory
        fields = [
            "id",
            "program",
            "member_id",
            "from_tier",
            "to_tier",
            "reason",
            "reason_label",
            "metric_value",
            "note",
            "actor",
            "created_at",
        ]


class TierPinInput(InputSerializer):
    tier = serializers.IntegerField(
        min_value=1, allow_null=True, help_text="Id of a tier of the member's program; null keeps them without a tier."
    )
    until = AwareDateTimeField(help_text="The pin ends at this moment (in the future).")
    note = serializers.CharField(max_length=1000, help_text="Why: kept in the tier history with your name.")

    def validate_note(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Say why the tier is pinned.")
        return value.strip()


class TierPinOutput(serializers.Serializer):
    member_id = serializers.IntegerField()
    tier = TierNameOutput(allow_null=True)
    pinned_until = serializers.DateTimeField()
    review_at = serializers.DateTimeField(allow_null=True)
    history = TierHistoryOutput(help_text="The tier history row the pin wrote.")
