"""Manager API serializers for earning rules and the rule preview's input and output (the preview itself is
`loyalty.selectors.rules_preview`, shared with the admin's "Test this rule" page). Tiers and tier history are in
`tier_serializers`, purchases and returns in `purchase_output_serializers`.

Inputs are explicit and strict (`config.api.input.InputSerializer`): a field the serializer does not
know (say `budget_used` or `config_version`, which only the server writes) is refused with
400 `unknown_field` instead of being silently dropped.
"""

from decimal import Decimal
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.fields import empty

from config.api.fields import NamedChoiceField, ProgramSlugField
from config.api.input import AwareDateTimeField, InputSerializer
from config.money import DecimalDigits
from loyalty.apis.purchase_serializers import AwardOutput, MemberRefInput
from loyalty.models import MAX_POINTS_PER_ENTRY, Channel, EarningRule, split_list
from loyalty.rules import Line
from loyalty.services.purchases import MAX_PURCHASE_TOTAL
from members.ids import MAX_ID

MONEY: DecimalDigits = {"max_digits": 14, "decimal_places": 2}


# --- Shared input pieces --------------------------------------------------------------------------


def list_item() -> serializers.RegexField:
    return serializers.RegexField(
        r"^[^,\r\n]+$", max_length=64, error_messages={"invalid": "A value cannot contain commas or line breaks."}
    )


class CommaListField(serializers.ListField):
    """A JSON list, stored as the comma-separated text the admin edits."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", list_item())
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)

    def run_validation(self, data: Any = empty) -> str:
        values = super().run_validation(data)  # the list and its length first, then the stored text
        return ", ".join(str(value).strip() for value in dict.fromkeys(values))

    def to_representation(self, value: Any) -> list[Any]:
        items = split_list(value or "")
        return [int(item) for item in items] if isinstance(self.child, serializers.IntegerField) else items


def optional_count(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0, max_value=2_147_483_647, required=False, allow_null=True, help_text=help_text
    )


# --- Earning rules --------------------------------------------------------------------------------


class RuleInput(InputSerializer):
    """The fields a manager sets. `budget_used`, `created_at` and `updated_at` belong to the server."""

    name = serializers.CharField(max_length=100, help_text="Shown to members as the reason for their points.")
    kind = NamedChoiceField(choices=EarningRule.KIND_CHOICES, enum_name="EarningRuleKindEnum")
    is_active = serializers.BooleanField(required=False)
    priority = serializers.IntegerField(min_value=0, max_value=32767, required=False, help_text="Lower runs first.")
    stop_further = serializers.BooleanField(required=False, help_text="When this rule applies, skip the later ones.")
    active_from = AwareDateTimeField(required=False, allow_null=True)
    active_until = AwareDateTimeField(required=False, allow_null=True, help_text="Exclusive.")
    event = serializers.RegexField(
        r"^[a-z0-9_.-]{1,64}$",
        required=False,
        allow_blank=True,
        help_text="Event rules only: signup, birthday, referral, profile_completed, nps_answer or a custom name.",
    )
    skus = CommaListField(help_text="Multiplier: the lines it multiplies. Bonus: one must be in the basket.")
    categories = CommaListField(help_text="As skus, by category.")
    excluded_skus = CommaListField(help_text="Base rate and multiplier: lines that never earn (gift cards).")
    excluded_categories = CommaListField(help_text="Base rate and multiplier: categories that never earn.")
    channels = CommaListField(
        child=NamedChoiceField(choices=Channel.choices, enum_name="ChannelEnum"),
        max_length=4,
        help_text="Only purchases in these channels; empty: every channel.",
    )
    stores = CommaListField(help_text="Store codes as the tills send them; empty: every store.")
    weekdays = CommaListField(
        child=serializers.IntegerField(min_value=1, max_value=7), max_length=7, help_text="1 = Monday ... 7 = Sunday."
    )
    tiers = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=100,
        help_text="Ids of tiers of the rule's program; only their members earn. Empty: every member.",
    )
    min_basket = serializers.DecimalField(**MONEY, min_value=Decimal(0), required=False, allow_null=True)
    first_purchase = serializers.BooleanField(required=False)
    nth_purchase = serializers.IntegerField(min_value=1, max_value=2_147_483_647, required=False, allow_null=True)
    rate = serializers.DecimalField(
        max_digits=10, decimal_places=4, min_value=Decimal(0), required=False, help_text="Base rate: points per unit."
    )
    multiplier = serializers.DecimalField(
        max_digits=6, decimal_places=3, min_value=Decimal(1), required=False, help_text="Multiplier: 2 = double."
    )
    points = serializers.IntegerField(
        min_value=0, max_value=MAX_POINTS_PER_ENTRY, required=False, help_text="Fixed bonus and event rules."
    )
    cap_per_purchase = optional_count("At most this many points per purchase.")
    cap_per_member_day = optional_count("At most this many points per member and day.")
    cap_per_member_month = optional_count("At most this many points per member and month.")
    budget_total = serializers.IntegerField(
        min_value=0,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="Total points the rule may give; not below what it already gave (budget_used).",
    )


class RuleCreateInput(RuleInput):
    program = ProgramSlugField()


class RuleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug", help_text="Program slug.")
    name = serializers.CharField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    is_active = serializers.BooleanField()
    priority = serializers.IntegerField()
    stop_further = serializers.BooleanField()
    active_from = serializers.DateTimeField(allow_null=True)
    active_until = serializers.DateTimeField(allow_null=True)
    event = serializers.CharField()
    skus = CommaListField()
    categories = CommaListField()
    excluded_skus = CommaListField()
    excluded_categories = CommaListField()
    channels = CommaListField()
    stores = CommaListField()
    weekdays = CommaListField(child=serializers.IntegerField())
    tiers = serializers.SerializerMethodField()
    min_basket = serializers.DecimalField(**MONEY, allow_null=True)
    first_purchase = serializers.BooleanField()
    nth_purchase = serializers.IntegerField(allow_null=True)
    rate = serializers.DecimalField(max_digits=10, decimal_places=4)
    multiplier = serializers.DecimalField(max_digits=6, decimal_places=3)
    points = serializers.IntegerField()
    cap_per_purchase = serializers.IntegerField(allow_null=True)
    cap_per_member_day = serializers.IntegerField(allow_null=True)
    cap_per_member_month = serializers.IntegerField(allow_null=True)
    budget_total = serializers.IntegerField(allow_null=True)
    budget_used = serializers.IntegerField(help_text="Points the rule has given so far (read-only).")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_tiers(self, rule: EarningRule) -> list[int]:
        return sorted(tier.pk for tier in rule.tiers.all())


class RuleDeactivateInput(InputSerializer):
    """No fields: send an empty object (or no body)."""


class EmptyObjectExtension(OpenApiSerializerExtension):
    """Documents the deactivation's body as the empty object it is (drf-spectacular drops empty serializers)."""

    target_class = RuleDeactivateInput

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {}, "additionalProperties": False, "description": "No fields."}


