"""Idempotency-Key on every write of the three surfaces: the first 2xx answer is stored with the key and
replayed to copies of the request (docs/api.md, "Retries and Idempotency-Key")."""

import hashlib
import json
import logging
import re
from contextlib import ExitStack
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from members.exceptions import (
    IdempotencyKeyInvalid,
    IdempotentReplay,
)
from members.models import IdempotencyRecord
from members.services.idempotency import IdempotencyClaim, idempotent_transaction

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
    def in_request_transaction(self) -> bool:
        """True when the request runs in its key's transaction, which any error rolls back whole: a service
        it calls needs no savepoint of its own (two statements fewer)."""
        return self._idempotency_claim is not None

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
