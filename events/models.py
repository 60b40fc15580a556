"""The outbox of business events and their delivery to webhook endpoints.

An event is written in the transaction of the change that caused it (`events.outbox`); a dispatcher turns each
event into one delivery per subscribed endpoint; every attempt to deliver is logged (`events.webhooks`).
"""

import base64
import secrets

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from members.models.core import Member, Program


class OutboxEvent(models.Model):
    """A business event, written in the same transaction as the change that caused it (the outbox):
    a rolled-back change leaves no event. The dispatcher marks it `dispatched_at` once its deliveries exist."""

    event_id = models.CharField(
        max_length=40, editable=False, help_text="evt_<uuid>: stable, for receivers to deduplicate."
    )
    # Indexed by outbox_program_idx (program, id); event_id unique by a constraint, without the pattern index
    # that `unique=True` adds on PostgreSQL: every purchase writes a row here, every index costs it.
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+", db_index=False)
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=40)
    version = models.PositiveSmallIntegerField(default=1, help_text="Version of the payload of this type.")
    data = models.JSONField(encoder=DjangoJSONEncoder)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the event's webhook deliveries were created (empty: not yet)."
    )

    class Meta:
        db_table = "members_outboxevent"  # the table keeps the name it had in `members`
        verbose_name = "event"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["event_id"], name="outbox_event_id_unique")]
        indexes = [
            models.Index(fields=["program", "id"], name="outbox_program_idx"),
            models.Index(fields=["id"], condition=Q(dispatched_at__isnull=True), name="outbox_undispatched_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (the HMAC key)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """A receiver of a program's events: a URL, the secret deliveries are signed with, the event types it wants."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(  # checked by the service (http(s), public addresses), which also takes intranet names
        max_length=2000, help_text="http(s) address the events are POSTed to."
    )
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(
        max_length=100,
        default=webhook_secret_new,
        help_text="Signing secret (Standard Webhooks, whsec_...): give it to the receiver to verify signatures.",
    )
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types delivered to this endpoint; empty: every type."
    )
    active = models.BooleanField(
        default=True,
        help_text="Inactive: no new events are sent to it; deliveries already waiting go out when it is active again.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "members_webhookendpoint"  # the table keeps the name it had in `members`
        verbose_name = "webhook endpoint"
        ordering = ["program", "id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    @property
    def secret_hint(self) -> str:
        """What reads show of the secret (the API and the admin alike): its last 4 characters."""
        return f"…{self.secret[-4:]}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (waiting for its next attempt)"
    SUCCEEDED = "succeeded", "Delivered"
    DEAD = "dead", "Dead (every attempt failed)"


class WebhookDelivery(models.Model):
    """One event to one endpoint. Retried on failure with growing delays until it succeeds or dies."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="deliveries")
    member_id = models.BigIntegerField(null=True, blank=True, help_text="The event's member (delivery order).")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts made, replays included.")
    failures = models.PositiveIntegerField(
        default=0, help_text="Failed attempts since the delivery was created or last replayed (drives the backoff)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(
        max_length=32, blank=True, help_text="The scheduler round whose task may make the next attempt (empty: none)."
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "members_webhookdelivery"  # the table keeps the name it had in `members`
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once_per_endpoint")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due_idx"),
            models.Index(
                fields=["endpoint", "member_id", "event"],
                condition=Q(status="pending"),
                name="webhook_delivery_order_idx",
            ),
            models.Index(fields=["endpoint", "status"], name="webhook_delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, as the receiver answered it (or why it could not)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no HTTP answer.")
    latency_ms = models.PositiveIntegerField()
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "members_webhookattempt"  # the table keeps the name it had in `members`
        verbose_name = "webhook attempt"
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
