"""Manager API serializers for recorded purchases and returns (read-only)."""

from rest_framework import serializers

from loyalty.apis.purchase_serializers import AwardOutput
from loyalty.apis.rule_serializers import MONEY
from loyalty.models import Purchase, PurchaseLine, Return

# --- Purchases and returns ------------------------------------------------------------------------


class PurchaseLineOutput(serializers.ModelSerializer):
    class Meta:
        model = PurchaseLine
        fields = [
            "position",
            "sku",
            "category",
            "quantity",
            "unit_price",
            "amount",
            "eligible",
            "returned_quantity",
            "returned_amount",
        ]


class ReturnLineOutput(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True, required=False)
    amount = serializers.DecimalField(**MONEY)


class ReturnOutput(serializers.ModelSerializer):
    program = serializers.CharField(source="program.slug")
    member_id = serializers.IntegerField()
    purchase_id = serializers.IntegerField()
    purchase_external_id = serializers.CharField(source="purchase.external_id")
    lines = ReturnLineOutput(many=True)

    class Meta:
        model = Return
        fields = [
            "id",
            "external_id",
            "program",
            "member_id",
            "purchase_id",
            "purchase_external_id",
            "amount",
            "eligible_amount",
            "points_reversed",
            "lines",
            "occurred_at",
            "created_at",
        ]


class PurchaseOutput(serializers.ModelSerializer):
    program = serializers.CharField(source="program.slug")
    member_id = serializers.IntegerField()

    class Meta:
        model = Purchase
        fields = [
            "id",
            "external_id",
            "program",
            "member_id",
            "store",
            "channel",
            "occurred_at",
            "currency",
            "total",
            "eligible_amount",
            "points_awarded",
            "points_reversed",
            "returned_total",
            "created_at",
        ]


class PurchaseDetailOutput(PurchaseOutput):
    awards = AwardOutput(many=True, help_text="Which rule gave how many points.")
    lines = PurchaseLineOutput(many=True)
    returns = ReturnOutput(many=True)

    class Meta(PurchaseOutput.Meta):
        fields = [*PurchaseOutput.Meta.fields, "awards", "lines", "returns"]
