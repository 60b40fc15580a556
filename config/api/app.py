"""The member app surface's base class: an access token of a member's login, scoped to that member."""

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from config.api.idempotency import IdempotentMixin
from config.api.pagination import StandardPagination
from config.api.pos import ProgramIsActive
from config.api.throttling import ClientIpMixin
from members.models import Member, MemberStatus, Program
from members.tokens import TokenExpired, access_token_authenticate


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
    pagination_class: type[BasePagination] | None = StandardPagination

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
