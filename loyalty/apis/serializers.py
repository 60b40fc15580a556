"""Input and output serializers shared by the integration and manager APIs."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.input import InputSerializer
from loyalty.models import MAX_POINTS_PER_ENTRY, Allocation, Entry
from loyalty.selectors import Balances, member_balances
from members.identifiers import format_card
from members.models import Member


class MemberEnrollInput(InputSerializer):
    external_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    card = serializers.RegexField(r"^[A-Za-z0-9 -]{4,32}$", required=False, help_text="Generated when absent.")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.RegexField(r"^\+?[0-9 ()./-]{5,32}$", required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    referral_code = serializers.CharField(
        max_length=16, required=False, allow_blank=True, help_text="Referral code of the member who brought this one."
    )
    acquisition_channel = serializers.CharField(max_length=64, required=False, allow_blank=True)
    consent_email = serializers.BooleanField(required=False, default=False)
    consent_sms = serializers.BooleanField(required=False, default=False)
    consent_push = serializers.BooleanField(required=False, default=False)
    schema_required_groups = ("anyOf", [("external_id",), ("email",), ("phone",), ("card",)])  # config.api.openapi

    def validate_card(self, value: str) -> str:
        if sum(ch.isalnum() for ch in value) < 4:
            raise serializers.ValidationError("A card number needs at least 4 letters or digits.")
        return value

    def validate_phone(self, value: str) -> str:
        if value and sum(ch.isdigit() for ch in value) < 5:
            raise serializers.ValidationError("A phone number needs at least 5 digits.")
        return value

    def validate_birth_date(self, value):
        if value and value > timezone.localdate():
            raise serializers.ValidationError("The birth date cannot be in the future.")
        return value

    def validate(self, attrs):
        if not any(attrs.get(field) for field in ("external_id", "email", "phone", "card")):
            raise serializers.ValidationError("Give at least one of external_id, email, phone or card.")
        return attrs


# The two shapes of balances in the APIs, one serializer (and one OpenAPI component) each: a member's
# balances (`loyalty.selectors.Balances`) and the three balances a write answers with, as events carry them
# (`events.payloads.common.BalancesData`, built by `Account.balances`).


class BalancesOutput(serializers.Serializer):
    available = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Earned, spendable once the return window has passed.")
    debt = serializers.IntegerField(help_text="Points owed after a return of already spent points.")
    expiring_soon = serializers.IntegerField(help_text="Points that expire within the program's warning window.")
    expiring_soon_until = serializers.DateTimeField(allow_null=True)
    earned = serializers.IntegerField(help_text="Lifetime points credited.")
    redeemed = serializers.IntegerField(help_text="Lifetime points spent on rewards.")
    expired = serializers.IntegerField(help_text="Lifetime points lost to expiry.")


class ShortBalancesOutput(serializers.Serializer):
    available = serializers.IntegerField()
    pending = serializers.IntegerField()
    debt = serializers.IntegerField()


class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    card = serializers.SerializerMethodField()
    email = serializers.EmailField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    status = serializers.CharField()
    enrolled_at = serializers.DateTimeField()
    referral_code = serializers.CharField()
    acquisition_channel = serializers.CharField()
    consent_email = serializers.BooleanField()
    consent_sms = serializers.BooleanField()
    consent_push = serializers.BooleanField()
    balances = serializers.SerializerMethodField()

    def get_card(self, member: Member) -> str:
        return format_card(member.card)

    @staticmethod
    def _balances(member: Member) -> Balances:
        cached = getattr(member, "_balances", None)
        return cached if cached is not None else member_balances(member=member)

    @extend_schema_field(BalancesOutput)
    def get_balances(self, member: Member) -> dict:
        return BalancesOutput(self._balances(member)).data


class MemberListOutput(serializers.Serializer):
    """A member in a list: balances from the joined account row (annotated), without the expiry sum."""

    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    card = serializers.SerializerMethodField()
    email = serializers.EmailField(allow_null=True)
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    status = serializers.CharField()
    enrolled_at = serializers.DateTimeField()
    program = serializers.CharField(source="program.slug", help_text="Program slug.")
    available = serializers.IntegerField(source="points_available")
    pending = serializers.IntegerField(source="points_pending")
    debt = serializers.IntegerField(source="points_debt")

    def get_card(self, member: Member) -> str:
        return format_card(member.card)


class AllocationOutput(serializers.ModelSerializer):
    lot_expires_at = serializers.DateTimeField(source="lot.expires_at", allow_null=True)

    class Meta:
        model = Allocation
        fields = ["lot", "amount", "lot_expires_at"]


class EntryOutput(serializers.ModelSerializer):
    points = serializers.IntegerField(source="amount", help_text="Positive for credits, negative for debits.")
    kind_label = serializers.CharField(source="get_kind_display")
    available_at = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    remaining = serializers.SerializerMethodField()
    allocations = AllocationOutput(many=True, read_only=True)

    class Meta:
        model = Entry
        fields = [
            "id",
            "kind",
            "kind_label",
            "points",
            "uncovered",
            "occurred_at",
            "created_at",
            "reason",
            "details",
            "available_at",
            "expires_at",
            "remaining",
            "allocations",
        ]

    def _lot(self, entry: Entry):
        return entry.lot if entry.amount > 0 and hasattr(entry, "lot") else None

    def get_available_at(self, entry: Entry) -> str | None:
        lot = self._lot(entry)
        return serializers.DateTimeField().to_representation(lot.available_at) if lot else None

    def get_expires_at(self, entry: Entry) -> str | None:
        lot = self._lot(entry)
        return serializers.DateTimeField().to_representation(lot.expires_at) if lot and lot.expires_at else None

    def get_remaining(self, entry: Entry) -> int | None:
        lot = self._lot(entry)
        return lot.remaining if lot else None


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: no strings, no floats, no booleans."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class AdjustmentInput(InputSerializer):
    points = StrictIntegerField(
        min_value=-MAX_POINTS_PER_ENTRY,
        max_value=MAX_POINTS_PER_ENTRY,
        help_text="Points to add (positive) or remove (negative); not zero.",
    )
    reason = serializers.CharField(max_length=1000, help_text="Why: kept on the entry for audit.")
    allow_debt = serializers.BooleanField(
        default=False, help_text="Let a removal exceed the available balance, the rest becoming debt."
    )

    def validate_points(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Points must not be zero.")
        return value

    def validate_reason(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A reason is required.")
        return value.strip()


class AdjustmentOutput(serializers.Serializer):
    entry = EntryOutput()
    balances = BalancesOutput()
