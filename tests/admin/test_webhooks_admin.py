"""The webhook admin: endpoints (saved through the service, secret rotation, replaying failed deliveries) and
deliveries (read-only with their attempts and body, replay), scoped to the manager's programs."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.outbox import EventType
from tests.admin.utils import grant, messages_of, shown, url
from tests.events.webhook_rows import answer, delivery_make, intranet_name
from tests.factories import PUBLIC_URL, MemberFactory, ProgramFactory, WebhookEndpointFactory

PERMISSIONS = [
    "view_webhookendpoint",
    "add_webhookendpoint",
    "change_webhookendpoint",
    "delete_webhookendpoint",
    "view_webhookdelivery",
    "change_webhookdelivery",
]
ENDPOINTS = "events_webhookendpoint"
DELIVERIES = "events_webhookdelivery"


@pytest.fixture
def manager_client(client, manager):
    client.force_login(grant(manager, *PERMISSIONS))
    return client


@pytest.fixture
def endpoint(program):
    return WebhookEndpointFactory(program=program, description="Newsletter tool", event_types=[EventType.POINTS_EARNED])


@pytest.fixture
def dead(settings, endpoint, member):
    """A delivery whose only allowed attempt was answered 500."""
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    return delivery_make(endpoint, member, [answer(500, excerpt="Internal error")])


@pytest.fixture
def foreign(settings, other_program):
    """An endpoint of a program the manager does not manage, with a dead delivery."""
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    endpoint = WebhookEndpointFactory(
        program=other_program, url="https://93.184.216.34/foreign", description="Foreign CDP"
    )
    return endpoint, delivery_make(endpoint, MemberFactory(program=other_program), [answer(500)])


def add_form(program, **fields):
    return {"program": program.pk, "url": PUBLIC_URL, "description": "CDP", "active": "on", "_save": "1", **fields}


def act(client, name, action, *pks):
    return client.post(url(f"{name}_changelist"), {"action": action, "_selected_action": list(pks), "post": "yes"})


# --- Lists and pages ------------------------------------------------------------------------------


def test_endpoint_list_shows_types_and_delivery_counts(manager_client, program, endpoint, member, dead):
    delivery_make(endpoint, member)  # waiting
    # gets later events
    every = WebhookEndpointFactory(program=program, url="https://93.184.216.34/every", description="Every event")

    response = manager_client.get(url(f"{ENDPOINTS}_changelist"))

    assert response.status_code == 200
    assert shown(response) == sorted([endpoint.pk, every.pk])
    html = response.content.decode()
    assert PUBLIC_URL in html and "Newsletter tool" in html
    assert '<td class="field-types">points.earned</td>' in html
    assert '<td class="field-types">every type</td>' in html
    rows = {row.pk: row for row in response.context["cl"].result_list}
    assert (rows[endpoint.pk].pending_deliveries, rows[endpoint.pk].dead_deliveries) == (1, 1)
    assert rows[endpoint.pk].last_attempt_at == dead.last_attempt_at
    assert (rows[every.pk].pending_deliveries, rows[every.pk].dead_deliveries, rows[every.pk].last_attempt_at) == (
        0,
        0,
        None,
    )
    assert f"?endpoint={endpoint.pk}&amp;status__exact=dead" in html


def test_endpoint_page_masks_the_secret_and_shows_the_types_as_checkboxes(manager_client, endpoint):
    response = manager_client.get(url(f"{ENDPOINTS}_change", endpoint.pk))

    assert response.status_code == 200
    html = response.content.decode()
    assert endpoint.secret not in html and endpoint.secret[6:-4] not in html
    assert f"<code>whsec_…{endpoint.secret[-4:]}</code>" in html
    assert "Rotate secret" in html and "Replay failed deliveries" in html
    form = response.context["adminform"].form
    assert "secret" not in form.fields and "program" not in form.fields
    assert form["event_types"].value() == ["points.earned"]
    assert 'type="checkbox" name="event_types" value="points.earned"' in html
    assert "points.earned: a member earned points" in html
    assert "Leave every box unticked" in html


def test_delivery_list_shows_event_status_and_last_answer(manager_client, endpoint, member, dead):
    response = manager_client.get(url(f"{DELIVERIES}_changelist"))

    assert response.status_code == 200
    assert shown(response) == [dead.pk]
    html = response.content.decode()
    assert dead.event.event_id in html
    assert "Dead (every attempt failed)" in html
    assert '<td class="field-last_error">HTTP 500</td>' in html
    assert '<td class="field-last_status_code">500</td>' in html
    assert f'<a href="/admin/members/member/{member.pk}/change/">{member.pk}</a>' in html


def test_delivery_list_filters_and_search(manager_client, endpoint, member, dead):
    endpoint.event_types = []
    endpoint.save(update_fields=["event_types"])
    enrolled = delivery_make(endpoint, member, type=EventType.MEMBER_ENROLLED)
    changelist = url(f"{DELIVERIES}_changelist")

    assert shown(manager_client.get(changelist, {"status__exact": "dead"})) == [dead.pk]
    assert shown(manager_client.get(changelist, {"event_type": "member.enrolled"})) == [enrolled.pk]
    assert shown(manager_client.get(changelist, {"endpoint": endpoint.pk})) == [dead.pk, enrolled.pk]
    assert shown(manager_client.get(changelist, {"q": enrolled.event.event_id})) == [enrolled.pk]


def test_delivery_page_shows_the_attempts_and_the_body(manager_client, settings, endpoint, member):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    delivery = delivery_make(
        endpoint,
        member,
        [answer(error="TimeoutError: timed out", latency_ms=10000), answer(502, excerpt="Bad gateway")],
    )

    response = manager_client.get(url(f"{DELIVERIES}_change", delivery.pk))

    assert response.status_code == 200
    html = response.content.decode()
    assert "TimeoutError: timed out" in html and "10000 ms" in html
    assert "Bad gateway" in html and "12 ms" in html
    assert f"&quot;event_id&quot;: &quot;{delivery.event.event_id}&quot;" in html  # pretty-printed JSON
    assert "&quot;points&quot;: 10" in html
    assert '<input type="hidden" name="action" value="replay">' in html
    assert not WebhookAttempt.objects.filter(delivery=delivery).exclude(number__in=[1, 2]).exists()


def test_deliveries_cannot_be_added_changed_or_deleted(manager_client, dead):
    assert manager_client.get(url(f"{DELIVERIES}_add")).status_code == 403
    assert manager_client.get(url(f"{DELIVERIES}_delete", dead.pk)).status_code == 403
    response = manager_client.post(url(f"{DELIVERIES}_change", dead.pk), {"status": "succeeded"})
    assert response.status_code == 403
    assert WebhookDelivery.objects.get(pk=dead.pk).status == DeliveryStatus.DEAD


# --- Creating and changing endpoints --------------------------------------------------------------


def test_manager_adds_an_endpoint_through_the_form(manager_client, program):
    response = manager_client.post(
        url(f"{ENDPOINTS}_add"), add_form(program, event_types=["tier.promoted", "member.enrolled"])
    )

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200  # the secret, on the answer to the POST: the only time it is shown
    assert f'<code class="webhook-secret">{endpoint.secret}</code>' in response.content.decode()
    assert (endpoint.program, endpoint.url, endpoint.description, endpoint.active) == (program, PUBLIC_URL, "CDP", True)
    assert endpoint.event_types == ["member.enrolled", "tier.promoted"]
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret not in manager_client.get(url(f"{ENDPOINTS}_change", endpoint.pk)).content.decode()


def test_an_address_typed_without_scheme_is_https_and_intranet_names_are_taken(
    manager_client, program, settings, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # on-premise: the receiver is on the shop's own network
    host = intranet_name(monkeypatch)

    response = manager_client.post(url(f"{ENDPOINTS}_add"), add_form(program, url=f"{host}:8443/hooks"))

    assert response.status_code == 200  # saved: the page showing its secret once
    assert WebhookEndpoint.objects.get().url == "https://crm:8443/hooks"


def test_no_ticked_type_means_every_type(manager_client, program):
    manager_client.post(url(f"{ENDPOINTS}_add"), add_form(program))

    assert WebhookEndpoint.objects.get().event_types == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "http://127.0.0.1:8080/hook"}, "url", "resolves to a loopback, private or reserved address"),
        ({"url": "ftp://93.184.216.34/hook"}, "url", "Only http and https URLs can receive webhooks."),
        ({"url": "not a url"}, "url", "The URL's host 'not a url' is not a host name or address."),
        ({"event_types": ["points.stolen"]}, "event_types", "Select a valid choice."),
    ],
)
def test_a_refused_endpoint_is_a_form_error_and_nothing_is_saved(manager_client, program, fields, field, message):
    response = manager_client.post(url(f"{ENDPOINTS}_add"), add_form(program, **fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert not WebhookEndpoint.objects.exists()


def test_changing_to_a_refused_url_keeps_the_endpoint(manager_client, endpoint):
    response = manager_client.post(
        url(f"{ENDPOINTS}_change", endpoint.pk),
        {"url": "http://10.0.0.5/hook", "description": "Changed", "event_types": [], "_save": "1"},
    )

    assert response.status_code == 200
    assert "url" in response.context["adminform"].form.errors
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.active) == (PUBLIC_URL, "Newsletter tool", True)


def test_manager_changes_an_endpoint(manager_client, endpoint):
    secret = endpoint.secret

    response = manager_client.post(
        url(f"{ENDPOINTS}_change", endpoint.pk),
        {"url": "https://93.184.216.34/v2", "description": "CDP v2", "event_types": ["nps.answered"], "_save": "1"},
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.event_types, endpoint.active) == (
        "https://93.184.216.34/v2",
        "CDP v2",
        ["nps.answered"],
        False,  # the box was left unticked
    )
    assert endpoint.secret == secret


# --- Actions --------------------------------------------------------------------------------------


def test_rotate_secret_asks_then_changes_the_secret(manager_client, endpoint):
    old = endpoint.secret
    changelist = url(f"{ENDPOINTS}_changelist")

    ask = manager_client.post(changelist, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    unchanged = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    done = act(manager_client, ENDPOINTS, "rotate_secret", endpoint.pk)

    assert ask.status_code == 200 and "until it has it, it rejects the events" in ask.content.decode()
    assert unchanged == old
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")
    assert done.status_code == 200  # the new secret, shown once on the answer
    assert f'<code class="webhook-secret">{endpoint.secret}</code>' in done.content.decode()
    assert endpoint.secret not in manager_client.get(url(f"{ENDPOINTS}_change", endpoint.pk)).content.decode()


def test_replay_failed_deliveries_makes_them_due_and_says_how_many(manager_client, settings, endpoint, member, dead):
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    failing = delivery_make(endpoint, member, [answer(503)])
    delivered = delivery_make(endpoint, member, [answer(200)])
    before = timezone.now()

    response = act(manager_client, ENDPOINTS, "replay_failed", endpoint.pk)

    assert response.status_code == 302
    assert messages_of(response) == [f"{PUBLIC_URL}: replayed 2 deliveries."]
    for delivery in (dead, failing):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.failures) == (DeliveryStatus.PENDING, 0)
        assert before <= delivery.next_attempt_at <= timezone.now()
    delivered.refresh_from_db()
    assert delivered.status == DeliveryStatus.SUCCEEDED


def test_replay_failed_with_nothing_failed_says_so(manager_client, endpoint):
    response = act(manager_client, ENDPOINTS, "replay_failed", endpoint.pk)

    assert messages_of(response) == [f"{PUBLIC_URL}: no failed deliveries to replay."]


def test_replay_failed_from_the_endpoint_page_returns_to_it(manager_client, endpoint, dead):
    response = manager_client.post(
        url(f"{ENDPOINTS}_changelist"),
        {"action": "replay_failed", "_selected_action": [endpoint.pk], "post": "yes", "_from_object": "1"},
    )

    assert response.url == url(f"{ENDPOINTS}_change", endpoint.pk)
    assert WebhookDelivery.objects.get(pk=dead.pk).status == DeliveryStatus.PENDING


def test_replay_selected_deliveries(manager_client, endpoint, dead):
    before = timezone.now()

    ask = manager_client.post(url(f"{DELIVERIES}_changelist"), {"action": "replay", "_selected_action": [dead.pk]})
    still_dead = WebhookDelivery.objects.get(pk=dead.pk).status
    done = act(manager_client, DELIVERIES, "replay", dead.pk)

    assert ask.status_code == 200 and still_dead == DeliveryStatus.DEAD
    assert messages_of(done) == ["Replayed 1 delivery."]
    dead.refresh_from_db()
    assert (dead.status, dead.failures, dead.attempts) == (DeliveryStatus.PENDING, 0, 1)
    assert before <= dead.next_attempt_at <= timezone.now()


def test_replaying_needs_the_change_delivery_permission(client, manager, endpoint, dead):
    client.force_login(grant(manager, "view_webhookendpoint", "change_webhookendpoint", "view_webhookdelivery"))

    act(client, ENDPOINTS, "replay_failed", endpoint.pk)
    act(client, DELIVERIES, "replay", dead.pk)
    page = client.get(url(f"{DELIVERIES}_change", dead.pk))

    assert WebhookDelivery.objects.get(pk=dead.pk).status == DeliveryStatus.DEAD
    assert page.status_code == 200
    assert 'value="replay"' not in page.content.decode()


def test_deleting_an_endpoint_counts_its_deliveries_and_deletes_them(manager_client, endpoint, dead):
    ask = manager_client.get(url(f"{ENDPOINTS}_delete", endpoint.pk))
    done = manager_client.post(url(f"{ENDPOINTS}_delete", endpoint.pk), {"post": "yes"})

    assert ask.status_code == 200 and "1 delivery, with their attempts" in ask.content.decode()
    assert done.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()


# --- Scoping --------------------------------------------------------------------------------------


def test_manager_sees_only_their_programs_endpoints_and_deliveries(manager_client, endpoint, dead, foreign):
    foreign_endpoint, foreign_delivery = foreign

    endpoints = manager_client.get(url(f"{ENDPOINTS}_changelist"))
    deliveries = manager_client.get(url(f"{DELIVERIES}_changelist"))

    assert shown(endpoints) == [endpoint.pk]
    assert shown(deliveries) == [dead.pk]
    for response in (endpoints, deliveries):
        assert "Foreign CDP" not in response.content.decode()
        assert foreign_endpoint.url not in response.content.decode()
    search = manager_client.get(url(f"{DELIVERIES}_changelist"), {"q": foreign_delivery.event.event_id})
    assert shown(search) == []
    assert shown(manager_client.get(url(f"{DELIVERIES}_changelist"), {"endpoint": foreign_endpoint.pk})) == []


def test_manager_cannot_open_or_act_on_another_programs_rows(manager_client, foreign):
    foreign_endpoint, foreign_delivery = foreign
    secret = foreign_endpoint.secret

    for name, pk in [(ENDPOINTS, foreign_endpoint.pk), (DELIVERIES, foreign_delivery.pk)]:
        response = manager_client.get(url(f"{name}_change", pk))
        assert response.status_code in (302, 404), name
    act(manager_client, ENDPOINTS, "rotate_secret", foreign_endpoint.pk)
    act(manager_client, ENDPOINTS, "replay_failed", foreign_endpoint.pk)
    act(manager_client, DELIVERIES, "replay", foreign_delivery.pk)

    assert WebhookEndpoint.objects.get(pk=foreign_endpoint.pk).secret == secret
    assert WebhookDelivery.objects.get(pk=foreign_delivery.pk).status == DeliveryStatus.DEAD


def test_manager_can_add_endpoints_only_to_their_programs(manager_client, program, other_program):
    form = manager_client.get(url(f"{ENDPOINTS}_add")).context["adminform"].form
    response = manager_client.post(url(f"{ENDPOINTS}_add"), add_form(other_program))

    assert list(form.fields["program"].queryset) == [program]
    assert "program" in response.context["adminform"].form.errors
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("name", [ENDPOINTS, DELIVERIES])
def test_changelists_make_the_same_number_of_queries_for_more_rows(client, manager, program, member, name):
    client.force_login(grant(manager, *PERMISSIONS))
    ProgramFactory().managers.add(manager)  # two programs: the program filter and column are shown too

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(f"{name}_changelist"))
        assert response.status_code == 200
        return len(queries), len(response.context["cl"].result_list)

    def more():
        endpoint = WebhookEndpointFactory(
            program=program, url=f"https://93.184.216.34/{WebhookEndpoint.objects.count()}"
        )
        delivery_make(endpoint, member, [answer(500)])

    more()
    few, few_rows = count_queries()
    for _ in range(3):
        more()
    many, many_rows = count_queries()

    assert many_rows > few_rows
    assert many == few
