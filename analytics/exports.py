"""The analytics part of a member's GDPR export (registered with `members.exports` when the app loads)."""

from typing import Any

from analytics.models import MemberAnalytics, NpsAnswer, SegmentChange
from members.exports import export_rows
from members.models import Member

ANALYTICS_FIELDS = [
    "computed_at", "first_purchase_at", "last_purchase_at", "purchases", "purchase_days", "monetary",
    "average_order_value", "mean_days_between", "next_purchase_expected_at", "recency_days", "r_score", "f_score",
    "m_score", "segment", "segment_since", "clv_historical", "p_alive", "expected_purchases", "clv_predicted",
]  # fmt: skip


def member_analytics_export(member: Member) -> dict[str, Any]:
    """What the program computed about the member (RFM, segment, CLV), its segment history and NPS answers."""
    figures = export_rows(MemberAnalytics.objects.filter(member=member), ANALYTICS_FIELDS)
    changes = SegmentChange.objects.filter(member=member).order_by("changed_at", "id")
    answers = NpsAnswer.objects.filter(member=member).order_by("answered_at", "id")
    return {
        "figures": figures[0] if figures else None,
        "segment_changes": export_rows(changes, ["from_segment", "to_segment", "changed_at"]),
        "nps_answers": export_rows(answers, ["score", "comment", "source", "answered_at"]),
    }
