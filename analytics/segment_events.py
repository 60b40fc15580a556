"""`member.segment_changed`: the analytics refresh's segment moves, as events (DESIGN.md section 9).

The refresh (`members.member_analytics_refresh`) calls `segment_changes_emit` in its transaction, after
writing the figures and the `SegmentChange` rows, with the figures it computed: one COPY of events
(`events.outbox.events_emit`), no further read.

A move is a change from one segment to another. A member's first segment (no segment at the last refresh,
or no refresh yet) is not a move: the first refresh after an import of purchase history would otherwise
send one event per member. Losing the segment (every counted purchase returned) is not one either. Both
are still recorded as `SegmentChange` rows. A refresh that changes nothing emits nothing.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from analytics.member_figures import EPOCH, Figures
from events.outbox import EventType, events_emit
from events.payloads.members import MemberSegmentChanged, member_segment_changed_payload
from members.models import Program


def _moves(figures: Figures) -> list[tuple[int | None, MemberSegmentChanged]]:
    moved = figures.changed & (figures.previous_segment != "") & (figures.segment != "")
    columns = {
        name: figures.columns[name][moved].tolist()
        for name in ("member_id", "r_score", "f_score", "m_score", "recency_days", "purchases", "monetary")
    }
    columns["last_purchase_at"] = figures.columns["last_purchase_at"][moved].tolist()  # µs: every mover bought
    before, after = figures.previous_segment[moved].tolist(), figures.segment[moved].tolist()
    events = []
    for i, member_id in enumerate(columns["member_id"]):
        data = member_segment_changed_payload(
            member_id=member_id,
            from_segment=before[i],
            to_segment=after[i],
            r=columns["r_score"][i],
            f=columns["f_score"][i],
            m=columns["m_score"][i],
            recency_days=columns["recency_days"][i],
            purchases=columns["purchases"][i],
            monetary=Decimal(columns["monetary"][i]).scaleb(-2),  # cents
            last_purchase_at=EPOCH + timedelta(microseconds=columns["last_purchase_at"][i]),
        )
        events.append((member_id, data))
    return events


def segment_changes_emit(*, program: Program, figures: Figures, as_of: datetime) -> int:
    """Writes one `member.segment_changed` event per member who moved from one segment to another (see the
    module docstring), in the caller's transaction; returns how many."""
    events = _moves(figures)
    if events:
        events_emit(program_id=program.pk, type=EventType.MEMBER_SEGMENT_CHANGED, events=events, occurred_at=as_of)
    return len(events)
