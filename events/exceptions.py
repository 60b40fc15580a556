"""Errors of the outbox and webhooks, with a stable `code` (docs/errors.md)."""

from members.exceptions import DomainError


class WebhookEndpointInvalid(DomainError):
    """A webhook endpoint that cannot be saved; `code` names the reason (webhook_url_scheme,
    webhook_target_private, webhook_host_unresolved, webhook_url_invalid, webhook_event_type_unknown)."""

    code = "webhook_endpoint_invalid"
    title = "This webhook endpoint cannot be used"

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail)
        self.code = code
