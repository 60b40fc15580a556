"""Celery tasks of analytics: the refresh of one program or all, and the daily events of purchase timing."""

from datetime import datetime

from celery import shared_task

from analytics.services.purchase_timing import members_inactive_notify, next_purchases_due_notify
from analytics.services.refresh import analytics_refresh, analytics_refresh_queued
from members.models import Program


@shared_task(acks_late=True, reject_on_worker_lost=True)
def member_timing_events_task() -> dict:
    """Daily, after the nightly analytics refresh: member.inactive and member.next_purchase_due, once each."""
    return {
        "inactive": members_inactive_notify().as_dict(),
        "next_purchase_due": next_purchases_due_notify().as_dict(),
    }


@shared_task(acks_late=True, reject_on_worker_lost=True)
def analytics_refresh_task(program_id: int, as_of: str | None = None) -> dict:
    """Refreshes one program's analytics (every step of `analytics.services.refresh.REFRESH_STEPS`) as of
    `as_of` (an ISO datetime; now when None)."""
    program = Program.objects.filter(pk=program_id).first()
    if program is None:
        return {"program": program_id, "state": "missing"}
    status = analytics_refresh(program=program, as_of=datetime.fromisoformat(as_of) if as_of else None)
    return {"program": program.slug, "state": status["state"], "results": status["results"]}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def analytics_refresh_all_task() -> dict:
    """Nightly: one refresh task per active program, so programs refresh in parallel on several workers."""
    programs = list(Program.objects.filter(is_active=True).order_by("pk"))
    for program in programs:
        analytics_refresh_queued(program)
        analytics_refresh_task.delay(program.pk)
    return {"programs": len(programs)}
