"""Celery tasks for the scheduled ledger jobs. Each calls a service and reports what it did."""

from datetime import datetime

from celery import shared_task

from loyalty.analytics.refresh import analytics_refresh, analytics_refresh_queued
from loyalty.services.events import birthday_bonuses
from loyalty.services.jobs import lots_activate, lots_expire, lots_warn_expiring
from loyalty.services.tiers import tier_review
from loyalty.services.timing import members_inactive_notify, next_purchases_due_notify
from members.models import Program


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lots_activate_task() -> dict:
    return lots_activate().as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lots_expire_task() -> dict:
    return lots_expire().as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lots_warn_expiring_task() -> dict:
    return lots_warn_expiring().as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def tier_review_task() -> dict:
    return tier_review().as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def member_timing_events_task() -> dict:
    """Daily, after the nightly analytics refresh: member.inactive and member.next_purchase_due, once each."""
    return {
        "inactive": members_inactive_notify().as_dict(),
        "next_purchase_due": next_purchases_due_notify().as_dict(),
    }


@shared_task(acks_late=True, reject_on_worker_lost=True)
def birthday_bonuses_task() -> dict:
    return {"members": birthday_bonuses()}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def analytics_refresh_task(program_id: int, as_of: str | None = None) -> dict:
    """Refreshes one program's analytics (every step of `loyalty.analytics.refresh.REFRESH_STEPS`) as of
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
