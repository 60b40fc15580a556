"""Webhook delivery against a real HTTP receiver on 127.0.0.1: signing, dispatch, retries with backoff,
dead-lettering, replay, ordering per member, refused targets."""

import json
import socket
import threading
import time
from datetime import timedelta

import pytest
import standardwebhooks
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.exceptions import WebhookEndpointInvalid
from events.models import DeliveryStatus, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.outbox import EventType, event_emit
from events.tasks import webhook_deliver_task, webhooks_run_task
from events.webhooks import transport
from events.webhooks.schedule import retry_delay, retry_window
from events.webhooks.services import (
    event_body,
    webhook_batches,
    webhook_deliver,
    webhook_deliveries_claim,
    webhook_deliveries_replay,
    webhook_deliveries_send,
    webhook_endpoint_delete,
    webhook_endpoint_save,
    webhook_failed_replay,
    webhook_secret_rotate,
    webhooks_dispatch,
)
from events.webhooks.signing import signature
from tests.factories import MemberFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def emit(program, type=EventType.NPS_ANSWERED, member=None, **data):
    with transaction.atomic():
        return event_emit(program_id=program.pk, type=type, member_id=member and member.pk, data=data)


def endpoint_for(program, receiver, **fields):
    return WebhookEndpointFactory(program=program, url=receiver.url, **fields)


def deliver_due():
    """One scheduler tick, then each claimed delivery once (what the worker does)."""
    webhooks_dispatch()
    return [webhook_deliver(delivery_id=pk) for pk in webhook_deliveries_claim()]


# --- Signatures -----------------------------------------------------------------------------------


def test_signature_matches_a_hand_computed_hmac():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks specification's example secret
    body = b'{"test": 2432232314}'

    assert signature(secret=secret, message_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_delivery_verifies_with_the_standard_webhooks_library(program, receiver):
    endpoint = endpoint_for(program, receiver)
    event = emit(program, score=9)

    [delivery] = deliver_due()

    [request] = receiver.received
    payload = standardwebhooks.Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload == json.loads(event_body(event))
    assert payload["event_id"] == request.headers["webhook-id"] == event.event_id
    assert (payload["type"], payload["program"], payload["data"]) == ("nps.answered", program.slug, {"score": 9})
    assert request.headers["content-type"] == "application/json"
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_a_tampered_body_or_another_secret_fails_verification(program, receiver):
    endpoint = endpoint_for(program, receiver)
    emit(program, score=9)
    deliver_due()
    [request] = receiver.received

    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(endpoint.secret).verify(request.body.replace(b"9", b"10"), request.headers)
    rotated = webhook_secret_rotate(endpoint=endpoint)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(rotated.secret).verify(request.body, request.headers)


# --- Dispatch -------------------------------------------------------------------------------------


def test_dispatch_makes_one_delivery_per_subscribed_active_endpoint(program, other_program, receiver):
    all_types = endpoint_for(program, receiver)
    nps_only = endpoint_for(program, receiver, event_types=[EventType.NPS_ANSWERED])
    endpoint_for(program, receiver, active=False)
    elsewhere = endpoint_for(other_program, receiver)
    nps = emit(program, score=3)
    enrolled = emit(program, type=EventType.MEMBER_ENROLLED)

    assert webhooks_dispatch() == 2
    assert webhooks_dispatch() == 0  # marked dispatched: nothing twice

    pairs = set(WebhookDelivery.objects.values_list("endpoint_id", "event_id"))
    assert pairs == {(all_types.pk, nps.pk), (all_types.pk, enrolled.pk), (nps_only.pk, nps.pk)}
    assert not WebhookDelivery.objects.filter(endpoint=elsewhere).exists()
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_an_endpoint_gets_only_events_written_after_it_was_created(program, receiver):
    before = emit(program, score=1)
    OutboxEvent.objects.filter(pk=before.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    endpoint = endpoint_for(program, receiver)
    after = emit(program, score=2)

    webhooks_dispatch()

    assert list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("event_id", flat=True)) == [after.pk]


def test_the_scheduler_tick_delivers_what_a_change_emitted(program, receiver, eager_tasks):
    endpoint_for(program, receiver, event_types=[EventType.MEMBER_ENROLLED])
    member = MemberFactory(program=program)
    emit(program, type=EventType.MEMBER_ENROLLED, member=member, member_id=member.pk)

    report = webhooks_run_task()

    assert report == {"events_dispatched": 1, "deliveries_queued": 1}
    [request] = receiver.received
    assert json.loads(request.body)["member"] == member.pk
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


# --- Attempts, retries, dead-lettering, replay ----------------------------------------------------


def test_every_attempt_is_logged_with_status_latency_and_excerpt(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=7)
    receiver.statuses = [503]

    [delivery] = deliver_due()

    assert (delivery.status, delivery.attempts, delivery.failures) == (DeliveryStatus.PENDING, 1, 1)
    assert (delivery.last_status_code, delivery.last_error) == (503, "HTTP 503")
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.succeeded, attempt.status_code) == (1, False, 503)
    assert attempt.response_excerpt == "answer 503 to 1"
    assert 0 <= attempt.latency_ms < 5000


