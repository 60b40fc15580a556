"""The two paginations of the APIs: numbered pages for lists, a cursor for a member's ledger."""

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request

from members.ids import MAX_ID, whole_number

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
