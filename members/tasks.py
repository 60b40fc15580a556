from celery import shared_task

from .services import idempotency_keys_clean


@shared_task
def idempotency_keys_clean_task() -> int:
    return idempotency_keys_clean()
