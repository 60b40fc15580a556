"""RFC 9457 problem documents: how every error leaves the API (DESIGN.md section 10).

One exception handler (DRF) and one middleware (everything else) turn domain errors, validation errors,
unavailable databases and crashes into `application/problem+json` with a stable `code`; `problems()` documents
them in the OpenAPI schema.
"""

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
from drf_spectacular.utils import OpenApiResponse, extend_schema_field, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from members.exceptions import DomainError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
# A database restart or failover takes seconds; clients retry (with the same Idempotency-Key) after this.
DATABASE_RETRY_AFTER_SECONDS = 2


# --- Problem documents -------------------------------------------------------


def problem(status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:loyalty:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
        **extra,
    }


def problem_response(status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> Response:
    return Response(problem(status, code, title, detail, **extra), status=status, content_type=PROBLEM_CONTENT_TYPE)


def database_unavailable(exc: BaseException) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The answer (body, headers) when the database is down or restarting, whether the error came
    from a view, authentication or a middleware: 503 `database_unavailable` with Retry-After,
    never a 500. Nothing was written: the request's transaction died with its connection.

    The broken connection is not reused: Django closes it when the request ends (it saw the error
    and `is_usable()` fails), and CONN_HEALTH_CHECKS makes the next request replace a persistent
    connection that the server dropped meanwhile, so requests succeed again as soon as it is back."""
    if not isinstance(exc, OperationalError | InterfaceError) or not _connection_lost(exc):
        return None
    logger.warning("database unavailable, answered 503: %s: %s", type(exc).__name__, str(exc).strip())
    body = problem(503, "database_unavailable", "The database is unavailable", "Retry the request in a moment.")
    return body, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}


# SQLSTATE classes of a database that cannot be reached or is going away: connection exceptions (08), operator
# intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), too many connections
# (53300). An OperationalError without SQLSTATE never reached the server. Deadlocks and serialization failures
# are conflicts (409, retry); anything else (a cancelled query, a full disk) stays a logged 500.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
CONFLICT_SQLSTATES = {"40001", "40P01"}


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None) if isinstance(exc, DatabaseError) else None


def _connection_lost(exc: BaseException) -> bool:
    sqlstate = _sqlstate(exc)
    return sqlstate is None or sqlstate.startswith(UNAVAILABLE_SQLSTATES)


def _problem_json(body: dict[str, Any], headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE, headers=headers)


INTERNAL_ERROR = problem(500, "internal_error", "Internal error", "The error was logged; retry later.")


def _field_errors(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {str(field): _messages(value) for field, value in detail.items()}
    return {"non_field_errors": _messages(detail)}


def _messages(value: Any) -> Any:
    if isinstance(value, dict):
        return _field_errors(value)
    if isinstance(value, list):
        if any(isinstance(item, dict | list) for item in value):
            return [_messages(item) for item in value]
        return [str(item) for item in value]
    return [str(value)]


_DRF_CODES: list[tuple[type[exceptions.APIException], str, str]] = [
    (exceptions.ParseError, "malformed_request", "The request body could not be parsed"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type", "Send the body as application/json"),
    (exceptions.NotAuthenticated, "not_authenticated", "Authentication credentials were not provided"),
    (exceptions.AuthenticationFailed, "authentication_failed", "The credentials are not valid"),
    (exceptions.PermissionDenied, "permission_denied", "You may not do this"),
    (exceptions.NotFound, "not_found", "Not found"),
    (exceptions.MethodNotAllowed, "method_not_allowed", "Method not allowed"),
    (exceptions.NotAcceptable, "not_acceptable", "Cannot answer in the requested format"),
    (exceptions.Throttled, "throttled", "Too many requests"),
]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every error becomes a problem document with a stable code."""
    if isinstance(exc, DomainError):
        return problem_response(exc.status, exc.code, exc.title, exc.detail, **exc.extra)
    if isinstance(exc, RequestDataTooBig):
        return Response(body_too_large_problem(), status=413, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(
            400,
            "validation_error",
            "The request is not valid",
            "One or more fields are not valid.",
            errors=_field_errors(exc.detail),
        )
    if isinstance(exc, exceptions.APIException):
        return _api_exception_response(exc, context)
    if isinstance(exc, IntegrityError) or _sqlstate(exc) in CONFLICT_SQLSTATES:
        logger.warning("integrity error answered with 409: %s", exc)
        return problem_response(
            409,
            "conflict",
            "The request conflicts with the current state",
            "A simultaneous request changed the same data; retry it.",
        )
    if unavailable := database_unavailable(exc):
        body, headers = unavailable
        return Response(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE, headers=headers)
    return None


def _api_exception_response(exc: exceptions.APIException, context: dict[str, Any]) -> Response:
    code, title = next(((c, t) for cls, c, t in _DRF_CODES if isinstance(exc, cls)), ("error", "Request failed"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    response = problem_response(exc.status_code, code, title, str(detail))
    wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]  # unstubbed
    if wait is not None:
        response["Retry-After"] = str(int(wait) + 1)
    request = context.get("request")
    view = context.get("view")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and view and request:
        if header := view.get_authenticate_header(request):
            response["WWW-Authenticate"] = header
    return response


def body_too_large_problem() -> dict[str, Any]:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return problem(413, "request_too_large", "The request body is too large", f"Send at most {limit} bytes.")


def body_too_large() -> JsonResponse:
    return _problem_json(body_too_large_problem())


class RequestSizeMiddleware:
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE (env MAX_REQUEST_BODY_BYTES) is refused with 413
    request_too_large before anything reads it; one without Content-Length fails when read (see below).
    A query string with a NUL character (`%00`) is a 400 validation_error."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if request.path.startswith("/api/") and limit is not None and length > limit:
            return body_too_large()
        if request.path.startswith("/api/") and "\x00" in request.META.get("QUERY_STRING", "").replace("%00", "\x00"):
            # PostgreSQL cannot hold a NUL: a query parameter with one would fail in the database, a 500.
            body = problem(400, "validation_error", "The request is not valid", "Query parameters may not hold NUL.")
            return _problem_json({**body, "errors": {"non_field_errors": ["Null characters are not allowed."]}})
        return self.get_response(request)


class ProblemJsonMiddleware:
    """Unhandled errors under /api/ still answer with a problem document, never an HTML page."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if unavailable := database_unavailable(exc):
            return _problem_json(*unavailable)
        if isinstance(exc, RequestDataTooBig):
            return body_too_large()
        if isinstance(exc, DatabaseError) and (handled := problem_exception_handler(exc, {})):
            return _problem_json(handled.data)
        logger.exception("unhandled error on %s", request.path)
        return _problem_json(INTERNAL_ERROR)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler, for errors raised where no view handles them (a middleware, a
    non-API page): a database outage is still a 503, and under /api/ a 500 is a problem document."""
    exc = sys.exc_info()[1]  # Django calls its 500 handler while handling the exception
    if exc is not None and (unavailable := database_unavailable(exc)):
        return _problem_json(*unavailable)
    if request.path.startswith("/api/"):
        return _problem_json(INTERNAL_ERROR)
    return django_server_error(request)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: problem+json under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        body = problem(404, "not_found", "Not found", f"No endpoint at {request.path}.")
        return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)
    return page_not_found(request, exception)


# What `_field_errors` builds, as the schema's component FieldErrors (recursive): messages, or a nested
# object's (list's) errors keyed by field (index), e.g. {"lines": {"0": {"amount": ["..."]}}}.
FIELD_ERRORS_COMPONENT = {
    "anyOf": [
        {"type": "array", "items": {"type": "string"}},
        {"type": "array", "items": {"$ref": "#/components/schemas/FieldErrors"}},
        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/FieldErrors"}},
    ]
}


@extend_schema_field({"type": "object", "additionalProperties": {"$ref": "#/components/schemas/FieldErrors"}})
class FieldErrorsField(serializers.DictField):
    pass


@extend_schema_serializer(component_name="Problem")
class ProblemOutput(serializers.Serializer):
    """RFC 9457 problem details, as every error is answered."""

    type = serializers.CharField(help_text="urn:loyalty:problem:<code>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    # A declared field: the metaclass moves it into _declared_fields, so Serializer.errors is not shadowed.
    errors = FieldErrorsField(  # type: ignore[assignment]
        required=False,
        help_text="Per-field messages, with code validation_error: a list of strings per field, or for a nested "
        "object or list the same again, keyed by field or by index.",
    )


def problems(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """OpenAPI responses for the listed error statuses."""
    descriptions = {
        400: "validation_error, unknown_field or malformed_request",
        401: "not_authenticated or authentication_failed",
        403: "permission_denied",
        404: "not_found or member_not_found",
        409: "conflict, idempotency_in_flight",
        413: "request_too_large",
        415: "unsupported_media_type",
        422: "a domain error such as insufficient_points or idempotency_key_reused",
        429: "throttled",
    }
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemOutput, description=descriptions.get(status, ""))
        for status in statuses
    }
