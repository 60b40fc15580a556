"""Celery tasks of the outbox: the webhook scheduler's tick and the delivery of a batch."""

from celery import shared_task
from django.conf import settings

from events.models import DeliveryStatus
from events.webhooks.services import (
    claim_new,
    webhook_batches,
    webhook_deliveries_claim,
    webhook_deliveries_send,
    webhooks_dispatch,
)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def webhook_deliver_task(delivery_ids: list[int] | int, claim: str | None = None) -> dict[str, int]:
    """One attempt of each delivery of a batch claimed by a scheduler round (one endpoint's, sent over one
    connection); those delivered or dead let their members' next events go at once."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else delivery_ids  # tasks queued by earlier versions
    sent = webhook_deliveries_send(delivery_ids=ids, claim=claim)
    finished = [delivery for delivery in sent if delivery.status != DeliveryStatus.PENDING and delivery.member_id]
    if finished:
        claim = claim_new()
        _batches_queue(webhook_deliveries_claim(limit=len(finished), after=finished, claim=claim), claim)
    return {status: sum(1 for delivery in sent if delivery.status == status) for status in DeliveryStatus.values}


@shared_task
def webhooks_run_task() -> dict:
    """The scheduler's tick (every WEBHOOK_POLL_SECONDS): new events become deliveries, due deliveries are queued
    in batches of up to WEBHOOK_BATCH_SIZE per endpoint."""
    dispatched = webhooks_dispatch()
    claim = claim_new()
    queued = webhook_deliveries_claim(claim=claim)
    _batches_queue(queued, claim)
    return {"events_dispatched": dispatched, "deliveries_queued": len(queued)}


def _batches_queue(delivery_ids: list[int], claim: str) -> None:
    if not delivery_ids:
        return
    for batch in webhook_batches(delivery_ids=delivery_ids, size=settings.WEBHOOK_BATCH_SIZE):
        webhook_deliver_task.delay(batch, claim)
