"""Webhook deliveries in the admin: one event to one endpoint, read-only, with every attempt (the receiver's
status code and answer, the time taken) and the body the receiver gets. "Replay" sends the selected ones again
(`webhook_deliveries_replay`). Scoped by the endpoint's program, like the rest of the admin.
"""

import json
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from events.admin.webhooks import REPLAY_PERMISSION, deliveries
from events.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.outbox import EventType
from events.webhooks.schedule import retry_window
from events.webhooks.selectors import webhook_delivery_body
from events.webhooks.services import webhook_deliveries_replay
from members.access import managed_programs
from members.admin import ManagedProgramFilter, ObjectActionsAdmin, OfferedIdFilter, ProgramScopedAdmin
from members.admin.base import ReadOnlyAdminMixin


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"


class DeliveryProgramFilter(ManagedProgramFilter):
    field = "endpoint__program_id"


class EndpointFilter(OfferedIdFilter):
    """The endpoints of the programs the user manages."""

    title = "endpoint"
    parameter_name = "endpoint"
    field = "endpoint_id"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        endpoints = WebhookEndpoint.objects.filter(program__in=managed_programs(request.user)).order_by("url", "id")
        return [
            (str(pk), f"{url} ({description})" if description else url)
            for pk, url, description in endpoints.values_list("pk", "url", "description")
        ]


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(value, value) for value in EventType.values]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(event__type=self.value()) if self.value() else queryset


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "succeeded", "status_code", "time_taken", "response_excerpt", "error")
    readonly_fields = fields
    ordering = ["number"]
    verbose_name = "attempt"
    verbose_name_plural = "attempts"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("events.view_webhookdelivery")

    @admin.display(description="Time taken")
    def time_taken(self, attempt: WebhookAttempt) -> str:
        return f"{attempt.latency_ms} ms"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, ObjectActionsAdmin, ProgramScopedAdmin):
    """Read-only: deliveries are written by the dispatcher and the delivery worker; managers only replay them."""

    program_lookup = "endpoint__program"
    list_display = [
        "event_type",
        "event_ref",
        "endpoint",
        "member",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", EndpointFilter, EventTypeFilter, DeliveryProgramFilter]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=event__event_id"]
    search_help_text = "An event id (evt_…), exactly as the receiver got it."
    inlines = [AttemptInline]
    actions = ["replay"]
    object_actions = ("replay",)
    object_action_labels = {"replay": "Replay"}
    readonly_fields = [
        "endpoint_link",
        "event_ref",
        "event_type",
        "member",
        "status",
        "created_at",
        "attempts",
        "failures",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "body",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("event__program", "endpoint")

    def get_fieldsets(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> Any:
        shortest, longest = retry_window()
        attempts = (
            f"A failed attempt is tried again after a growing wait, up to {settings.WEBHOOK_MAX_ATTEMPTS} attempts "
            f"over {_duration(shortest)} to {_duration(longest)}; then the delivery is dead until someone replays it. "
            "“Replay” sends it again with every retry ahead of it."
        )
        body = (
            "The JSON body of every attempt. Its event_id is also sent as the webhook-id header: a receiver that "
            "gets it twice (after a replay, say) can tell."
        )
        return [
            (None, {"fields": ["endpoint_link", "event_ref", "event_type", "member", "status", "created_at"]}),
            (
                "Progress",
                {
                    "fields": [
                        "attempts",
                        "failures",
                        "last_attempt_at",
                        "last_status_code",
                        "last_error",
                        "next_attempt_at",
                    ],
                    "description": attempts,
                },
            ),
            ("What the receiver gets", {"fields": ["body"], "description": body}),
        ]

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="Event id", ordering="event__event_id")
    def event_ref(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_id

    @admin.display(description="Member", ordering="member_id")
    def member(self, delivery: WebhookDelivery) -> str:
        if delivery.member_id is None:
            return "—"
        url = reverse("admin:members_member_change", args=[delivery.member_id])
        return format_html('<a href="{}">{}</a>', url, delivery.member_id)

    @admin.display(description="Endpoint")
    def endpoint_link(self, delivery: WebhookDelivery) -> str:
        url = reverse("admin:events_webhookendpoint_change", args=[delivery.endpoint_id])
        return format_html('<a href="{}">{}</a>', url, delivery.endpoint)

    @admin.display(description="Body")
    def body(self, delivery: WebhookDelivery) -> str:
        text = json.dumps(webhook_delivery_body(delivery), indent=2, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REPLAY_PERMISSION)

    @admin.action(description="Replay selected deliveries…", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            intro = (
                "The selected deliveries are sent again within seconds, delivered ones too, with all their retries "
                "ahead of them. The receiver gets the same event ids again, so it can recognise events it already has."
            )
            return self.action_page(
                request, queryset, action="replay", title="Replay deliveries", intro=intro, button="Replay"
            )
        paused = queryset.filter(endpoint__active=False).count()
        count = webhook_deliveries_replay(deliveries=queryset)
        note = f" {deliveries(paused)} of paused endpoints wait until they are active again." if paused else ""
        self.message_user(request, f"Replayed {deliveries(count)}.{note}", messages.SUCCESS)
        return self.after_action(request, queryset)
