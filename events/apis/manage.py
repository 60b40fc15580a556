"""Manager API for webhook endpoints and their deliveries: /api/manage/v1/webhooks/ (DESIGN.md section 9).

Scoped like the rest of the manager surface: an endpoint of a program the user does not manage answers 404
exactly like one that does not exist, and so do its deliveries. Endpoints are written through
`events.webhooks.services`: `webhook_endpoint_save` refuses a URL that is not http(s) or resolves to a
private address, and unknown event types, with 422 and a stable code (`webhook_url_scheme`,
`webhook_url_invalid`, `webhook_host_unresolved`, `webhook_target_private`, `webhook_event_type_unknown`);
nothing is written then. The signing secret is answered only on creation and rotation.
"""

import django_filters
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.filters import BooleanFilter, program_filter
from config.api.input import parse
from config.api.manage import ManageAPIView, ProgramRowsView, requires
from config.api.problems import problems
from events.apis.serializers import (
    WebhookActionInput,
    WebhookDeliveryDetailOutput,
    WebhookDeliveryOutput,
    WebhookEndpointCreateInput,
    WebhookEndpointInput,
    WebhookEndpointOutput,
    WebhookEndpointSecretOutput,
    WebhookReplayOutput,
)
from events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from events.outbox import EventType
from events.webhooks.selectors import webhook_endpoints_with_counts
from events.webhooks.services import (
    webhook_deliveries_replay,
    webhook_endpoint_delete,
    webhook_endpoint_save,
    webhook_failed_replay,
    webhook_secret_rotate,
)

TAGS = ["Manager: webhooks"]

VIEW_ENDPOINT, ADD_ENDPOINT = "events.view_webhookendpoint", "events.add_webhookendpoint"
CHANGE_ENDPOINT, DELETE_ENDPOINT = "events.change_webhookendpoint", "events.delete_webhookendpoint"
VIEW_DELIVERY, REPLAY_DELIVERY = "events.view_webhookdelivery", "events.change_webhookdelivery"

WEBHOOK_ID = OpenApiParameter("webhook_id", int, OpenApiParameter.PATH, description="The endpoint's id.")
DELIVERY_ID = OpenApiParameter("delivery_id", int, OpenApiParameter.PATH, description="The delivery's id.")
REFUSALS = (
    "Errors: validation_error (400, per field); webhook_url_scheme, webhook_url_invalid, webhook_host_unresolved, "
    "webhook_target_private, webhook_event_type_unknown (422); nothing is saved then. "
)


class WebhookEndpointFilter(django_filters.FilterSet):
    program = program_filter()
    active = BooleanFilter()

    class Meta:
        model = WebhookEndpoint
        fields = ["program", "active"]


class WebhookDeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    type = django_filters.MultipleChoiceFilter(
        field_name="event__type", choices=EventType.choices, help_text="Event type; repeat for several."
    )

    class Meta:
        model = WebhookDelivery
        fields = ["status", "type"]


# --- Endpoints ------------------------------------------------------------------------------------


