"""The loyalty parts of a member's GDPR export (registered in `LoyaltyConfig.ready`)."""

from typing import Any

from loyalty.models import Award, Purchase, PurchaseLine, Return, TierHistory
from members.exports import export_rows
from members.models import Member

PURCHASE_FIELDS = [
    "id", "external_id", "store", "channel", "occurred_at", "currency", "total", "eligible_amount",
    "points_awarded", "points_reversed", "returned_total", "awards",
]  # fmt: skip
LINE_FIELDS = ["purchase_id", "position", "sku", "category", "quantity", "unit_price", "amount", "returned_quantity"]
RETURN_FIELDS = ["id", "purchase_id", "external_id", "amount", "points_reversed", "lines", "occurred_at"]
AWARD_FIELDS = ["rule_name", "event", "points", "local_date", "created_at"]
TIER_FIELDS = ["from_tier__name", "to_tier__name", "reason", "metric_value", "note", "created_at"]


def member_purchases_export(member: Member) -> dict[str, Any]:
    """Purchases (with their lines), returns and the points each rule gave."""
    return {
        "purchases": export_rows(Purchase.objects.filter(member=member).order_by("occurred_at", "id"), PURCHASE_FIELDS),
        "lines": export_rows(
            PurchaseLine.objects.filter(member=member).order_by("purchase_id", "position"), LINE_FIELDS
        ),
        "returns": export_rows(Return.objects.filter(member=member).order_by("occurred_at", "id"), RETURN_FIELDS),
        "awards": export_rows(Award.objects.filter(member=member).order_by("created_at", "id"), AWARD_FIELDS),
    }


def member_tier_history_export(member: Member) -> list[dict[str, Any]]:
    return export_rows(TierHistory.objects.filter(member=member).order_by("created_at", "id"), TIER_FIELDS)
