"""Writes on webhook endpoints and deliveries: saving endpoints, turning outbox events into deliveries
(dispatch), delivering them with retries, and replaying them.

Delivery is at least once: a worker that dies between the receiver's answer and the record of it leaves the
delivery pending, so it is sent again with the same `webhook-id` (the event id) for the receiver to deduplicate.
For one endpoint, a member's events are delivered in the order they happened: a delivery waits while an earlier
one of the same member is still pending (a dead one no longer holds the rest back).
"""

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from events.exceptions import WebhookEndpointInvalid
from events.models import (
    DeliveryStatus,
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    webhook_secret_new,
)
from events.outbox import EventType
from events.webhooks import transport
from events.webhooks.schedule import retry_delay
from events.webhooks.signing import signed_headers
from members.models import Program

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 1000
DISPATCH_LOCK_NAMESPACE = 0x574842  # "WHB": PostgreSQL advisory lock of the dispatcher


def webhook_endpoint_save(
    *,
    program: Program,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
    active: bool = True,
    endpoint: WebhookEndpoint | None = None,
) -> WebhookEndpoint:
    """Creates or changes an endpoint. A new or changed URL is checked (http(s), resolving to public addresses
    unless WEBHOOK_ALLOW_PRIVATE_TARGETS), so an endpoint whose host went away can still be paused; every
    attempt checks it again. Event types must be known ones (empty = every type)."""
    stored = WebhookEndpoint.objects.filter(pk=endpoint.pk).first() if endpoint and endpoint.pk else None
    if stored is None or url != stored.url:
        try:
            transport.target_resolve(url)
        except transport.TargetRefused as exc:
            raise WebhookEndpointInvalid(str(exc), code=exc.code) from exc
    types = sorted(set(event_types or []))
    unknown = [t for t in types if t not in EventType.values]
    if unknown:
        raise WebhookEndpointInvalid(f"Unknown event types: {', '.join(unknown)}.", code="webhook_event_type_unknown")
    endpoint = endpoint or WebhookEndpoint(program=program)
    fields = {"url": url, "event_types": types, "description": description, "active": active}
    for name, value in fields.items():
        setattr(endpoint, name, value)
    if stored is None:
        endpoint.program = program
        endpoint.save()
    else:
        endpoint.save(update_fields=[*fields, "updated_at"])  # never writes back a secret rotated meanwhile
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Deletes an endpoint with its deliveries and their attempts (the events stay in the outbox). A worker in
    the middle of one of its deliveries finds it gone and records nothing."""
    endpoint.delete()


def webhook_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new signing secret; deliveries from now on are signed with it."""
    endpoint.secret = webhook_secret_new()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


def webhooks_dispatch(*, batch_size: int = DISPATCH_BATCH) -> int:
    """Turns undispatched outbox events into one pending delivery per active endpoint that wants them (endpoints
    get the events written after they were created). Each batch is one transaction: events are marked
    dispatched with their deliveries, so a crash repeats a batch whole or not at all. Returns the events seen."""
    seen = 0
    while True:
        with transaction.atomic():
            _dispatcher_lock()
            events = list(
                OutboxEvent.objects.filter(dispatched_at__isnull=True)
                .order_by("id")
                .select_for_update()
                .values("id", "program_id", "member_id", "type", "created_at")[:batch_size]
            )
            if not events:
                return seen
            now = timezone.now()
            endpoints = _endpoints_by_program({event["program_id"] for event in events})
            WebhookDelivery.objects.bulk_create(
                [
                    WebhookDelivery(
                        endpoint=endpoint,
                        event_id=event["id"],
                        member_id=event["member_id"],
                        next_attempt_at=now,
                    )
                    for event in events
                    for endpoint in endpoints.get(event["program_id"], [])
                    if endpoint.wants(event["type"]) and event["created_at"] >= endpoint.created_at
                ],
                ignore_conflicts=True,
            )
            OutboxEvent.objects.filter(id__in=[event["id"] for event in events]).update(dispatched_at=now)
        seen += len(events)


