"""The verification snippet of docs/webhooks.md, run as written against real deliveries."""

import re
from pathlib import Path

import pytest
from django.db import transaction

from events.outbox import EventType, event_emit
from events.webhooks.services import (
    webhook_deliver,
    webhook_deliveries_claim,
    webhooks_dispatch,
)
from tests.factories import WebhookEndpointFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"

pytestmark = pytest.mark.django_db


def doc_snippet():
    text = DOC.read_text()
    [code] = re.findall(r"<!-- verify-snippet:[^>]*-->\n```python\n(.*?)```", text, flags=re.DOTALL)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace["webhook_verified"]


def test_the_documented_snippet_verifies_a_delivery_and_rejects_forgeries(program, receiver):
    webhook_verified = doc_snippet()
    endpoint = WebhookEndpointFactory(program=program, url=receiver.url)
    with transaction.atomic():
        event_emit(program_id=program.pk, type=EventType.NPS_ANSWERED, data={"score": 10})
    webhooks_dispatch()
    webhook_deliver(delivery_id=webhook_deliveries_claim()[0])
    [request] = receiver.received

    assert webhook_verified(endpoint.secret, request.headers, request.body)
    assert not webhook_verified(endpoint.secret, request.headers, request.body.replace(b"10", b"0"))
    assert not webhook_verified("whsec_" + "A" * 43 + "=", request.headers, request.body)
    stale = request.headers | {"webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 600)}
    assert not webhook_verified(endpoint.secret, stale, request.body)
