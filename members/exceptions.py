"""Domain errors. Each has a stable `code` that API clients can rely on.

The base class lives in the bottom app so that every app's errors share it;
`config.api.problems` turns any of them into an RFC 9457 problem document.
"""

from typing import Any


class DomainError(Exception):
    code = "domain_error"
    status = 422
    title = "The request cannot be carried out"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class NotFound(DomainError):
    status = 404


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "No such member in this program"


class ProgramNotFound(NotFound):
    code = "program_not_found"
    title = "No such program"


class ProgramInactive(DomainError):
    code = "program_inactive"
    status = 403
    title = "The program is deactivated"


class StoreNotAllowed(DomainError):
    code = "store_not_allowed"
    status = 403
    title = "This API key is limited to another store"


class MemberAlreadyExists(DomainError):
    code = "member_already_exists"
    status = 409
    title = "A member with these details already exists"


class MemberSuspended(DomainError):
    code = "member_suspended"
    title = "The member is suspended"


class MemberClosed(DomainError):
    code = "member_closed"
    title = "The member's account is closed"


class InvalidStatusChange(DomainError):
    code = "invalid_status_change"
    status = 409
    title = "The member cannot move to that status"


class ReferralCodeUnknown(DomainError):
    code = "referral_code_unknown"
    status = 400
    title = "No member of this program has that referral code"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "This idempotency key was already used for a different request"


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    status = 400
    title = "The Idempotency-Key header must be 1 to 255 ASCII characters, visible or inner spaces"


class IdempotencyInFlight(DomainError):
    code = "idempotency_in_flight"
    status = 409
    title = "A request with this idempotency key is still being processed"


class IdempotentReplay(Exception):
    """Not an error: the request was already answered; the stored answer is replayed."""

    def __init__(self, record: Any) -> None:
        self.record = record
