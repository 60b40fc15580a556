"""What every API endpoint shares: the base classes of the three surfaces, Idempotency-Key handling,
pagination and input parsing (errors leave as problem documents: `config.problems`; the OpenAPI schema
that describes all of it: `config.openapi`).

A view picks its surface by subclassing `PosAPIView`, `ManageAPIView` (or,
later, the member app's base); authentication, permissions, throttling,
tenant scoping and idempotency then come with it and cannot be forgotten.
"""

import hashlib
import json
import logging
import re
from contextlib import ExitStack
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, TokenAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle, UserRateThrottle

from config.observability import client_ip
from members.exceptions import (
    IdempotencyKeyInvalid,
    IdempotentReplay,
    ProgramInactive,
    ProgramNotFound,
    StoreNotAllowed,
)
from members.ids import MAX_ID, whole_number
from members.models import ApiKey, IdempotencyRecord, Member, MemberStatus, Program
from members.services import IdempotencyClaim, api_key_authenticate, idempotent_transaction
from members.tokens import TokenExpired, access_token_authenticate

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# 1 to 255 ASCII characters, visible or inner spaces (servers strip a header's outer spaces). Not other text:
# a header arrives as bytes that WSGI reads as Latin-1, so a UTF-8 key would reach the server mangled.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]{0,253}[!-~])?$"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --- Idempotency ---------------------------------------------------------------