def _dispatcher_lock() -> None:
    """One dispatching batch at a time (a long tick and the next one would otherwise take batches side by side,
    and one could claim a member's later event before the other committed the earlier one's delivery)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [DISPATCH_LOCK_NAMESPACE])


def _endpoints_by_program(program_ids: set[int]) -> dict[int, list[WebhookEndpoint]]:
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(program_id__in=program_ids, active=True):
        endpoints.setdefault(endpoint.program_id, []).append(endpoint)
    return endpoints


def _lease() -> timedelta:
    """How long a claimed delivery is left to its worker before it is due again (a worker that died)."""
    return timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 60)


def _first_in_line() -> Q:
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        member_id=OuterRef("member_id"),
        status=DeliveryStatus.PENDING,
        event_id__lt=OuterRef("event_id"),
    )
    return ~Q(Exists(earlier))


def webhook_deliveries_claim(
    *,
    limit: int = 500,
    now: datetime | None = None,
    after: list[WebhookDelivery] | None = None,
    claim: str | None = None,
) -> list[int]:
    """Takes up to `limit` due deliveries of active endpoints, each the earliest pending one of its member at
    its endpoint, and leases them to this round (`claim`): they are not due again until the lease ends, and only
    a task of this round may attempt them (`webhook_deliveries_send(claim=...)`). Returns their ids.
    `after`: only the next ones in line behind these finished deliveries (same endpoint and member)."""
    now = now or timezone.now()
    line = Q()
    for finished in after or []:
        line |= Q(endpoint_id=finished.endpoint_id, member_id=finished.member_id)
    if after is not None and not line:
        return []
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.filter(
                line, _first_in_line(), status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__active=True
            )
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", flat=True)[:limit]
        )
        WebhookDelivery.objects.filter(id__in=ids).update(next_attempt_at=now + _lease(), claim=claim or claim_new())
    return ids


def webhook_batches(*, delivery_ids: list[int], size: int) -> list[list[int]]:
    """The deliveries split into batches of up to `size` of one endpoint each (sent over one connection)."""
    by_endpoint: dict[int, list[int]] = {}
    for pk, endpoint_id in (
        WebhookDelivery.objects.filter(id__in=delivery_ids).order_by("id").values_list("id", "endpoint_id")
    ):
        by_endpoint.setdefault(endpoint_id, []).append(pk)
    return [ids[i : i + size] for ids in by_endpoint.values() for i in range(0, len(ids), size)]


def claim_new() -> str:
    return uuid.uuid4().hex


def event_body(event: OutboxEvent) -> bytes:
    """The JSON body of an event's deliveries (the same bytes on every attempt)."""
    envelope: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "version": event.version,
        "program": event.program.slug,
        "member": event.member_id,
        "occurred_at": event.occurred_at,
        "data": event.data,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def webhook_deliver(*, delivery_id: int, claim: str | None = None) -> WebhookDelivery | None:
    """One delivery's attempt (see webhook_deliveries_send); None when there was nothing to do."""
    sent = webhook_deliveries_send(delivery_ids=[delivery_id], claim=claim)
    return sent[0] if sent else None


def webhook_deliveries_send(*, delivery_ids: list[int], claim: str | None = None) -> list[WebhookDelivery]:
    """Makes one attempt of each pending delivery, over one kept-alive connection per receiver, and records them
    together: delivered on a 2xx answer, otherwise due again after the backoff, or dead after WEBHOOK_MAX_ATTEMPTS.
    Returns the deliveries attempted (those with nothing to do are left out).

    With `claim` (the scheduler's tasks), only those still leased to that round: a copy of the task from an older
    round, or one the broker gives back after its attempts were recorded, does nothing. A task whose worker died
    before recording comes back with the same claim and sends again (at least once). No attempt starts after
    WEBHOOK_TIMEOUT_SECONDS (a slow receiver): the rest are handed back, due at once, without an attempt counted,
    so every attempt is recorded within the lease."""
    pending = WebhookDelivery.objects.filter(id__in=delivery_ids, status=DeliveryStatus.PENDING)
    if claim is not None:
        pending = pending.filter(claim=claim)
        if not pending.update(next_attempt_at=timezone.now() + _lease()):  # the lease runs from the attempts
            return []
    deliveries = list(pending.select_related("endpoint", "event__program").order_by("endpoint_id", "id"))
    began = time.monotonic()
    attempts: list[tuple[WebhookDelivery, datetime, transport.Answer]] = []
    with transport.Sender() as sender:
        for delivery in deliveries:
            if attempts and time.monotonic() - began >= settings.WEBHOOK_TIMEOUT_SECONDS:
                break
            started = timezone.now()
            body = event_body(delivery.event)
            headers = signed_headers(
                secret=delivery.endpoint.secret,
                message_id=delivery.event.event_id,
                timestamp=int(started.timestamp()),
                body=body,
            )
            answer = sender.post(
                url=delivery.endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS
            )
            attempts.append((delivery, started, answer))
    unsent = [delivery.pk for delivery in deliveries[len(attempts) :]]
    return _attempts_record(attempts=attempts, claim=claim, unsent=unsent)


