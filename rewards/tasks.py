"""Celery tasks of rewards and vouchers."""

from celery import shared_task

from .services import vouchers_expire


@shared_task(acks_late=True, reject_on_worker_lost=True)
def vouchers_expire_task() -> dict:
    """Marks issued vouchers past their expiry as expired (set-based, safe to repeat)."""
    return {"expired": vouchers_expire()}
