"""A worker killed in the middle of a delivery: the delivery is made again by the next worker, with the same
event id, and recorded once. Real Redis broker, real worker process, real HTTP receiver."""

import json
import time

import pytest
import standardwebhooks
from django.db import connection, transaction

from events.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from events.outbox import EventType, event_emit
from events.tasks import webhook_deliver_task
from events.webhooks.services import webhook_deliveries_claim, webhooks_dispatch
from tests.concurrency import VISIBILITY_TIMEOUT, wait_until
from tests.factories import MemberFactory, ProgramFactory, WebhookEndpointFactory

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_delivery_cut_off_by_a_killed_worker_is_delivered_by_the_next_one(receiver, celery_worker):
    # given a delivery whose receiver is still answering when the worker dies
    program = ProgramFactory()
    endpoint = WebhookEndpointFactory(program=program, url=receiver.url)
    member = MemberFactory(program=program)
    with transaction.atomic():
        event = event_emit(program_id=program.pk, type=EventType.MEMBER_ENROLLED, member_id=member.pk, data={"n": 1})
    webhooks_dispatch()
    [delivery_id] = webhook_deliveries_claim(claim="round-1")
    receiver.delays = [30.0]
    celery_worker.env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    celery_worker.start()
    celery_worker.send(webhook_deliver_task, [delivery_id], "round-1")
    assert receiver.arrived.wait(30), celery_worker.log()

    # when the worker is killed mid-request and another starts after the broker's visibility timeout
    celery_worker.kill()
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)  # nothing recorded yet
    time.sleep(VISIBILITY_TIMEOUT + 1)
    celery_worker.start()

    # then the task comes back and the event is delivered again, with the same id, and recorded once
    wait_until(
        lambda: WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.SUCCEEDED,
        60,
        f"not delivered after the restart: {celery_worker.log()}",
    )
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.event_id
    for request in (first, second):
        assert standardwebhooks.Webhook(endpoint.secret).verify(request.body, request.headers)["data"] == {"n": 1}
    assert json.loads(second.body)["member"] == member.pk
    assert list(WebhookAttempt.objects.filter(delivery_id=delivery_id).values_list("number", "status_code")) == [
        (1, 200)
    ]


def test_a_worker_reconnects_after_the_database_dropped_its_connection(receiver, celery_worker):
    # given a worker that has used its database connection
    program = ProgramFactory()
    WebhookEndpointFactory(program=program, url=receiver.url)
    with transaction.atomic():
        event_emit(program_id=program.pk, type=EventType.NPS_ANSWERED, data={"n": 1})
        event_emit(program_id=program.pk, type=EventType.NPS_ANSWERED, data={"n": 2})
    webhooks_dispatch()
    first, second = webhook_deliveries_claim(claim="round-1")
    celery_worker.env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
    celery_worker.start()
    celery_worker.send(webhook_deliver_task, first, "round-1")
    wait_until(lambda: WebhookDelivery.objects.get(pk=first).status == DeliveryStatus.SUCCEEDED, 30, "no delivery")

    # when the database ends every other connection (a restart, a failover)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1

    # then the worker's next task checks its connection, reconnects and succeeds
    celery_worker.send(webhook_deliver_task, second, "round-1")
    wait_until(
        lambda: WebhookDelivery.objects.get(pk=second).status == DeliveryStatus.SUCCEEDED,
        30,
        f"the task after the dropped connection failed: {celery_worker.log()}",
    )
