"""Request ids and one log line per request.

Every request gets an id: the caller's `X-Request-ID` when it is a sane token, else a new
one. It is answered in the `X-Request-ID` header and kept in a context variable that
`RequestIdFilter` adds to every log record, so all lines of one request can be found
together. In a Celery worker the task id plays the same part (`task_prerun`/`task_postrun`).

Kept free of model and DRF imports: `LOGGING` loads this module while Django starts.
"""

import logging
import logging.config
import re
import time
import uuid
from contextvars import ContextVar, Token
from typing import Any

from celery import signals
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
request_logger = logging.getLogger("loyalty.request")


def client_ip(request: HttpRequest) -> str:
    """The client's address: the one function behind every per-IP throttle, the admin lockout and the logs.

    `X-Forwarded-For` is trusted only when `NUM_PROXIES` says how many proxies in front append to it: the
    address the outermost of them saw is then the NUM_PROXIES-th from the right (anything further left
    was written by the client). Without proxies the header is the client's own text: `REMOTE_ADDR` counts.
    """
    remote_addr = request.META.get("REMOTE_ADDR") or ""
    num_proxies = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not num_proxies or not forwarded:
        return remote_addr
    addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
    if not addresses:
        return remote_addr
    return addresses[-min(num_proxies, len(addresses))]


def request_id_from(header: str | None) -> str:
    """The caller's id if it is a plain token of at most 200 characters, else a new one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the request's or the task's, "-" outside both) to every record.

    Django logs 4xx and 5xx answers (logger django.request) after the middleware has returned:
    those records carry the request, which carries its id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request = getattr(record, "request", None)
            record.request_id = request_id_var.get() or getattr(request, "request_id", None) or "-"
        return True


class RequestLogMiddleware:
    """Outermost middleware: sets the request id, answers it, logs the request once it is answered.

    Health probes are logged at DEBUG: a load balancer asks every few seconds."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # An attribute of our own (HttpRequest declares none): RequestIdFilter reads it back.
        request.request_id = request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            level = logging.DEBUG if request.path.startswith("/health/") else logging.INFO
            fields = {
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "client_ip": client_ip(request),
                **_principal_fields(request),
            }
            request_logger.log(
                level, "%s %s %s %.1fms", request.method, request.path, response.status_code, duration_ms, extra=fields
            )
            return response
        finally:
            request_id_var.reset(token)


def _principal_fields(request: HttpRequest) -> dict[str, Any]:
    """Who made the request, when authentication already told: never reads the database for it."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        # Django's lazy session user: reading it now would query the database just for a log line.
        user = None if user._wrapped is empty else user._wrapped  # type: ignore[attr-defined]  # private, unstubbed
    if user is None:
        return {}
    api_key = getattr(user, "api_key", None)
    if api_key is not None:  # a till (config.api.pos.ApiKeyPrincipal)
        return {"program": api_key.program.slug, "api_key": api_key.prefix}
    if getattr(user, "is_authenticated", False) and user.pk is not None:
        return {"user_id": user.pk}
    return {}


# --- Celery -------------------------------------------------------------------------------------

_task_tokens: dict[str, Token] = {}


@signals.task_prerun.connect
def _task_request_id_set(task_id: str, **kwargs: Any) -> None:
    # An eager task (no broker) runs inside the request that sent it and keeps the request's id.
    _task_tokens[task_id] = request_id_var.set(request_id_var.get() or task_id)


@signals.task_postrun.connect
def _task_request_id_reset(task_id: str, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)


@signals.setup_logging.connect
def _celery_logging(**kwargs: Any) -> None:
    """Workers and beat log through settings.LOGGING (JSON, request ids) instead of Celery's own
    format; the level comes from LOG_LEVEL, not from `--loglevel`."""
    logging.config.dictConfig(settings.LOGGING)
