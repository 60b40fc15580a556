"""Input and output of the member app's sign-in and profile endpoints."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.input import InputSerializer
from loyalty.apis.purchase_serializers import TierSummaryOutput
from loyalty.apis.serializers import MemberOutput
from loyalty.selectors import member_tier_summary
from members.models import Member
from members.tokens import token_digest


class LoginInput(InputSerializer):
    program = serializers.SlugField(max_length=64, help_text="The program's slug, fixed in the app's build.")
    email = serializers.CharField(max_length=254, required=False)
    card = serializers.CharField(max_length=32, required=False)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    schema_required_groups = ("oneOf", [("email",), ("card",)])  # config.api.openapi

    def validate(self, attrs):
        if ("email" in attrs) == ("card" in attrs):
            raise serializers.ValidationError("Give either email or card.")
        return attrs


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    member_id = serializers.IntegerField()


class ProgramRefOutput(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    currency = serializers.CharField()
    points_name = serializers.CharField()


class AppMemberOutput(MemberOutput):
    """The signed-in member: profile, balances, program and tier summary."""

    program = ProgramRefOutput()
    tier = serializers.SerializerMethodField()

    @extend_schema_field(TierSummaryOutput)
    def get_tier(self, member: Member) -> dict:
        return TierSummaryOutput(member_tier_summary(member=member)).data


class ProfileUpdateInput(InputSerializer):
    """What a member may change themselves. Email and card identify the member at sign-in
    and at the till, so only the program changes them."""

    refuses_unknown_fields = True  # the schema: additionalProperties false, minProperties 1 (config.api.openapi)
    schema_min_properties = 1

    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.RegexField(r"^\+?[0-9 ()./-]{5,32}$", required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    consent_email = serializers.BooleanField(required=False)
    consent_sms = serializers.BooleanField(required=False)
    consent_push = serializers.BooleanField(required=False)

    def validate_phone(self, value: str) -> str:
        if value and sum(ch.isdigit() for ch in value) < 5:
            raise serializers.ValidationError("A phone number needs at least 5 digits.")
        return value

    def validate_birth_date(self, value):
        if value and value > timezone.localdate():
            raise serializers.ValidationError("The birth date cannot be in the future.")
        return value

    def validate(self, attrs):
        # Unknown fields are refused rather than ignored: a client sending `email` or `status`
        # must learn that they were not changed.
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: ["This field cannot be changed here."] for name in unknown})
        if not attrs:
            raise serializers.ValidationError("Give at least one field to change.")
        return attrs


class LogoutInput(InputSerializer):
    """Like OAuth token revocation (RFC 7009): the token may be named in the body too."""

    token = serializers.CharField(
        required=False,
        max_length=64,
        help_text="The token to delete; when given it must be the one this request is signed with.",
    )

    def validate_token(self, value: str) -> str:
        if token_digest(value) != self.context["signed_with"]:
            raise serializers.ValidationError("Give the token this request is signed with, or nothing.")
        return value


class LogoutOutput(serializers.Serializer):
    signed_out = serializers.BooleanField()


class ExportOutput(serializers.Serializer):
    member = serializers.DictField(help_text="Personal data: identifiers, names, birth date, consents, referral.")
    login = serializers.DictField(
        allow_null=True,
        help_text="The app login: username, email, active, dates, and the tokens that exist (issued and expiry "
        "times only; never a token or the password hash). Null without a login.",
    )
    events = serializers.ListField(
        child=serializers.DictField(), help_text="The member's business events in the outbox (webhook payloads)."
    )
    ledger = serializers.DictField(help_text="Balances and every ledger entry, oldest first.")
    purchases = serializers.DictField(help_text="Purchases, their lines, returns and the points each rule gave.")
    tier_history = serializers.ListField(child=serializers.DictField(), help_text="Tier changes, oldest first.")
    analytics = serializers.DictField(
        help_text="What the program computed (RFM, segment, CLV; null before the first refresh), segment changes "
        "and NPS answers."
    )
    rewards = serializers.DictField(help_text="Vouchers (with their codes) and points holds of e-shop baskets.")
