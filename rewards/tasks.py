"""Celery tasks of rewards and vouchers."""

from celery import shared_task

from rewards.services import holds_expire, vouchers_expire


@shared_task(acks_late=True, reject_on_worker_lost=True)
def vouchers_expire_task() -> dict:
    """Marks issued vouchers past their expiry as expired (set-based, safe to repeat)."""
    return {"expired": vouchers_expire()}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def holds_expire_task() -> dict:
    """Gives back the points of holds nobody captured or released in time (safe to repeat)."""
    return {"expired": holds_expire()}
