"""Member app API: /api/app/v1/. The member always comes from the token, never from the URL."""

from typing import cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.app import AccessTokenAuthentication, AppAPIView
from config.api.filters import FilterBackend
from config.api.input import parse
from config.api.pagination import LedgerCursorPagination
from config.api.problems import problems
from config.api.throttling import FailureThrottle
from loyalty.apis.app_serializers import (
    AppMemberOutput,
    ExportOutput,
    LoginInput,
    LogoutInput,
    LogoutOutput,
    ProfileUpdateInput,
    TokenOutput,
)
from loyalty.apis.filters import EntryFilter
from loyalty.apis.purchase_serializers import TierSummaryOutput
from loyalty.apis.serializers import EntryOutput
from loyalty.models import Entry
from loyalty.selectors import ledger_entries_for_member, member_tier_summary
from members.app_auth import AppLoginFailed, member_app_login, member_app_logout
from members.exports import member_export
from members.identifiers import normalize_card, normalize_email
from members.models import AccessToken
from members.services.members import member_update

TAGS = ["Member app"]

LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW_SECONDS = 60


def repeatable(what: str) -> OpenApiParameter:
    """The Idempotency-Key header of a write that is safe to repeat by nature (nothing is stored for it)."""
    return OpenApiParameter(
        "Idempotency-Key", str, OpenApiParameter.HEADER, required=False, description=f"Accepted; {what}"
    )


class LoginFailureThrottle(FailureThrottle):
    """Refuses sign-ins from an IP address, or for an email or card, with too many recent failures.

    Only failures count (a family behind one router signing in is not throttled);
    both counters are checked, so neither one address trying many accounts nor
    many addresses trying one account gets more than the limit per window.
    """

    limit = LOGIN_FAILURE_LIMIT
    window = LOGIN_FAILURE_WINDOW_SECONDS

    def cache_keys(self, request: Request) -> list[str]:
        keys = [f"app-login:ip:{self.get_ident(request)}"]
        # The account counter keys on the identity the sign-in looks up: the input as LoginInput cleans it
        # (slug trimmed), the email or card normalised as stored. Any other spelling could never sign in.
        login = LoginInput(data=request.data if isinstance(request.data, dict) else {})
        if not login.is_valid():
            return keys
        program = login.validated_data["program"]
        if email := normalize_email(login.validated_data.get("email")):
            keys.append(f"app-login:email:{program}:{email}")
        elif card := normalize_card(login.validated_data.get("card") or ""):
            keys.append(f"app-login:card:{program}:{card}")
        return keys


class LoginView(GenericAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginFailureThrottle]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, AppLoginFailed):
            LoginFailureThrottle().record_failure(self.request)
            response["WWW-Authenticate"] = "Token"
        return response

    @extend_schema(
        operation_id="app_login",
        tags=TAGS,
        request=LoginInput,
        parameters=[repeatable("each sign-in gives a new token; the earlier ones stay valid.")],
        responses={200: TokenOutput, **problems(400, 401, 415, 429)},
        summary="Sign in with email or card and password; get an API token",
        description="Wrong program, identifier or password: 401 invalid_credentials (one answer for all, so "
        "nobody learns who is enrolled). After 10 failures within a minute from one address or for one email "
        "or card: 429 throttled. Send the token as `Authorization: Token <token>`; it lasts until sign-out, "
        "a password change or the end of its lifetime (30 days unless configured otherwise), then 401.",
    )
    def post(self, request: Request) -> Response:
        data = parse(LoginInput, request.data)
        member, token = member_app_login(
            program_slug=data["program"], password=data["password"], email=data.get("email"), card=data.get("card")
        )
        return Response(TokenOutput({"token": token, "member_id": member.pk}).data)


class LogoutView(GenericAPIView):
    """Any valid token may sign out, even a closed member's."""

    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="app_logout",
        tags=TAGS,
        request=LogoutInput,
        parameters=[repeatable("signing out twice is harmless (the second time the token is already gone: 401).")],
        responses={200: LogoutOutput, **problems(400, 401)},
        summary="Sign out: delete the token (on every device of the member)",
    )
    def post(self, request: Request) -> Response:
        # AccessTokenAuthentication and IsAuthenticated: the request's auth is its AccessToken.
        parse(LogoutInput, request.data, signed_with=cast(AccessToken, request.auth).digest)
        member_app_logout(user=request.user)
        return Response(LogoutOutput({"signed_out": True}).data)


class MeView(AppAPIView):
    @extend_schema(
        operation_id="app_me",
        tags=TAGS,
        responses={200: AppMemberOutput, **problems(401, 403, 429)},
        summary="The signed-in member: profile, balances and tier",
    )
    def get(self, request: Request) -> Response:
        return Response(AppMemberOutput(self.member).data)

    @extend_schema(
        operation_id="app_me_update",
        tags=TAGS,
        request=ProfileUpdateInput,
        responses={200: AppMemberOutput, **problems(400, 401, 403, 409, 415, 422, 429)},
        summary="Change the member's name, phone, birth date or consents",
        description="Only the fields sent change. Other fields (email, card, status...) are refused with "
        "400 validation_error. A phone another member of the program uses: 409 member_already_exists.",
    )
    def patch(self, request: Request) -> Response:
        assert self.member is not None  # IsAppMember let the request through
        member = member_update(member=self.member, **parse(ProfileUpdateInput, request.data))
        return Response(AppMemberOutput(member).data)


class MeLedgerView(AppAPIView):
    pagination_class = LedgerCursorPagination
    filter_backends = [FilterBackend]
    filterset_class = EntryFilter
    serializer_class = EntryOutput
    queryset = Entry.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self) -> QuerySet[Entry]:
        assert self.member is not None  # IsAppMember let the request through
        return ledger_entries_for_member(member=self.member)

    @extend_schema(
        operation_id="app_me_ledger",
        tags=TAGS,
        responses={200: EntryOutput(many=True), **problems(400, 401, 403, 429)},
        summary="The member's points history, newest first",
        description="Cursor-paginated. `details` explains each entry: for a purchase the rules that gave the "
        "points (`awards`); each debit lists the lots it consumed (`allocations`).",
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(EntryOutput(page, many=True).data)


class MeTierView(AppAPIView):
    @extend_schema(
        operation_id="app_me_tier",
        tags=TAGS,
        responses={200: TierSummaryOutput, **problems(401, 403, 429)},
        summary="The member's tier: what is missing for the next tier and to keep this one",
    )
    def get(self, request: Request) -> Response:
        assert self.member is not None  # IsAppMember let the request through
        return Response(TierSummaryOutput(member_tier_summary(member=self.member)).data)


class MeExportView(AppAPIView):
    @extend_schema(
        operation_id="app_me_export",
        tags=TAGS,
        responses={200: ExportOutput, **problems(401, 403, 429)},
        summary="GDPR export: all the member's data as JSON",
        description="`member` (personal data), `login` (the app login and which tokens exist), `events` (the "
        "outbox), and one part per app that holds the member's data: `ledger`, `purchases`, `tier_history`, "
        "`analytics` (figures, segment changes, NPS answers), `rewards` (vouchers, holds).",
    )
    def get(self, request: Request) -> Response:
        assert self.member is not None  # IsAppMember let the request through
        response = Response(member_export(member=self.member))
        response["Content-Disposition"] = f'attachment; filename="member-{self.member.pk}-export.json"'
        return response
