"""Celery tasks for the scheduled ledger jobs. Each calls a service and reports what it did."""

from celery import shared_task

from .services.jobs import lots_activate, lots_expire, lots_warn_expiring


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lots_activate_task() -> dict:
    return lots_activate().as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lots_expire_task() -> dict:
    return lots_expire().as_dict()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def lots_warn_expiring_task() -> dict:
    return lots_warn_expiring().as_dict()