def test_a_failed_delivery_is_due_again_after_the_backoff(program, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    endpoint_for(program, receiver)
    emit(program, score=7)
    receiver.statuses = [500, 500]
    before = timezone.now()

    [first] = deliver_due()
    assert timedelta(seconds=15) <= first.next_attempt_at - before <= timedelta(seconds=31)
    assert deliver_due() == []  # not due yet

    [second] = [webhook_deliver(delivery_id=pk) for pk in webhook_deliveries_claim(now=first.next_attempt_at)]
    assert second.failures == 2
    assert timedelta(seconds=30) <= second.next_attempt_at - second.last_attempt_at <= timedelta(seconds=61)


def test_after_the_last_attempt_a_delivery_is_dead_and_replay_revives_it(program, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    endpoint = endpoint_for(program, receiver)
    emit(program, score=7)
    receiver.statuses = [500, 500, 500]
    webhooks_dispatch()
    delivery = WebhookDelivery.objects.get()

    for _ in range(3):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        [pk] = webhook_deliveries_claim()
        delivery = webhook_deliver(delivery_id=pk)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.DEAD, 3, None)
    assert deliver_due() == []

    assert webhook_failed_replay(endpoint=endpoint) == 1
    [delivery] = deliver_due()
    assert (delivery.status, delivery.attempts, delivery.failures) == (DeliveryStatus.SUCCEEDED, 4, 0)
    ids = {request.headers["webhook-id"] for request in receiver.received}
    assert len(receiver.received) == 4 and len(ids) == 1  # the same event id every time


def test_replaying_a_delivered_event_sends_it_again_with_the_same_id(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=10)
    [delivery] = deliver_due()

    assert webhook_deliveries_replay(deliveries=WebhookDelivery.objects.filter(pk=delivery.pk)) == 1
    deliver_due()

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-signature"] != "" and first.body == second.body


def test_a_slow_receiver_times_out_and_is_retried(program, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    endpoint_for(program, receiver)
    emit(program, score=1)

    [delivery] = deliver_due()

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and "timed out" in attempt.error
    assert 250 <= attempt.latency_ms < 1000
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at > timezone.now()


@pytest.fixture
def dripping_receiver():
    """A receiver that answers one header line every 0.1 s for 5 s: no single read waits long enough to time out."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(50):
                    if stop.wait(0.1):
                        return
                    try:
                        connection.sendall(b"X-Drip: 1\r\n")
                    except OSError:
                        return  # the sender hung up
                connection.sendall(b"Content-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()


def test_the_timeout_bounds_the_whole_answer_not_each_read(dripping_receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    answer = transport.post(url=dripping_receiver, body=b"{}", headers={}, timeout=0.5)

    assert answer.status_code is None and not answer.succeeded
    assert answer.error == "TimeoutError: timed out: no complete answer within 0.5 s"
    assert 450 <= answer.latency_ms < 1500  # the receiver would have taken 5 s


def test_a_redirect_is_not_followed(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=1)
    receiver.statuses = [302]

    [delivery] = deliver_due()

    assert len(receiver.received) == 1
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.PENDING, 302)


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()

    [claimed] = webhook_deliveries_claim()
    assert webhook_deliveries_claim() == []  # its worker is on it
    later = timezone.now() + timedelta(minutes=5)  # the worker died: the lease ran out
    assert webhook_deliveries_claim(now=later) == [claimed]


def test_inactive_endpoints_keep_their_deliveries_waiting(program, receiver):
    endpoint = endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()
    webhook_endpoint_save(program=program, url=endpoint.url, active=False, endpoint=endpoint)

    assert webhook_deliveries_claim() == []
    webhook_endpoint_save(program=program, url=endpoint.url, active=True, endpoint=endpoint)
    assert len(webhook_deliveries_claim()) == 1


# --- Order per member -----------------------------------------------------------------------------


def test_a_members_later_event_waits_for_the_earlier_one(program, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    endpoint_for(program, receiver)
    ann, bob = MemberFactory(program=program), MemberFactory(program=program)
    ann_first = emit(program, member=ann, n=1)
    ann_second = emit(program, member=ann, n=2)
    bob_first = emit(program, member=bob, n=1)
    receiver.statuses = [500]  # ann's first event fails once

    deliver_due()
    sent = [json.loads(r.body)["event_id"] for r in receiver.received]
    assert sent == [ann_first.event_id, bob_first.event_id]  # ann's second waits behind her first

    WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now())
    deliver_due()  # ann's first goes through; her second is next in line
    deliver_due()
    sent = [json.loads(r.body)["event_id"] for r in receiver.received]
    assert sent == [ann_first.event_id, bob_first.event_id, ann_first.event_id, ann_second.event_id]


def test_a_dead_delivery_no_longer_holds_back_the_members_next_event(program, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    endpoint_for(program, receiver)
    ann = MemberFactory(program=program)
    emit(program, member=ann, n=1)
    second = emit(program, member=ann, n=2)
    receiver.statuses = [500]

    [dead] = deliver_due()
    [delivered] = deliver_due()

    assert dead.status == DeliveryStatus.DEAD
    assert (delivered.event_id, delivered.status) == (second.pk, DeliveryStatus.SUCCEEDED)


# --- Batches: one task, one kept-alive connection, one transaction ----------------------------------


def events_of_members(program, count, per_member=1):
    members = [MemberFactory(program=program) for _ in range(count)]
    return [emit(program, member=member, n=n) for n in range(per_member) for member in members]


def test_a_batch_goes_over_one_kept_alive_connection_and_is_recorded_together(program, receiver):
    endpoint_for(program, receiver)
    events = events_of_members(program, 6)
    webhooks_dispatch()
    ids = webhook_deliveries_claim(claim="round")

    sent = webhook_deliveries_send(delivery_ids=ids, claim="round")

    assert [delivery.status for delivery in sent] == [DeliveryStatus.SUCCEEDED] * 6
    assert sorted(json.loads(r.body)["event_id"] for r in receiver.received) == sorted(e.event_id for e in events)
    assert len({r.client_port for r in receiver.received}) == 1  # one connection for the six
    assert WebhookAttempt.objects.filter(number=1, succeeded=True, status_code=200).count() == 6


def test_a_batch_takes_the_same_statements_whatever_its_size(program, receiver):
    endpoint_for(program, receiver)

    def statements(size):
        events_of_members(program, size)
        webhooks_dispatch()
        ids = webhook_deliveries_claim(claim=f"round-{size}")
        with CaptureQueriesContext(connection) as queries:
            assert len(webhook_deliveries_send(delivery_ids=ids, claim=f"round-{size}")) == size
        return len(queries)

    assert statements(2) == statements(12)


def test_a_slow_receiver_hands_the_rest_of_the_batch_back_unattempted(program, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    endpoint_for(program, receiver)
    events_of_members(program, 3)
    webhooks_dispatch()
    ids = webhook_deliveries_claim(claim="round")

    [attempted] = webhook_deliveries_send(delivery_ids=ids, claim="round")

    assert (attempted.attempts, attempted.status) == (1, DeliveryStatus.PENDING)
    assert "timed out" in attempted.last_error
    rest = WebhookDelivery.objects.exclude(pk=attempted.pk).order_by("pk")
    assert [(d.attempts, d.claim, d.status) for d in rest] == [(0, "", DeliveryStatus.PENDING)] * 2
    assert sorted(webhook_deliveries_claim()) == [d.pk for d in rest]  # due again at once, not after the lease


def test_the_scheduler_sends_batches_and_keeps_each_members_order(program, receiver, eager_tasks, settings):
    settings.WEBHOOK_BATCH_SIZE = 2
    endpoint_for(program, receiver)
    events = events_of_members(program, 3, per_member=3)

    report = webhooks_run_task()

    assert report == {"events_dispatched": 9, "deliveries_queued": 3}  # each member's first; the rest follow
    sent = [json.loads(r.body)["event_id"] for r in receiver.received]
    assert sorted(sent) == sorted(event.event_id for event in events)
    for member_id in {event.member_id for event in events}:
        own = [event.event_id for event in events if event.member_id == member_id]
        assert [event_id for event_id in sent if event_id in own] == own
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 9


def test_batches_hold_one_endpoints_deliveries_each(program, receiver):
    first = endpoint_for(program, receiver)
    second = WebhookEndpointFactory(program=program, url=receiver.url + "/second")
    events_of_members(program, 3)
    webhooks_dispatch()
    ids = webhook_deliveries_claim()

    batches = webhook_batches(delivery_ids=ids, size=2)

    def endpoint_of(batch):
        return {WebhookDelivery.objects.get(pk=pk).endpoint_id for pk in batch}

    assert [len(batch) for batch in batches] == [2, 1, 2, 1]
    assert [endpoint_of(batch) for batch in batches] == [{first.pk}, {first.pk}, {second.pk}, {second.pk}]


def test_a_task_queued_with_one_delivery_id_still_runs(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()
    [pk] = webhook_deliveries_claim(claim="round")

    assert webhook_deliver_task(pk, "round") == {"pending": 0, "succeeded": 1, "dead": 0}
    assert len(receiver.received) == 1


@pytest.fixture
def forgetful_receiver():
    """Answers the first request and keeps the connection open, then closes it unused (an idle timeout):
    the sender's next request on it finds it gone. Answers every later request on a new connection."""
    server = socket.create_server(("127.0.0.1", 0))
    connections = []

    def serve() -> None:
        with server:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                with connection:
                    request = b""
                    while not request.endswith(b"}"):  # headers, then the JSON body
                        request += connection.recv(65536) or b"}"
                    connections.append(request)
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    time.sleep(0.2)  # then closes: the kept-alive connection is stale

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook", connections
    server.close()


def test_a_kept_alive_connection_the_receiver_closed_is_replaced(forgetful_receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    url, connections = forgetful_receiver

    with transport.Sender() as sender:
        first = sender.post(url=url, body=b'{"n":1}', headers={}, timeout=2)
        time.sleep(0.5)
        second = sender.post(url=url, body=b'{"n":2}', headers={}, timeout=2)

    assert (first.status_code, first.excerpt, second.status_code, second.excerpt) == (200, "ok", 200, "ok")
    assert len(connections) == 2 and connections[1].endswith(b'{"n":2}')


# --- Retry schedule -------------------------------------------------------------------------------


def test_the_retry_schedule_doubles_up_to_the_cap_then_dies(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS = 30, 7200
    settings.WEBHOOK_MAX_ATTEMPTS = 12
    longest = [retry_delay(n, uniform=lambda low, high: high) for n in range(1, 13)]
    shortest = [retry_delay(n, uniform=lambda low, high: low) for n in range(1, 12)]

    assert longest == [30, 60, 120, 240, 480, 960, 1920, 3840, 7200, 7200, 7200, None]
    assert shortest == [15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert retry_window() == (sum(shortest), sum(longest[:-1]))  # from about 4.1 to 8.1 hours
    assert 15 <= retry_delay(1) <= 30  # jitter stays in its band


# --- Refused targets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://93.184.216.34/hook", "webhook_url_scheme"),
        ("file:///etc/passwd", "webhook_url_scheme"),
        ("http://127.0.0.1:8000/hook", "webhook_target_private"),
        ("http://localhost/hook", "webhook_target_private"),
        ("http://10.1.2.3/hook", "webhook_target_private"),
        ("http://192.168.0.10/hook", "webhook_target_private"),
        ("http://169.254.169.254/latest/meta-data", "webhook_target_private"),
        ("http://[::1]/hook", "webhook_target_private"),
        ("http://[::ffff:127.0.0.1]/hook", "webhook_target_private"),
        ("http://0.0.0.0/hook", "webhook_target_private"),
        ("http://[64:ff9b::a00:1]/hook", "webhook_target_private"),  # NAT64 of 10.0.0.1
        ("http://[2002:a9fe:a9fe::]/hook", "webhook_target_private"),  # 6to4 of 169.254.169.254
        ("http://[fec0::1]/hook", "webhook_target_private"),  # site-local
        ("http://user:pw@93.184.216.34/hook", "webhook_url_invalid"),
        ("http://93.184.216.34:99999/hook", "webhook_url_invalid"),
        ("http://not a host/hook", "webhook_url_invalid"),
        ("http://-crm-.example.com/hook", "webhook_url_invalid"),
        ("http://no-such-host.invalid/hook", "webhook_host_unresolved"),
    ],
)
def test_unsafe_urls_are_refused(program, url, code):
    with pytest.raises(WebhookEndpointInvalid) as refused:
        webhook_endpoint_save(program=program, url=url)

    assert refused.value.code == code
    assert not WebhookEndpoint.objects.exists()


def test_a_public_address_and_known_event_types_are_accepted(program):
    endpoint = webhook_endpoint_save(
        program=program, url="https://93.184.216.34/hooks", event_types=["tier.promoted", "points.earned"]
    )

    assert endpoint.event_types == ["points.earned", "tier.promoted"]
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) == 50
    with pytest.raises(WebhookEndpointInvalid) as refused:
        webhook_endpoint_save(program=program, url="https://93.184.216.34/hooks", event_types=["points.gifted"])
    assert refused.value.code == "webhook_event_type_unknown"


def test_a_target_that_became_private_is_refused_at_delivery(program, receiver, settings):
    endpoint_for(program, receiver)
    emit(program, score=1)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # e.g. its DNS now points inside the network

    [delivery] = deliver_due()

    assert receiver.received == []
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("webhook_target_private")


def test_transport_answers_instead_of_raising_when_nothing_listens(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    answer = transport.post(url="http://127.0.0.1:1/hook", body=b"{}", headers={}, timeout=2)

    assert answer.status_code is None and not answer.succeeded
    assert "ConnectionRefusedError" in answer.error


# --- Changing and deleting endpoints --------------------------------------------------------------


def test_an_endpoint_whose_host_went_away_can_still_be_paused(program, receiver, settings):
    endpoint = endpoint_for(program, receiver)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # its address is refused now

    paused = webhook_endpoint_save(program=program, url=endpoint.url, active=False, endpoint=endpoint)

    assert WebhookEndpoint.objects.get(pk=paused.pk).active is False
    with pytest.raises(WebhookEndpointInvalid):  # a changed URL is checked again
        webhook_endpoint_save(program=program, url=endpoint.url + "/v2", active=False, endpoint=endpoint)


def test_saving_an_endpoint_does_not_undo_a_secret_rotated_meanwhile(program, receiver):
    endpoint = endpoint_for(program, receiver)
    stale = WebhookEndpoint.objects.get(pk=endpoint.pk)
    rotated = webhook_secret_rotate(endpoint=endpoint)

    webhook_endpoint_save(program=program, url=stale.url, description="CRM", endpoint=stale)

    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == rotated.secret != stale.secret


def test_a_delivery_whose_endpoint_was_deleted_mid_attempt_records_nothing(program, receiver, monkeypatch):
    endpoint = endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()
    [pk] = webhook_deliveries_claim()
    send = transport.Sender.post

    def post_then_delete(sender, **kwargs):
        answer = send(sender, **kwargs)
        webhook_endpoint_delete(endpoint=endpoint)  # a manager deletes it while the receiver answers
        return answer

    monkeypatch.setattr(transport.Sender, "post", post_then_delete)

    assert webhook_deliver(delivery_id=pk) is None
    assert len(receiver.received) == 1
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()
    assert OutboxEvent.objects.count() == 1


# --- Claims: only the round a delivery is leased to may attempt it --------------------------------


def test_a_task_of_an_older_round_does_nothing(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()
    [pk] = webhook_deliveries_claim(claim="old")
    later = timezone.now() + timedelta(minutes=5)  # the old round's task waited in the queue past its lease
    assert webhook_deliveries_claim(now=later, claim="new") == [pk]

    assert webhook_deliver(delivery_id=pk, claim="old") is None
    assert receiver.received == []
    assert webhook_deliver(delivery_id=pk, claim="new").status == DeliveryStatus.SUCCEEDED
    assert len(receiver.received) == 1


def test_a_task_given_back_after_its_attempt_was_recorded_does_nothing(program, receiver):
    endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()
    [pk] = webhook_deliveries_claim(claim="round")
    receiver.statuses = [500]

    failed = webhook_deliver(delivery_id=pk, claim="round")
    again = webhook_deliver(delivery_id=pk, claim="round")  # the broker redelivers: the worker died before acking

    assert (failed.failures, again) == (1, None)
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.get(pk=pk).next_attempt_at == failed.next_attempt_at  # the backoff stands


def test_a_replay_while_an_attempt_is_under_way_wins(program, receiver, monkeypatch):
    endpoint_for(program, receiver)
    emit(program, score=1)
    webhooks_dispatch()
    [pk] = webhook_deliveries_claim(claim="round")
    receiver.statuses = [500]
    send = transport.Sender.post

    def replayed_meanwhile(sender, **kwargs):
        answer = send(sender, **kwargs)
        webhook_deliveries_replay(deliveries=WebhookDelivery.objects.filter(pk=pk))
        return answer

    monkeypatch.setattr(transport.Sender, "post", replayed_meanwhile)
    assert webhook_deliver(delivery_id=pk, claim="round") is None  # its answer is not recorded
    monkeypatch.setattr(transport.Sender, "post", send)

    [delivery] = deliver_due()  # the replay goes out
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 1)
    assert len(receiver.received) == 2


def test_a_path_with_any_characters_is_sent_percent_encoded(program, receiver):
    webhook_endpoint_save(program=program, url=receiver.url + "/café?shop=Dvůr Králové")
    emit(program, score=1)

    [delivery] = deliver_due()

    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert receiver.received[0].path == "/hooks/loyalty/caf%C3%A9?shop=Dv%C5%AFr%20Kr%C3%A1lov%C3%A9"
