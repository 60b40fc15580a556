"""Celery tasks for the scheduled ledger jobs. Each calls a service and reports what it did."""

from celery import shared_task

from loyalty.services.bonuses import birthday_bonuses
from loyalty.services.lots import lots_activate, lots_expire, lots_warn_expiring
from loyalty.services.tiers import tier_review


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
def birthday_bonuses_task() -> dict:
    return {"members": birthday_bonuses()}