class PreviewLineInput(InputSerializer):
    sku = serializers.CharField(max_length=64)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    # The default is used as it is, an int (the stubs want a Decimal).
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"), default=1)  # type: ignore[arg-type]
    amount = serializers.DecimalField(**MONEY, min_value=Decimal(0))
    unit_price = serializers.DecimalField(
        **MONEY, min_value=Decimal(0), required=False, help_text="Defaults to amount / quantity."
    )


def _basket_line(data: dict[str, Any]) -> Line:
    quantity = Decimal(data["quantity"])
    unit_price = data.get("unit_price", (data["amount"] / quantity).quantize(Decimal("0.01")))
    return Line(
        sku=data["sku"], category=data["category"], quantity=quantity, unit_price=unit_price, amount=data["amount"]
    )


class RulePreviewInput(InputSerializer):
    program = ProgramSlugField()
    rule_id = serializers.IntegerField(
        required=False, min_value=1, help_text="A rule of the program to include even if it is switched off."
    )
    member = MemberRefInput(
        required=False, help_text="A member whose tier, purchase count and caps apply; none: a new member."
    )
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.POS)
    store = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    occurred_at = AwareDateTimeField(required=False, help_text="Defaults to now; may be in the future.")
    total = serializers.DecimalField(**MONEY, min_value=Decimal(0), required=False, help_text="Defaults to the lines.")
    # `many=True` hands min_length and max_length to the ListSerializer; the stubs miss it.
    lines = PreviewLineInput(many=True, min_length=1, max_length=500)  # type: ignore[call-arg]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["lines"] = [_basket_line(line) for line in attrs["lines"]]
        lines_total = sum((line.amount for line in attrs["lines"]), Decimal(0))
        if lines_total > MAX_PURCHASE_TOTAL:
            too_much = f"The lines add up to {lines_total}, more than a purchase may total ({MAX_PURCHASE_TOTAL})."
            raise serializers.ValidationError({"lines": [too_much]})
        if "total" in attrs and attrs["total"] != lines_total:
            raise serializers.ValidationError({"total": [f"The lines add up to {lines_total}."]})
        return attrs


class PreviewRuleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    priority = serializers.IntegerField()
    is_active = serializers.BooleanField()
    points = serializers.IntegerField(help_text="0 when the rule does not apply or its limits are used up.")


class RulePreviewOutput(serializers.Serializer):
    program = serializers.CharField()
    member_id = serializers.IntegerField(allow_null=True)
    total = serializers.DecimalField(**MONEY)
    eligible_amount = serializers.DecimalField(**MONEY)
    points = serializers.IntegerField(help_text="What the purchase would award in all.")
    awards = AwardOutput(many=True, help_text="As a recorded purchase would answer, the tier's award included.")
    rules = PreviewRuleOutput(many=True, help_text="Every purchase rule evaluated, in order.")
    notes = serializers.ListField(child=serializers.CharField())
