"""Webhook endpoints in the admin (DESIGN.md section 9); their deliveries are in `webhook_deliveries`.

A manager enters the address of a receiver (a shop's e-mail tool, a CDP), ticks the event types it wants and
gives it the signing secret, shown once: on the page that answers the creation, and on the page that answers
"Rotate secret" (as in the API, reads show only its last 4 characters). Endpoints are saved through
`webhook_endpoint_save`, whose checks (http or https, a public address, known event types) show as errors
on the form's fields.
"Rotate secret" and "Replay failed deliveries" are actions, and buttons on the endpoint's page.

Scoped like the rest of the admin: a manager sees only the endpoints of their programs.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from events.exceptions import WebhookEndpointInvalid
from events.models import WebhookDelivery, WebhookEndpoint
from events.webhooks.selectors import EndpointCounts, event_type_choices, webhook_endpoints_with_counts
from events.webhooks.services import webhook_endpoint_save, webhook_failed_replay, webhook_secret_rotate
from members.admin import ManagedProgramFilter, ObjectActionsAdmin, ProgramScopedAdmin

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    CountedEndpoint = WithAnnotations[WebhookEndpoint, EndpointCounts]  # as get_queryset gives them

REPLAY_PERMISSION = "events.change_webhookdelivery"


def deliveries(count: int) -> str:
    return f"{count} {'delivery' if count == 1 else 'deliveries'}"


def _deliveries_url(**filters: Any) -> str:
    query = "&".join(f"{name}={value}" for name, value in filters.items())
    return f"{reverse('admin:events_webhookdelivery_changelist')}?{query}"


# --- Endpoints ------------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        help_text="Where the events are sent (HTTP POST with a JSON body), e.g. https://crm.example.com/hooks/loyalty. "
        "The receiver's documentation gives it. Only http and https addresses on the public internet.",
    )
    event_types = forms.MultipleChoiceField(
        choices=event_type_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Event types",
        help_text="Tick the events this receiver wants. Leave every box unticked to send it every type, "
        "including types added later.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["program", "url", "description", "event_types", "active"]
        labels = {"active": "Active"}
        help_texts = {
            "description": "For you and your colleagues: what receives these events, e.g. “Newsletter tool: "
            "welcome and tier e-mails”.",
            "active": "Untick to pause: deliveries already waiting are sent once it is ticked again; events that "
            "happen meanwhile are not sent to it.",
        }

    def clean_url(self) -> str:
        """An address typed without its scheme is taken as https (the service checks the rest: scheme, host,
        port, public addresses; intranet names such as http://crm:8080/ too, where the setting allows them)."""
        url = self.cleaned_data["url"]
        return url if "://" in url else f"https://{url}"

    def _post_clean(self) -> None:
        """Saves through the service once the fields are valid: the service is the one check of a URL (it
        resolves the host), and calling it here turns its refusal into an error on the field it is about.
        The admin's change view runs in one transaction, so the endpoint and the log entry commit together."""
        super()._post_clean()  # type: ignore[misc]  # private Django API, not in the stubs
        if self.errors:  # set by full_clean, which runs this: only read here
            return
        data = self.cleaned_data
        try:
            webhook_endpoint_save(
                program=data.get("program") or self.instance.program,
                url=data["url"],
                event_types=data["event_types"],
                description=data["description"],
                active=data["active"],
                endpoint=self.instance,
            )
        except WebhookEndpointInvalid as exc:
            self.add_error("event_types" if exc.code == "webhook_event_type_unknown" else "url", exc.detail)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ObjectActionsAdmin, ProgramScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["address", "description", "program", "active", "types", "waiting", "dead", "last_attempt"]
    list_filter = [ManagedProgramFilter, "active"]
    list_select_related = ["program"]
    search_fields = ["url", "description"]
    ordering = ["program__name", "id"]
    actions = ["replay_failed", "rotate_secret"]
    object_actions = ("replay_failed", "rotate_secret")
    object_action_labels = {"replay_failed": "Replay failed deliveries", "rotate_secret": "Rotate secret"}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return webhook_endpoints_with_counts(super().get_queryset(request))

    def get_fieldsets(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> Any:
        main = (None, {"fields": ["program", "url", "description", "event_types", "active"]})
        if obj is None:
            return [main]
        signing = {
            "fields": ["signing_secret"],
            "description": "Every delivery is signed with this secret (Standard Webhooks: the webhook-id, "
            "webhook-timestamp and webhook-signature headers). It was shown once, when the endpoint was created or "
            "its secret last rotated; only its end is shown here. If the receiver lost it, or it may have leaked, "
            "use “Rotate secret” and give the receiver the new one.",
        }
        return [main, ("Signing secret", signing), ("Deliveries", {"fields": ["delivery_summary", "created_at"]})]

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        readonly = ["signing_secret", "delivery_summary", "created_at"]
        return [*readonly, "program"] if obj is not None else readonly

    @admin.display(description="URL", ordering="url")
    def address(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.url

    @admin.display(description="Event types")
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) if endpoint.event_types else "every type"

    @admin.display(description="Waiting deliveries", ordering="pending_deliveries")
    def waiting(self, endpoint: "CountedEndpoint") -> str:
        url = _deliveries_url(endpoint=endpoint.pk, status__exact="pending")
        return format_html('<a href="{}">{}</a>', url, endpoint.pending_deliveries)

    @admin.display(description="Dead deliveries", ordering="dead_deliveries")
    def dead(self, endpoint: "CountedEndpoint") -> str:
        url = _deliveries_url(endpoint=endpoint.pk, status__exact="dead")
        return format_html('<a href="{}">{}</a>', url, endpoint.dead_deliveries)

    @admin.display(description="Last attempt", ordering="last_attempt_at", empty_value="never")
    def last_attempt(self, endpoint: "CountedEndpoint") -> Any:
        return endpoint.last_attempt_at

    @admin.display(description="Signing secret")
    def signing_secret(self, endpoint: WebhookEndpoint) -> str:
        return format_html("<code>whsec_{}</code> (only the end is shown)", endpoint.secret_hint)

    @admin.display(description="Deliveries")
    def delivery_summary(self, endpoint: "CountedEndpoint") -> str:
        return format_html(
            '<a href="{}">{} waiting</a>, <a href="{}">{} dead</a> (every attempt failed; “Replay failed '
            'deliveries” sends them again). <a href="{}">All deliveries</a>.',
            _deliveries_url(endpoint=endpoint.pk, status__exact="pending"),
            endpoint.pending_deliveries,
            _deliveries_url(endpoint=endpoint.pk, status__exact="dead"),
            endpoint.dead_deliveries,
            _deliveries_url(endpoint=endpoint.pk),
        )

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool) -> None:
        """Nothing left to do: the form saved the endpoint through `webhook_endpoint_save` while validating."""

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None) -> Any:
        """The new endpoint's signing secret, on the answer to the POST itself: the only time it is shown."""
        return self.secrets_page(request, [obj], title="Copy the signing secret now", intro="Added the endpoint.")

    def secrets_page(self, request: HttpRequest, endpoints: list[WebhookEndpoint], *, title: str, intro: str) -> Any:
        """Shows the endpoints' signing secrets once (never in a message, a session or a URL)."""
        request.current_app = self.admin_site.name
        name = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "endpoints": [
                (endpoint, reverse("admin:events_webhookendpoint_change", args=[endpoint.pk], current_app=name))
                for endpoint in endpoints
            ],
            "changelist_url": reverse("admin:events_webhookendpoint_changelist", current_app=name),
        }
        return TemplateResponse(request, "admin/events/webhook_secrets.html", context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[Any], dict[str, int], set, list]:
        """The deliveries go with their endpoint: counted instead of listed one by one (there can be many),
        and deleting them needs no permission beyond deleting the endpoint."""
        shown: list[Any] = []
        counts = {"webhook endpoints": 0, "webhook deliveries": 0}
        for endpoint in objs:
            count = WebhookDelivery.objects.filter(endpoint=endpoint).count()
            shown += [f"{endpoint} ({endpoint.program})", [f"{deliveries(count)}, with their attempts"]]
            counts["webhook endpoints"] += 1
            counts["webhook deliveries"] += count
        return shown, counts, set(), []

    @admin.action(description="Rotate the signing secret…", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            intro = (
                "Each selected endpoint gets a new signing secret at once, and every delivery from then on is signed "
                "with it. Give the new secret to the receiver straight away: until it has it, it rejects the events."
            )
            return self.action_page(
                request,
                queryset,
                action="rotate_secret",
                title="Rotate signing secrets",
                intro=intro,
                button="Yes, rotate",
                danger=True,
            )
        rotated = [webhook_secret_rotate(endpoint=endpoint) for endpoint in queryset]
        intro = "Every delivery from now on is signed with the new secret."
        return self.secrets_page(request, rotated, title="Copy the new signing secrets now", intro=intro)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REPLAY_PERMISSION)

    @admin.action(description="Replay failed deliveries…", permissions=["replay"])
    def replay_failed(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            intro = (
                "Every dead delivery of the selected endpoints, and every waiting one that has failed before, is sent "
                "again within seconds, with all its retries ahead of it. The receiver gets the same event ids again, "
                "so it can recognise events it already has."
            )
            return self.action_page(
                request,
                queryset,
                action="replay_failed",
                title="Replay failed deliveries",
                intro=intro,
                button="Yes, replay",
            )
        for endpoint in queryset:
            count = webhook_failed_replay(endpoint=endpoint)
            if not count:
                self.message_user(request, f"{endpoint}: no failed deliveries to replay.", messages.INFO)
                continue
            paused = "" if endpoint.active else " The endpoint is paused: they are sent once it is active again."
            self.message_user(request, f"{endpoint}: replayed {deliveries(count)}.{paused}", messages.SUCCESS)
        return self.after_action(request, queryset)
