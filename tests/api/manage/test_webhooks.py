"""Manager API: webhook endpoints (create, read, change, delete, rotate the secret) and their deliveries
(list, detail with the attempt log, replay one, replay the failed ones)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from config.api.input import UNKNOWN_FIELD_MESSAGE
from events.models import DeliveryStatus, OutboxEvent, WebhookAttempt, WebhookDelivery
from events.models import WebhookEndpoint as Endpoint
from events.outbox import EventType
from members.models import IdempotencyRecord
from tests.api.utils import MANAGE, assert_problem, db_state
from tests.clients import staff_client
from tests.events.webhook_rows import answer, delivery_make, intranet_name
from tests.factories import PUBLIC_URL, MemberFactory, StaffFactory, WebhookEndpointFactory

WEBHOOKS_URL = f"{MANAGE}/webhooks/"
PERMISSIONS = [
    "view_webhookendpoint",
    "add_webhookendpoint",
    "change_webhookendpoint",
    "delete_webhookendpoint",
    "view_webhookdelivery",
    "change_webhookdelivery",
]


def webhook_url(endpoint_id, suffix=""):
    return f"{WEBHOOKS_URL}{endpoint_id}/{suffix}"


def delivery_url(endpoint_id, delivery_id, suffix=""):
    return f"{WEBHOOKS_URL}{endpoint_id}/deliveries/{delivery_id}/{suffix}"


def everything():
    """What any of these endpoints could write."""
    return {
        **db_state(),
        "endpoints": list(
            Endpoint.objects.order_by("pk").values_list("pk", "url", "description", "event_types", "active", "secret")
        ),
        "deliveries": list(
            WebhookDelivery.objects.order_by("pk").values_list(
                "pk", "status", "attempts", "failures", "next_attempt_at"
            )
        ),
        "attempts": WebhookAttempt.objects.count(),
    }


@pytest.fixture
def staff(program):
    user = StaffFactory(permissions=PERMISSIONS, programs=[program])
    return user


@pytest.fixture
def api(staff):
    return staff_client(staff)


@pytest.fixture
def endpoint(program):
    return WebhookEndpointFactory(program=program, description="Newsletter tool", event_types=[EventType.POINTS_EARNED])


@pytest.fixture
def foreign_endpoint(other_program):
    return WebhookEndpointFactory(program=other_program, description="Not yours")


@pytest.fixture
def failing(settings, endpoint, member):
    """A dead delivery (one attempt allowed, answered 500) and a delivered one, of the same endpoint."""
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    dead = delivery_make(endpoint, member, [answer(500, excerpt="Internal error")])
    delivered = delivery_make(endpoint, member, [answer(204)])
    return dead, delivered


def create_body(program, **fields):
    return {
        "program": program.slug,
        "url": PUBLIC_URL,
        "description": "CDP",
        "event_types": ["tier.promoted", "member.enrolled"],
        "active": True,
        **fields,
    }


# --- Endpoints ------------------------------------------------------------------------------------


def test_create_answers_the_endpoint_with_its_secret(api, program):
    response = api.post(WEBHOOKS_URL, create_body(program), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    saved = Endpoint.objects.get(pk=body["id"])
    assert body["secret"] == saved.secret and saved.secret.startswith("whsec_")
    assert body["secret_hint"] == f"…{saved.secret[-4:]}"
    assert {key: body[key] for key in ("program", "url", "description", "event_types", "active")} == {
        "program": program.slug,
        "url": PUBLIC_URL,
        "description": "CDP",
        "event_types": ["member.enrolled", "tier.promoted"],
        "active": True,
    }
    assert (body["pending_deliveries"], body["dead_deliveries"], body["last_attempt_at"]) == (0, 0, None)
    assert (saved.program, saved.event_types, saved.active) == (program, ["member.enrolled", "tier.promoted"], True)


def test_create_defaults_to_every_type_and_active(api, program):
    response = api.post(WEBHOOKS_URL, {"program": program.slug, "url": PUBLIC_URL}, format="json")

    assert response.status_code == 201, response.content
    saved = Endpoint.objects.get(pk=response.json()["id"])
    assert (saved.event_types, saved.active, saved.description) == ([], True, "")


def test_reads_never_show_the_secret(api, endpoint):
    for url in (WEBHOOKS_URL, webhook_url(endpoint.pk)):
        response = api.get(url)

        assert response.status_code == 200
        assert endpoint.secret not in response.content.decode()
    body = api.get(webhook_url(endpoint.pk)).json()
    assert "secret" not in body
    assert body["secret_hint"] == f"…{endpoint.secret[-4:]}"
    assert (body["url"], body["description"], body["event_types"]) == (PUBLIC_URL, "Newsletter tool", ["points.earned"])


def test_list_shows_only_your_programs_and_filters_by_program(api, program, other_program, endpoint):
    WebhookEndpointFactory(program=other_program)
    inactive = WebhookEndpointFactory(program=program, url="https://93.184.216.34/other", active=False)

    everything_yours = api.get(WEBHOOKS_URL).json()
    by_program = api.get(WEBHOOKS_URL, {"program": program.slug}).json()
    other = api.get(WEBHOOKS_URL, {"program": other_program.slug}).json()
    active = api.get(WEBHOOKS_URL, {"active": "false"}).json()

    assert [row["id"] for row in everything_yours["results"]] == [endpoint.pk, inactive.pk]
    assert everything_yours["count"] == 2
    assert [row["id"] for row in by_program["results"]] == [endpoint.pk, inactive.pk]
    assert other["results"] == []
    assert [row["id"] for row in active["results"]] == [inactive.pk]


def test_list_counts_waiting_and_dead_deliveries(api, endpoint, member, failing):
    waiting = delivery_make(endpoint, member)

    row = api.get(WEBHOOKS_URL).json()["results"][0]

    assert (row["pending_deliveries"], row["dead_deliveries"]) == (1, 1)
    assert row["last_attempt_at"] is not None
    assert waiting.status == DeliveryStatus.PENDING


def test_patch_changes_only_the_fields_sent(api, endpoint):
    secret = endpoint.secret

    response = api.patch(webhook_url(endpoint.pk), {"active": False}, format="json")
    cleared = api.patch(webhook_url(endpoint.pk), {"event_types": [], "description": "Paused"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert response.json()["event_types"] == ["points.earned"]
    assert cleared.status_code == 200, cleared.content
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.active, endpoint.event_types, endpoint.description) == (
        PUBLIC_URL,
        False,
        [],
        "Paused",
    )
    assert endpoint.secret == secret
    assert "secret" not in cleared.json()


def test_patch_cannot_set_the_program_or_the_secret(api, endpoint, other_program):
    before = everything()

    response = api.patch(webhook_url(endpoint.pk), {"secret": "whsec_mine", "program": other_program.slug})

    body = assert_problem(response, 400, "unknown_field")
    assert set(body["errors"]) == {"secret", "program"}
    assert everything() == before


def test_delete_removes_the_endpoint_and_its_deliveries_but_not_the_events(api, endpoint, member, failing):
    events = OutboxEvent.objects.count()

    response = api.delete(webhook_url(endpoint.pk))

    assert response.status_code == 204
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert not WebhookDelivery.objects.exists()
    assert not WebhookAttempt.objects.exists()
    assert OutboxEvent.objects.count() == events == 2


def test_rotate_secret_answers_the_new_secret_once(api, endpoint):
    old = endpoint.secret

    response = api.post(webhook_url(endpoint.pk, "rotate-secret/"), {}, format="json")

    assert response.status_code == 200, response.content
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert response.json()["secret"] == endpoint.secret
    assert endpoint.secret not in api.get(webhook_url(endpoint.pk)).content.decode()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"url": "http://127.0.0.1:8080/hook"}, "webhook_target_private"),
        ({"url": "http://10.1.2.3/hook"}, "webhook_target_private"),
        ({"url": "ftp://93.184.216.34/hook"}, "webhook_url_scheme"),
        ({"url": "not a url"}, "webhook_url_scheme"),
        ({"url": "http://user:password@93.184.216.34/hook"}, "webhook_url_invalid"),
        ({"event_types": ["points.earned", "points.stolen"]}, "webhook_event_type_unknown"),
    ],
)
def test_create_refuses_what_the_service_refuses_and_saves_nothing(api, program, settings, fields, code):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    before = everything()

    response = api.post(
        WEBHOOKS_URL, create_body(program, **fields), format="json", HTTP_IDEMPOTENCY_KEY=f"create-{code}"
    )

    assert_problem(response, 422, code)
    assert everything() == before
    assert not IdempotencyRecord.objects.exists()  # the key is released for a corrected retry


def test_an_intranet_host_name_is_accepted_on_premise_and_a_malformed_one_refused(api, program, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    host = intranet_name(monkeypatch)

    accepted = api.post(WEBHOOKS_URL, create_body(program, url=f"http://{host}:8080/hook"), format="json")
    refused = api.post(WEBHOOKS_URL, create_body(program, url="http://crm_box:8080/hook"), format="json")

    assert accepted.status_code == 201, accepted.content
    assert list(Endpoint.objects.values_list("url", flat=True)) == ["http://crm:8080/hook"]
    assert_problem(refused, 422, "webhook_url_invalid")


def test_private_targets_are_accepted_when_the_setting_allows_them(api, program, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    response = api.post(WEBHOOKS_URL, create_body(program, url="http://127.0.0.1:8080/hook"), format="json")

    assert response.status_code == 201, response.content
    assert Endpoint.objects.get().url == "http://127.0.0.1:8080/hook"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": ["http://93.184.216.34/hook"]}, "url"),
        ({"url": "x" * 2001}, "url"),
        ({"secret": "whsec_chosen"}, "secret"),
        ({"event_types": "points.earned"}, "event_types"),
        ({"description": "x" * 201}, "description"),
    ],
)
def test_create_refuses_malformed_fields(api, program, fields, field):
    before = everything()

    response = api.post(WEBHOOKS_URL, create_body(program, **fields), format="json")

    body = assert_problem(response, 400, "unknown_field" if field == "secret" else "validation_error")
    assert list(body["errors"]) == [field]
    assert everything() == before


def test_create_refuses_a_program_you_do_not_manage(api, other_program):
    response = api.post(WEBHOOKS_URL, create_body(other_program), format="json")

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["program"]
    assert not Endpoint.objects.exists()


def test_patch_refuses_a_private_url_and_changes_nothing(api, endpoint):
    before = everything()

    response = api.patch(webhook_url(endpoint.pk), {"url": "http://192.168.1.10/hook", "active": False})

    assert_problem(response, 422, "webhook_target_private")
    assert everything() == before


def test_create_with_an_idempotency_key_is_replayed_with_the_same_secret(api, program):
    body = create_body(program)

    first = api.post(WEBHOOKS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="webhook-1")
    again = api.post(WEBHOOKS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="webhook-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Endpoint.objects.count() == 1


# --- Deliveries -----------------------------------------------------------------------------------


def test_deliveries_list_with_their_attempts_and_last_answer(api, endpoint, member, failing):
    dead, delivered = failing

    response = api.get(webhook_url(endpoint.pk, "deliveries/"))

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [delivered.pk, dead.pk]  # newest first
    row = rows[1]
    assert {key: row[key] for key in row if key not in ("created_at", "occurred_at", "last_attempt_at")} == {
        "id": dead.pk,
        "endpoint_id": endpoint.pk,
        "event_id": dead.event.event_id,
        "event_type": "points.earned",
        "member_id": member.pk,
        "status": "dead",
        "attempts": 1,
        "last_status_code": 500,
        "last_error": "HTTP 500",
        "next_attempt_at": None,
    }
    assert (rows[0]["status"], rows[0]["last_status_code"], rows[0]["last_error"]) == ("succeeded", 204, "")


def test_deliveries_filter_by_status_and_event_type(api, endpoint, member, failing):
    dead, delivered = failing
    endpoint.event_types = []
    endpoint.save(update_fields=["event_types"])
    enrolled = delivery_make(endpoint, member, type=EventType.MEMBER_ENROLLED)

    def ids(**params):
        response = api.get(webhook_url(endpoint.pk, "deliveries/"), params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(status="dead") == [dead.pk]
    assert ids(status="pending") == [enrolled.pk]
    assert ids(type="member.enrolled") == [enrolled.pk]
    assert ids(type=["member.enrolled", "points.earned"]) == [enrolled.pk, delivered.pk, dead.pk]
    assert ids(type="points.earned", status="succeeded") == [delivered.pk]


@pytest.mark.parametrize("params", [{"status": "lost"}, {"type": "points.stolen"}])
def test_deliveries_refuse_unknown_filter_values(api, endpoint, params):
    response = api.get(webhook_url(endpoint.pk, "deliveries/"), params)

    body = assert_problem(response, 400, "validation_error")
    assert list(body["errors"]) == list(params)


def test_delivery_detail_has_the_attempt_log_and_the_body(api, settings, endpoint, member):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    delivery = delivery_make(
        endpoint,
        member,
        [answer(error="TimeoutError: timed out", latency_ms=10000), answer(502, excerpt="Bad gateway")],
    )

    response = api.get(delivery_url(endpoint.pk, delivery.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["attempts"], body["last_status_code"]) == ("pending", 2, 502)
    assert body["next_attempt_at"] is not None
    assert [
        {key: value for key, value in attempt.items() if key != "started_at"} for attempt in body["attempt_log"]
    ] == [
        {
            "number": 1,
            "succeeded": False,
            "status_code": None,
            "latency_ms": 10000,
            "response_excerpt": "",
            "error": "TimeoutError: timed out",
        },
        {
            "number": 2,
            "succeeded": False,
            "status_code": 502,
            "latency_ms": 12,
            "response_excerpt": "Bad gateway",
            "error": "",
        },
    ]
    event = delivery.event
    sent = body["body"]
    assert abs(parse_datetime(sent.pop("occurred_at")) - event.occurred_at) < timedelta(milliseconds=1)
    assert sent == {
        "event_id": event.event_id,
        "type": "points.earned",
        "version": 1,
        "program": endpoint.program.slug,
        "member": member.pk,
        "data": {"member_id": member.pk, "points": 10},
    }
    assert body["event_id"] == event.event_id


def test_replay_one_delivery_makes_it_due_now(api, endpoint, failing):
    dead, delivered = failing
    before = timezone.now()

    response = api.post(delivery_url(endpoint.pk, dead.pk, "replay/"), {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"replayed": 1}
    dead.refresh_from_db()
    assert (dead.status, dead.failures, dead.attempts) == (DeliveryStatus.PENDING, 0, 1)
    assert before <= dead.next_attempt_at <= timezone.now()
    delivered.refresh_from_db()
    assert delivered.status == DeliveryStatus.SUCCEEDED


def test_replay_failed_replays_dead_and_failing_deliveries_only(api, settings, endpoint, member, failing):
    dead, delivered = failing
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    failing_once = delivery_make(endpoint, member, [answer(503)])
    never_tried = delivery_make(endpoint, member)
    before = timezone.now()

    response = api.post(webhook_url(endpoint.pk, "replay-failed/"), format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"replayed": 2}
    states = {
        row.pk: (row.status, row.failures)
        for row in WebhookDelivery.objects.filter(pk__in=[dead.pk, delivered.pk, failing_once.pk, never_tried.pk])
    }
    assert states == {
        dead.pk: ("pending", 0),
        delivered.pk: ("succeeded", 0),
        failing_once.pk: ("pending", 0),
        never_tried.pk: ("pending", 0),
    }
    for replayed in WebhookDelivery.objects.filter(pk__in=[dead.pk, failing_once.pk]):
        assert before <= replayed.next_attempt_at <= timezone.now()


def test_replays_refuse_a_body(api, endpoint, failing):
    dead, _ = failing
    before = everything()

    response = api.post(delivery_url(endpoint.pk, dead.pk, "replay/"), {"status": "pending"}, format="json")

    assert assert_problem(response, 400, "unknown_field")["errors"] == {"status": [UNKNOWN_FIELD_MESSAGE]}
    assert everything() == before


# --- Scoping and permissions ----------------------------------------------------------------------


def test_another_programs_endpoint_and_deliveries_answer_404(api, settings, foreign_endpoint, other_program):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    foreign = delivery_make(foreign_endpoint, MemberFactory(program=other_program), [answer(500)])
    before = everything()

    responses = [
        api.get(webhook_url(foreign_endpoint.pk)),
        api.patch(webhook_url(foreign_endpoint.pk), {"active": False}, format="json"),
        api.delete(webhook_url(foreign_endpoint.pk)),
        api.post(webhook_url(foreign_endpoint.pk, "rotate-secret/"), format="json"),
        api.post(webhook_url(foreign_endpoint.pk, "replay-failed/"), format="json"),
        api.get(webhook_url(foreign_endpoint.pk, "deliveries/")),
        api.get(delivery_url(foreign_endpoint.pk, foreign.pk)),
        api.post(delivery_url(foreign_endpoint.pk, foreign.pk, "replay/"), format="json"),
    ]

    for response in responses:
        assert_problem(response, 404, "not_found")
    assert everything() == before


def test_a_delivery_is_found_only_under_its_own_endpoint(api, settings, endpoint, foreign_endpoint, other_program):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    foreign = delivery_make(foreign_endpoint, MemberFactory(program=other_program), [answer(500)])

    detail = api.get(delivery_url(endpoint.pk, foreign.pk))
    replay = api.post(delivery_url(endpoint.pk, foreign.pk, "replay/"), format="json")

    assert_problem(detail, 404, "not_found")
    assert_problem(replay, 404, "not_found")
    assert WebhookDelivery.objects.get(pk=foreign.pk).status == DeliveryStatus.DEAD


@pytest.mark.parametrize("endpoint_id", ["0", "99999999", str(2**70)])
def test_unknown_ids_answer_404(api, endpoint_id):
    assert_problem(api.get(webhook_url(endpoint_id)), 404, "not_found")
    assert_problem(api.get(webhook_url(endpoint_id, "deliveries/")), 404, "not_found")


def test_each_operation_needs_its_permission(program, endpoint, failing):
    dead, _ = failing
    viewer = StaffFactory(permissions=["view_webhookendpoint", "view_webhookdelivery"], programs=[program])
    api = staff_client(viewer)
    before = everything()

    assert api.get(webhook_url(endpoint.pk)).status_code == 200
    assert api.get(delivery_url(endpoint.pk, dead.pk)).status_code == 200
    for response in [
        api.post(WEBHOOKS_URL, create_body(program), format="json"),
        api.patch(webhook_url(endpoint.pk), {"active": False}, format="json"),
        api.delete(webhook_url(endpoint.pk)),
        api.post(webhook_url(endpoint.pk, "rotate-secret/"), format="json"),
        api.post(webhook_url(endpoint.pk, "replay-failed/"), format="json"),
        api.post(delivery_url(endpoint.pk, dead.pk, "replay/"), format="json"),
    ]:
        assert_problem(response, 403, "permission_denied")
    assert everything() == before
    assert_problem(APIClient().get(WEBHOOKS_URL), 401, "not_authenticated")


def test_the_webhook_endpoints_are_in_the_openapi_schema(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    paths = {path: set(item) & {"get", "post", "patch", "delete"} for path, item in schema["paths"].items()}
    base = "/api/manage/v1/webhooks/"
    assert paths[base] == {"get", "post"}
    assert paths[base + "{webhook_id}/"] == {"get", "patch", "delete"}
    assert paths[base + "{webhook_id}/rotate-secret/"] == {"post"}
    assert paths[base + "{webhook_id}/replay-failed/"] == {"post"}
    assert paths[base + "{webhook_id}/deliveries/"] == {"get"}
    assert paths[base + "{webhook_id}/deliveries/{delivery_id}/"] == {"get"}
    assert paths[base + "{webhook_id}/deliveries/{delivery_id}/replay/"] == {"post"}
    components = schema["components"]["schemas"]
    assert "secret" in components["WebhookEndpointSecretOutput"]["properties"]
    assert "secret" not in components["WebhookEndpointOutput"]["properties"]
    assert "422" in schema["paths"][base]["post"]["responses"]
    assert {p["name"] for p in schema["paths"][base + "{webhook_id}/deliveries/"]["get"]["parameters"]} >= {
        "status",
        "type",
        "page",
    }


def test_lists_make_the_same_number_of_queries_for_more_rows(api, program, endpoint, member, failing):
    def count(path):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(path)
        assert response.status_code == 200, response.content
        return len(queries), response.json()["count"]

    api.get(WEBHOOKS_URL)  # the user's permissions are read once, on the first request
    few = count(WEBHOOKS_URL), count(webhook_url(endpoint.pk, "deliveries/"))
    for n in range(3):
        WebhookEndpointFactory(program=program, url=f"https://93.184.216.34/more-{n}")
        delivery_make(endpoint, member, [answer(500)])
    many = count(WEBHOOKS_URL), count(webhook_url(endpoint.pk, "deliveries/"))

    assert [rows for _, rows in many] == [4, 5] and [rows for _, rows in few] == [1, 2]
    assert [queries for queries, _ in many] == [queries for queries, _ in few]