class EndpointView(ProgramRowsView):
    model = WebhookEndpoint
    queryset = WebhookEndpoint.objects.none()  # for the schema; requests use get_queryset()
    lookup_url_kwarg = "webhook_id"

    def get_queryset(self) -> QuerySet:
        return webhook_endpoints_with_counts(super().get_queryset()).order_by("program__slug", "id")

    def reread(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """The endpoint as saved, with its delivery counts."""
        return self.get_queryset().get(pk=endpoint.pk)


class WebhookListView(EndpointView):
    required_permissions = {"GET": (VIEW_ENDPOINT,), "POST": (ADD_ENDPOINT,), "*": (VIEW_ENDPOINT,)}
    filterset_class = WebhookEndpointFilter
    serializer_class = WebhookEndpointOutput

    @extend_schema(
        operation_id="manage_webhook_list",
        tags=TAGS,
        responses={200: WebhookEndpointOutput(many=True), **problems(400, 401, 403)},
        summary="Webhook endpoints of the programs you manage",
        description="By program, then id, with their waiting and dead deliveries. Filter by program slug or "
        "active. The signing secret is not shown (`secret_hint`). " + requires(VIEW_ENDPOINT),
    )
    def get(self, request: Request) -> Response:
        return self.list_response(WebhookEndpointOutput)

    @extend_schema(
        operation_id="manage_webhook_create",
        tags=TAGS,
        request=WebhookEndpointCreateInput,
        responses={201: WebhookEndpointSecretOutput, **problems(400, 401, 403, 409, 415, 422)},
        summary="Add a webhook endpoint",
        description="The endpoint receives the program's events from now on (those of its `event_types`, or "
        "every type when empty), signed with the `secret` of this answer: the only answer that shows it. "
        + REFUSALS
        + requires(ADD_ENDPOINT),
    )
    def post(self, request: Request) -> Response:
        data = parse(WebhookEndpointCreateInput, request.data, user=request.user)
        endpoint = webhook_endpoint_save(**data)
        return Response(WebhookEndpointSecretOutput(self.reread(endpoint)).data, status=201)


class WebhookDetailView(EndpointView):
    required_permissions = {
        "GET": (VIEW_ENDPOINT,),
        "PATCH": (CHANGE_ENDPOINT,),
        "DELETE": (DELETE_ENDPOINT,),
        "*": (VIEW_ENDPOINT,),
    }

    @extend_schema(
        operation_id="manage_webhook_detail",
        parameters=[WEBHOOK_ID],
        tags=TAGS,
        responses={200: WebhookEndpointOutput, **problems(401, 403, 404)},
        summary="A webhook endpoint",
        description=requires(VIEW_ENDPOINT),
    )
    def get(self, request: Request, webhook_id: int) -> Response:
        return Response(WebhookEndpointOutput(self.get_object()).data)

    @extend_schema(
        operation_id="manage_webhook_update",
        parameters=[WEBHOOK_ID],
        tags=TAGS,
        request=WebhookEndpointInput,
        responses={200: WebhookEndpointOutput, **problems(400, 401, 403, 404, 409, 415, 422)},
        summary="Change a webhook endpoint",
        description="Only the fields sent change (`event_types` replaces the list); the program and the secret "
        "cannot. The URL is checked again. " + REFUSALS + requires(CHANGE_ENDPOINT),
    )
    def patch(self, request: Request, webhook_id: int) -> Response:
        endpoint = self.get_object()
        serializer = WebhookEndpointInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        current = {name: getattr(endpoint, name) for name in ("url", "description", "event_types", "active")}
        webhook_endpoint_save(program=endpoint.program, endpoint=endpoint, **{**current, **serializer.validated_data})
        return Response(WebhookEndpointOutput(self.reread(endpoint)).data)

    @extend_schema(
        operation_id="manage_webhook_delete",
        parameters=[WEBHOOK_ID],
        tags=TAGS,
        request=None,
        responses={204: None, **problems(401, 403, 404, 409)},
        summary="Delete a webhook endpoint and its deliveries",
        description="Its deliveries and their attempts go with it; the events stay in the outbox. To stop "
        "deliveries for a while instead, PATCH `active: false`. " + requires(DELETE_ENDPOINT),
    )
    def delete(self, request: Request, webhook_id: int) -> Response:
        endpoint = self.get_object()
        webhook_endpoint_delete(endpoint=endpoint)
        return Response(status=204)


class WebhookRotateSecretView(EndpointView):
    required_permissions = {"POST": (CHANGE_ENDPOINT,), "*": (CHANGE_ENDPOINT,)}

    @extend_schema(
        operation_id="manage_webhook_rotate_secret",
        parameters=[WEBHOOK_ID],
        tags=TAGS,
        request=WebhookActionInput,
        responses={200: WebhookEndpointSecretOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Give a webhook endpoint a new signing secret",
        description="Every delivery from now on is signed with the new `secret` of this answer (the only one that "
        "shows it): give it to the receiver at once. " + requires(CHANGE_ENDPOINT),
    )
    def post(self, request: Request, webhook_id: int) -> Response:
        endpoint = self.get_object()
        parse(WebhookActionInput, request.data)
        endpoint = webhook_secret_rotate(endpoint=endpoint)
        return Response(WebhookEndpointSecretOutput(self.reread(endpoint)).data)


class WebhookReplayFailedView(EndpointView):
    required_permissions = {"POST": (REPLAY_DELIVERY,), "*": (REPLAY_DELIVERY,)}

    @extend_schema(
        operation_id="manage_webhook_replay_failed",
        parameters=[WEBHOOK_ID],
        tags=TAGS,
        request=WebhookActionInput,
        responses={200: WebhookReplayOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Send an endpoint's failed deliveries again",
        description="Every dead delivery, and every pending one that has failed before, is due at once with every "
        "retry ahead of it; the receiver gets the same event ids (webhook-id) again. An inactive endpoint's "
        "deliveries wait until it is active. " + requires(REPLAY_DELIVERY),
    )
    def post(self, request: Request, webhook_id: int) -> Response:
        endpoint = self.get_object()
        parse(WebhookActionInput, request.data)
        return Response(WebhookReplayOutput({"replayed": webhook_failed_replay(endpoint=endpoint)}).data)


# --- Deliveries -----------------------------------------------------------------------------------


class DeliveryView(ManageAPIView):
    queryset = WebhookDelivery.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self) -> QuerySet:
        endpoint = WebhookEndpoint.objects.filter(program__in=self.programs(), pk=self.kwargs["webhook_id"]).first()
        if endpoint is None:
            raise Http404
        return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event__program").order_by("-id")

    def get_delivery(self) -> WebhookDelivery:
        return self.get_row("delivery_id", Http404)


class WebhookDeliveryListView(DeliveryView):
    required_permissions = {"GET": (VIEW_DELIVERY,), "*": (VIEW_DELIVERY,)}
    filterset_class = WebhookDeliveryFilter
    serializer_class = WebhookDeliveryOutput

    @extend_schema(
        operation_id="manage_webhook_delivery_list",
        parameters=[WEBHOOK_ID],
        tags=TAGS,
        responses={200: WebhookDeliveryOutput(many=True), **problems(400, 401, 403, 404)},
        summary="An endpoint's deliveries, newest first",
        description="One per event sent to the endpoint, with its attempts, the last answer and the next attempt. "
        "Filter by status (pending, succeeded, dead) or event type. " + requires(VIEW_DELIVERY),
    )
    def get(self, request: Request, webhook_id: int) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WebhookDeliveryOutput(page, many=True).data)


class WebhookDeliveryDetailView(DeliveryView):
    required_permissions = {"GET": (VIEW_DELIVERY,), "*": (VIEW_DELIVERY,)}

    @extend_schema(
        operation_id="manage_webhook_delivery_detail",
        parameters=[WEBHOOK_ID, DELIVERY_ID],
        tags=TAGS,
        responses={200: WebhookDeliveryDetailOutput, **problems(401, 403, 404)},
        summary="A delivery with its attempt log and body",
        description=requires(VIEW_DELIVERY),
    )
    def get(self, request: Request, webhook_id: int, delivery_id: int) -> Response:
        delivery = self.get_delivery()
        return Response(WebhookDeliveryDetailOutput(delivery).data)


class WebhookDeliveryReplayView(DeliveryView):
    required_permissions = {"POST": (REPLAY_DELIVERY,), "*": (REPLAY_DELIVERY,)}

    @extend_schema(
        operation_id="manage_webhook_delivery_replay",
        parameters=[WEBHOOK_ID, DELIVERY_ID],
        tags=TAGS,
        request=WebhookActionInput,
        responses={200: WebhookReplayOutput, **problems(400, 401, 403, 404, 409, 415)},
        summary="Send a delivery again",
        description="Delivered, dead or pending: it is due at once with every retry ahead of it, with the same "
        "event id (webhook-id) for the receiver to recognise. " + requires(REPLAY_DELIVERY),
    )
    def post(self, request: Request, webhook_id: int, delivery_id: int) -> Response:
        delivery = self.get_delivery()
        parse(WebhookActionInput, request.data)
        replayed = webhook_deliveries_replay(deliveries=WebhookDelivery.objects.filter(pk=delivery.pk))
        return Response(WebhookReplayOutput({"replayed": replayed}).data)


# Mounted under /api/manage/v1/webhooks/ by config.urls.