def _attempts_record(
    *, attempts: list[tuple[WebhookDelivery, datetime, transport.Answer]], claim: str | None, unsent: list[int]
) -> list[WebhookDelivery]:
    """Records a batch's attempts in one transaction, each only if its delivery is still pending and (with a
    claim) still leased to this round: another copy finished first, the delivery was replayed meanwhile, or
    its endpoint was deleted otherwise."""
    answers = {delivery.pk: (started, answer) for delivery, started, answer in attempts}
    with transaction.atomic():
        current = (
            WebhookDelivery.objects.select_for_update()
            .filter(id__in=answers, status=DeliveryStatus.PENDING)
            .order_by("id")
        )
        recorded = [delivery for delivery in current if claim in (None, delivery.claim)]
        now = timezone.now()
        logged = []
        for delivery in recorded:
            started, answer = answers[delivery.pk]
            _outcome_apply(delivery, answer, now)
            logged.append(
                WebhookAttempt(
                    delivery=delivery,
                    number=delivery.attempts,
                    started_at=started,
                    succeeded=answer.succeeded,
                    status_code=answer.status_code,
                    latency_ms=answer.latency_ms,
                    response_excerpt=answer.excerpt,
                    error=answer.error,
                )
            )
        WebhookAttempt.objects.bulk_create(logged)
        WebhookDelivery.objects.bulk_update(recorded, OUTCOME_FIELDS)
        if unsent and claim is not None:
            WebhookDelivery.objects.filter(id__in=unsent, status=DeliveryStatus.PENDING, claim=claim).update(
                claim="", next_attempt_at=now
            )
    return recorded


OUTCOME_FIELDS = [
    "attempts",
    "failures",
    "claim",
    "status",
    "next_attempt_at",
    "last_attempt_at",
    "last_status_code",
    "last_error",
]


def _outcome_apply(delivery: WebhookDelivery, answer: transport.Answer, now: datetime) -> None:
    delivery.attempts += 1
    delivery.failures = 0 if answer.succeeded else delivery.failures + 1
    delivery.claim = ""
    delivery.last_attempt_at, delivery.last_status_code = now, answer.status_code
    delivery.last_error = answer.error or ("" if answer.succeeded else f"HTTP {answer.status_code}")
    if answer.succeeded:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        return
    delay = retry_delay(delivery.failures)
    if delay is None:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.DEAD, None
        logger.warning("webhook delivery %s dead after %s attempts", delivery.pk, delivery.attempts)
    else:
        delivery.next_attempt_at = now + timedelta(seconds=delay)


def webhook_deliveries_replay(*, deliveries: QuerySet[WebhookDelivery]) -> int:
    """Sends the given deliveries again as soon as the scheduler runs (delivered ones too: the receiver sees the
    same event id), with the whole retry schedule ahead of them again."""
    return deliveries.update(status=DeliveryStatus.PENDING, failures=0, claim="", next_attempt_at=timezone.now())


def webhook_failed_replay(*, endpoint: WebhookEndpoint) -> int:
    """Replays every failed delivery of an endpoint: the dead ones and the pending ones that failed before."""
    failed = WebhookDelivery.objects.filter(endpoint=endpoint).filter(
        Q(status=DeliveryStatus.DEAD) | Q(status=DeliveryStatus.PENDING, attempts__gt=0)
    )
    return webhook_deliveries_replay(deliveries=failed)
