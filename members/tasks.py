from celery import shared_task

from .models import DeliveryStatus
from .services import idempotency_keys_clean
from .webhooks.services import claim_new, webhook_deliver, webhook_deliveries_claim, webhooks_dispatch


@shared_task
def idempotency_keys_clean_task() -> int:
    return idempotency_keys_clean()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def webhook_deliver_task(delivery_id: int, claim: str | None = None) -> str | None:
    """One attempt of one delivery claimed by a scheduler round; a delivered or dead one lets the member's next
    event go at once."""
    delivery = webhook_deliver(delivery_id=delivery_id, claim=claim)
    if delivery is None:
        return None
    if delivery.status != DeliveryStatus.PENDING and delivery.member_id is not None:
        claim = claim_new()
        for next_id in webhook_deliveries_claim(limit=1, after=delivery, claim=claim):
            webhook_deliver_task.delay(next_id, claim)
    return delivery.status


@shared_task
def webhooks_run_task() -> dict:
    """The scheduler's tick (every WEBHOOK_POLL_SECONDS): new events become deliveries, due deliveries are queued."""
    dispatched = webhooks_dispatch()
    claim = claim_new()
    queued = webhook_deliveries_claim(claim=claim)
    for delivery_id in queued:
        webhook_deliver_task.delay(delivery_id, claim)
    return {"events_dispatched": dispatched, "deliveries_queued": len(queued)}
