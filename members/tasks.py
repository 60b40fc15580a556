"""Celery tasks of the members app."""

from celery import shared_task

from members.services.idempotency import idempotency_keys_clean


@shared_task
def idempotency_keys_clean_task() -> int:
    return idempotency_keys_clean()
