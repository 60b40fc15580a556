"""Manager endpoints of webhooks, included by config.urls under /api/manage/v1/."""

from django.urls import path

from events.apis import manage

manage_patterns = [
    path("webhooks/", manage.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:webhook_id>/", manage.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:webhook_id>/rotate-secret/",
        manage.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:webhook_id>/replay-failed/",
        manage.WebhookReplayFailedView.as_view(),
        name="webhook-replay-failed",
    ),
    path(
        "webhooks/<int:webhook_id>/deliveries/", manage.WebhookDeliveryListView.as_view(), name="webhook-delivery-list"
    ),
    path(
        "webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/",
        manage.WebhookDeliveryDetailView.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay/",
        manage.WebhookDeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
]
