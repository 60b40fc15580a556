"""Manager API serializers for webhook endpoints and their deliveries.

The URL and the event types are checked by `webhook_endpoint_save` (http(s), a public address, known types),
which answers with its own stable codes; the serializers only check the shape. The signing secret is in
the answers of creating an endpoint and rotating its secret, never in reads (`secret_hint` instead).
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.fields import NamedChoiceField, ProgramSlugField
from config.api.input import InputSerializer
from events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from events.outbox import EventType
from events.webhooks.selectors import webhook_delivery_body


@extend_schema_field({"type": "string", "enum": EventType.values})
class EventTypeField(serializers.CharField):
    """An event type; an unknown one is refused by the service (422 webhook_event_type_unknown)."""


class WebhookEndpointInput(InputSerializer):
    url = serializers.CharField(
        max_length=2000,
        help_text="Where events are POSTed: http or https, resolving to public addresses only "
        "(422 webhook_url_scheme, webhook_url_invalid, webhook_host_unresolved, webhook_target_private).",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    event_types = serializers.ListField(
        child=EventTypeField(max_length=40),
        required=False,
        default=list,
        max_length=100,
        help_text="The event types delivered to the endpoint; empty: every type, those added later too "
        "(422 webhook_event_type_unknown for a type that does not exist).",
    )
    active = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Inactive: waiting deliveries wait, and events that happen meanwhile are not sent to it.",
    )


class WebhookEndpointCreateInput(WebhookEndpointInput):
    program = ProgramSlugField()


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug", help_text="Program slug.")
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField(), help_text="Empty: every type.")
    active = serializers.BooleanField()
    secret_hint = serializers.SerializerMethodField(help_text="The signing secret's last 4 characters.")
    pending_deliveries = serializers.IntegerField(help_text="Deliveries waiting for their next attempt.")
    dead_deliveries = serializers.IntegerField(help_text="Deliveries whose every attempt failed (replay them).")
    last_attempt_at = serializers.DateTimeField(allow_null=True, help_text="The latest delivery attempt.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_secret_hint(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.secret_hint


class WebhookEndpointSecretOutput(WebhookEndpointOutput):
    secret = serializers.CharField(
        help_text="The signing secret (whsec_...), shown only when the endpoint is created and when it is rotated: "
        "give it to the receiver to verify the webhook-signature header (Standard Webhooks)."
    )


class WebhookActionInput(InputSerializer):
    """No fields: send an empty object (or no body)."""


class WebhookActionInputExtension(OpenApiSerializerExtension):
    """Documents the body as the empty object it is (drf-spectacular drops empty serializers)."""

    target_class = WebhookActionInput

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {}, "additionalProperties": False, "description": "No fields."}


class WebhookReplayOutput(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="Deliveries set to be sent again, with every retry ahead of them.")


# --- Deliveries -----------------------------------------------------------------------------------


class WebhookAttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True, help_text="Null: no HTTP answer (see error).")
    latency_ms = serializers.IntegerField()
    response_excerpt = serializers.CharField(help_text="The start of the receiver's answer.")
    error = serializers.CharField(help_text="Why there was no HTTP answer (timeout, refused connection, ...).")


class WebhookDeliveryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint_id = serializers.IntegerField()
    event_id = serializers.CharField(source="event.event_id", help_text="Also sent as the webhook-id header.")
    event_type = serializers.CharField(source="event.type")
    occurred_at = serializers.DateTimeField(source="event.occurred_at")
    member_id = serializers.IntegerField(allow_null=True)
    status = NamedChoiceField(choices=DeliveryStatus.choices, enum_name="WebhookDeliveryStatusEnum")
    attempts = serializers.IntegerField(help_text="Attempts made, replays included.")
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True, help_text="Null once delivered or dead.")
    created_at = serializers.DateTimeField()


class WebhookDeliveryDetailOutput(WebhookDeliveryOutput):
    attempt_log = WebhookAttemptOutput(many=True, source="attempt_log.all", help_text="Every attempt, oldest first.")
    body = serializers.SerializerMethodField(help_text="The JSON body every attempt sends.")

    def get_body(self, delivery: WebhookDelivery) -> dict[str, Any]:
        return webhook_delivery_body(delivery)
