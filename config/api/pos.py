"""The integration (POS) surface's base class: API-key authentication, the key's program and store,
throttling and idempotency scoped to the program."""

from typing import Any, cast

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from config.api.idempotency import WRITE_METHODS, IdempotentMixin
from config.api.throttling import ClientIpMixin
from members.exceptions import (
    ProgramInactive,
    StoreNotAllowed,
)
from members.models import ApiKey, Program
from members.services.api_keys import api_key_authenticate

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
    target_class = "config.api.pos.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, a key of one program.",
        }


class ApiKeyThrottle(ClientIpMixin, SimpleRateThrottle):
    scope = "pos"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        return self.cache_format % {"scope": self.scope, "ident": api_key.pk} if api_key else None


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
            key_store(cast(ApiKey, request.auth), request.data["store"])
        return True


class PosAPIView(IdempotentMixin, GenericAPIView):
    """Base of the integration API: one API key, one program, nothing else visible."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated, ProgramIsActive, KeyStoreAllowed]
    throttle_classes = [ApiKeyThrottle]

    # ApiKeyAuthentication and IsAuthenticated: every request that reaches a view carries an ApiKeyPrincipal
    # as its user and the ApiKey as its auth.
    @property
    def program(self) -> Program:
        return cast(ApiKeyPrincipal, self.request.user).program

    def store(self, requested: Any) -> str:
        """The store of this request: see `key_store`."""
        return key_store(cast(ApiKey, self.request.auth), requested)

    def idempotency_scope(self, request: Request) -> str:
        return f"pos:{cast(ApiKeyPrincipal, request.user).program.pk}"