def _request_fingerprint(request: Request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        body = request.body.decode(errors="replace")
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


class IdempotentMixin:
    """Same key and body: the first 2xx answer is replayed with `Idempotent-Replayed: true`.
    Same key, other body: 422 `idempotency_key_reused`. A failed request releases its key,
    so the client can correct and retry.

    A write with a key runs in one transaction with the key's record (`idempotent_transaction`):
    it opens in `initial()`, once the request is authenticated, and ends in `dispatch()`, after
    `finalize_response()` has handed it the answer. A simultaneous duplicate waits for the
    first request to end and then replays its answer."""

    _idempotency_claim: IdempotencyClaim | None = None
    _idempotency_exit: ExitStack

    def idempotency_scope(self, request: Request) -> str:
        raise NotImplementedError

    @property
    def idempotency_record(self) -> IdempotencyRecord | None:
        return self._idempotency_claim.record if self._idempotency_claim else None

    @property
    def idempotency_key(self) -> str | None:
        return self.idempotency_record.key if self.idempotency_record else None

    def ledger_key(self, request: Request) -> str | None:
        """The key handed to ledger services, namespaced by who sent it."""
        key = self.idempotency_key
        return f"{self.idempotency_scope(request)}:{key}" if key else None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Leaving the stack ends the key's transaction, if initial() opened one: commit or roll back.
        with ExitStack() as self._idempotency_exit:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method not in WRITE_METHODS or key is None or not self._handles(request.method):
            return  # a method the view does not have answers 405, whatever its key
        if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise IdempotencyKeyInvalid()
        claimed = idempotent_transaction(
            scope=self.idempotency_scope(request), key=key, fingerprint=_request_fingerprint(request)
        )
        self._idempotency_claim = self._idempotency_exit.enter_context(claimed)

    def _handles(self, method: str) -> bool:
        return method.lower() in self.http_method_names and hasattr(self, method.lower())  # type: ignore[attr-defined]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, IdempotentReplay):
            response = Response(exc.record.response_body, status=exc.record.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if self._idempotency_claim is not None:
            self._idempotency_claim.answer(status=response.status_code, body=response.data)
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


# --- Pagination ----------------------------------------------------------------


def _positive_int_param(request: Request, name: str, maximum: int | None = None) -> int | None:
    """A query parameter that must be a whole number from 1 (to `maximum`), or None when absent:
    anything else (0, -1, "null", "", too large) is a 400 validation_error, never silently the default."""
    if name not in request.query_params:
        return None
    number = whole_number(request.query_params[name], minimum=1, **({"maximum": maximum} if maximum else {}))
    if number is None:
        bound = f" up to {maximum}" if maximum else ""
        raise exceptions.ValidationError({name: [f"Give a whole number from 1{bound}."]})
    return number


def _bounded_parameters(parameters: list[dict[str, Any]], bounds: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    for parameter in parameters:
        parameter["schema"] = {**parameter.get("schema", {}), **bounds.get(parameter["name"], {})}
    return parameters


class StandardPagination(PageNumberPagination):
    """`page` from 1 and `page_size` from 1 to 500: 400 validation_error outside; a page past the last: 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        return _positive_int_param(request, self.page_size_query_param, self.max_page_size) or self.page_size

    def get_page_number(self, request: Request, paginator: Any) -> int:
        return _positive_int_param(request, self.page_query_param) or 1

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {
            self.page_query_param: {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            self.page_size_query_param: {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
        }
        return _bounded_parameters(super().get_schema_operation_parameters(view), bounds)


class LedgerCursorPagination(CursorPagination):
    """`page_size` from 1 to 200 (else 400 validation_error) and a `cursor` from `next`/`previous`: one that
    is not (an opaque token the schema cannot describe) names no page, 404 not_found as a page past the last."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-occurred_at", "-id")

    def get_page_size(self, request: Request) -> int:
        return _positive_int_param(request, self.page_size_query_param, self.max_page_size) or self.page_size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {
            # DRF's cursors are URL-safe base64 of a short query string.
            self.cursor_query_param: {"type": "string", "maxLength": 200, "pattern": "^[A-Za-z0-9_=-]+$"},
            self.page_size_query_param: {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
        }
        return _bounded_parameters(super().get_schema_operation_parameters(view), bounds)


# --- Integration (POS) surface ---------------------------------------------------


class ApiKeyPrincipal:
    """Who a till is: the program (and optionally the store) of its API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.program: Program = api_key.program
        self.pk = None

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        api_key = api_key_authenticate(key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid or was revoked.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "config.api.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, a key of one program.",
        }


class ClientIpMixin:
    """Throttles that key on an address use the one trusted client address (`client_ip`), never DRF's
    default, which takes the whole client-written X-Forwarded-For when NUM_PROXIES is unset."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request)


class AccessTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <token>` of the member app and the manager API, checked against the stored
    digests (`members.tokens`). Unknown, expired and inactive users' tokens: 401 authentication_failed."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        try:
            token = access_token_authenticate(key)
        except TokenExpired:
            raise exceptions.AuthenticationFailed("The token has expired; sign in again.") from None
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token


class ApiKeyThrottle(ClientIpMixin, SimpleRateThrottle):
    scope = "pos"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        return self.cache_format % {"scope": self.scope, "ident": api_key.pk} if api_key else None


class FailureThrottle(ClientIpMixin, BaseThrottle):
    """Counts failures only (unknown voucher codes, wrong passwords) under the cache keys a subclass
    names; once any key reaches `limit` within `window` seconds, requests under it get 429."""

    limit = 10
    window = 60

    def cache_keys(self, request: Request) -> list[str]:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        counts = cache.get_many(self.cache_keys(request))
        return all(count < self.limit for count in counts.values())

    def wait(self) -> float:
        return float(self.window)

    def record_failure(self, request: Request) -> None:
        for key in self.cache_keys(request):
            # add() starts the window on the first failure; incr() never extends it.
            if not cache.add(key, 1, timeout=self.window):
                try:
                    cache.incr(key)
                except ValueError:  # expired between add() and incr()
                    cache.add(key, 1, timeout=self.window)


class ProgramIsActive(BasePermission):
    """A deactivated program's keys and members are refused: 403 `program_inactive`, on every endpoint
    of the integration and member app surfaces. The view names the program (`view.program`)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not view.program.is_active:
            raise ProgramInactive()
        return True


def key_store(api_key: ApiKey, requested: Any) -> str:
    """The store a request of this key is for: the one it names, or the key's own when it names none.
    A key limited to a store may name only that store: else 403 `store_not_allowed`."""
    requested = "" if requested is None else str(requested).strip()  # as the serializers trim it
    if api_key.store and requested not in ("", api_key.store):
        raise StoreNotAllowed(f"This API key is limited to store {api_key.store}.", store=api_key.store)
    return requested or api_key.store


class KeyStoreAllowed(BasePermission):
    """A write that names a `store` other than its key's is refused before anything is read or written."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in WRITE_METHODS and isinstance(request.data, dict) and "store" in request.data:
            key_store(request.auth, request.data["store"])
        return True


class PosAPIView(IdempotentMixin, GenericAPIView):
    """Base of the integration API: one API key, one program, nothing else visible."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated, ProgramIsActive, KeyStoreAllowed]
    throttle_classes = [ApiKeyThrottle]

    @property
    def program(self) -> Program:
        return self.request.user.program

    def store(self, requested: Any) -> str:
        """The store of this request: see `key_store`."""
        return key_store(self.request.auth, requested)

    def idempotency_scope(self, request: Request) -> str:
        return f"pos:{request.user.program.pk}"


# --- Manager surface -----------------------------------------------------------------


def managed_programs(user: Any):
    """The programs a staff user may see: all for superusers, else those assigned."""
    if user.is_superuser:
        return Program.objects.all()
    return Program.objects.filter(managers=user)


def required_permissions(view: Any, method: str) -> tuple[str, ...] | None:
    """What a method of a manager view needs: its own entry, else "*", else nothing declared (None: refused).
    HEAD and OPTIONS read as much as GET and need what GET needs; on a view without GET, OPTIONS needs
    every permission the view declares (what its writes need), never nothing."""
    declared = view.required_permissions
    if method in ("HEAD", "OPTIONS"):
        perms = declared.get("GET", declared.get("*"))
        if perms is None and method == "OPTIONS" and declared:
            perms = tuple(sorted({perm for each in declared.values() for perm in each}))
        return perms
    return declared.get(method, declared.get("*"))


class IsProgramStaff(BasePermission):
    """Staff with the Django model permissions the view declares in `required_permissions`. A method the
    view answers but declares nothing for is refused: a forgotten declaration closes the endpoint, never
    opens it."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_staff and user.is_active):
            return False
        method = request.method or "GET"
        if not hasattr(view, method.lower()):
            return True  # a method the view does not answer: DRF answers 405 and nothing runs
        perms = required_permissions(view, method)
        return perms is not None and user.has_perms(perms)


class ManageUserThrottle(ClientIpMixin, UserRateThrottle):
    scope = "manage"


class ManageAPIView(IdempotentMixin, GenericAPIView):
    """Base of the manager API: staff, Django permissions, only their programs."""

    # Token first, so a request without credentials gets 401 with a WWW-Authenticate challenge.
    authentication_classes = [AccessTokenAuthentication, SessionAuthentication]
    permission_classes = [IsProgramStaff]
    throttle_classes = [ManageUserThrottle]
    pagination_class = StandardPagination
    required_permissions: dict[str, tuple[str, ...]] = {}

    def programs(self):
        return managed_programs(self.request.user)

    def managed_program(self, slug: str) -> Program:
        """The program with this slug if the user manages it, else ProgramNotFound (404, whether it exists)."""
        program = self.programs().filter(slug=slug).first()
        if program is None:
            raise ProgramNotFound()
        return program

    def idempotency_scope(self, request: Request) -> str:
        return f"manage:{request.user.pk}"


# --- Member app surface ---------------------------------------------------------------


def app_member_of(user: Any) -> Member | None:
    """The member linked to an app user, with the program, if the user may use the app:
    an active user, a member not closed (suspended members may read). A deactivated program's
    members are refused by `ProgramIsActive`, as its API keys are."""
    if not (user and user.is_authenticated and user.is_active and user.pk):
        return None
    return Member.objects.select_related("program").filter(user_id=user.pk).exclude(status=MemberStatus.CLOSED).first()


class IsAppMember(BasePermission):
    message = "This token does not belong to a member of the program."

    def has_permission(self, request: Request, view: Any) -> bool:
        return view.member is not None


class AppMemberThrottle(ClientIpMixin, SimpleRateThrottle):
    scope = "app"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        member = view.member
        return self.cache_format % {"scope": self.scope, "ident": member.pk} if member else None


class AppAPIView(IdempotentMixin, GenericAPIView):
    """Base of the member app API: the member comes from the token, never from the URL."""

    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [IsAppMember, ProgramIsActive]
    throttle_classes = [AppMemberThrottle]
    pagination_class = StandardPagination

    @property
    def member(self) -> Member | None:
        # Read once per request; the permission, the throttle and the view share it.
        if not hasattr(self, "_member"):
            self._member = app_member_of(self.request.user)
        return self._member

    @property
    def program(self) -> Program:
        assert self.member is not None  # IsAppMember let the request through
        return self.member.program

    def idempotency_scope(self, request: Request) -> str:
        assert self.member is not None
        return f"app:{self.member.pk}"


def parse(serializer_class: type[serializers.Serializer], data: Any, **context: Any) -> dict[str, Any]:
    """Validated input of a request, or a validation_error problem."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
