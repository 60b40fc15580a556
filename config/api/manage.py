"""The manager surface's base classes: a signed-in staff user, Django permissions per method, rows of the
programs the user manages (`members.access`)."""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from config.api.app import AccessTokenAuthentication
from config.api.idempotency import IdempotentMixin
from config.api.pagination import StandardPagination
from config.api.throttling import ClientIpMixin
from members.access import access_program_by_slug, managed_programs
from members.ids import row_id
from members.models import Program

# --- Manager surface -----------------------------------------------------------------


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
        return access_program_by_slug(self.request.user, slug)

    def get_row(self, url_kwarg: str, not_found: type[Exception]) -> Any:
        """The row of `get_queryset()` whose id is the URL's `url_kwarg`, else `not_found` (for an id that cannot
        name a row too: `members.ids.row_id`)."""
        row = self.get_queryset().filter(pk=row_id(self.kwargs[url_kwarg], not_found)).first()
        if row is None:
            raise not_found()
        return row

    def idempotency_scope(self, request: Request) -> str:
        return f"manage:{request.user.pk}"


def requires(*permissions: str) -> str:
    return "Requires the Django permission " + " and ".join(f"`{name}`" for name in permissions) + "."


def field_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A model's validation errors by API field (`__all__` becomes `non_field_errors`)."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": list(exc.messages)}
    return {
        ("non_field_errors" if field == NON_FIELD_ERRORS else field): list(messages)
        for field, messages in exc.message_dict.items()
    }


class ProgramRowsView(ManageAPIView):
    """Rows of the programs the user manages; `get_object()` answers 404 for any other."""

    model: Any = None
    lookup_field = "pk"

    def get_queryset(self) -> QuerySet:
        return self.model.objects.filter(program__in=self.programs()).select_related("program")

    def list_response(self, output: type[serializers.Serializer]) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(output(page, many=True).data)
