"""Webhook deliveries for the admin and API tests, made by the real services: an event emitted in
a transaction, dispatched to the endpoints, and attempted against a stand-in for the receiver's answers."""

import socket
from unittest import mock

from django.db import transaction

from events.models import WebhookDelivery
from events.outbox import EventType, event_emit
from events.webhooks import transport
from events.webhooks.services import webhook_deliver, webhooks_dispatch


def intranet_name(monkeypatch, name: str = "crm", address: str = "10.0.0.5") -> str:
    """Makes the single-label host `name` resolve to `address`, as an on-premise DNS would (no such name here)."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == name:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]
        return resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return name


def answer(status_code=None, error="", excerpt="", latency_ms=12) -> transport.Answer:
    return transport.Answer(status_code=status_code, latency_ms=latency_ms, excerpt=excerpt, error=error)


def delivery_make(endpoint, member=None, answers=(), type=EventType.POINTS_EARNED) -> WebhookDelivery:
    """One event of `endpoint`'s program (about `member`) dispatched to it, then attempted once per answer."""
    with transaction.atomic():
        event = event_emit(
            program_id=endpoint.program_id,
            type=type,
            data={"member_id": member.pk if member else None, "points": 10},
            member_id=member.pk if member else None,
        )
    webhooks_dispatch()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event=event)
    for one in answers:
        with mock.patch.object(transport.Sender, "post", return_value=one):
            webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery
