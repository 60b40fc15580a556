"""Ledger errors with stable codes."""

from members.exceptions import DomainError


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    title = "Not enough available points"


class InvalidAmount(DomainError):
    code = "invalid_amount"
    status = 400
    title = "The amount of points is not valid"


class AmountTooLarge(InvalidAmount):
    """Past a documented maximum (docs/api.md, "Limits"): points per ledger entry, a purchase's total.
    `field` names what is too large, `maximum` the largest value accepted."""

    code = "amount_too_large"
    status = 422
    title = "The amount is larger than the largest one accepted"


class TransferNotAllowed(DomainError):
    code = "transfer_not_allowed"
    title = "Points can only move between two different members of one program"


class CurrencyMismatch(DomainError):
    code = "currency_mismatch"
    title = "The purchase is not in the program's currency"


class TotalMismatch(DomainError):
    code = "total_mismatch"
    title = "The total does not match the sum of the lines"


class OccurredInFuture(DomainError):
    code = "occurred_at_in_future"
    title = "The time given is in the future"


class ReturnBeforePurchase(DomainError):
    code = "return_before_purchase"
    title = "The return is dated before its purchase"


class PurchaseConflict(DomainError):
    code = "purchase_conflict"
    status = 409
    title = "A different purchase was already recorded with this external id"


class PurchaseNotFound(DomainError):
    code = "purchase_not_found"
    status = 404
    title = "No purchase of this program has that external id"


class ReturnConflict(DomainError):
    code = "return_conflict"
    status = 409
    title = "A different return was already recorded with this external id"


class ReturnExceedsPurchase(DomainError):
    code = "return_exceeds_purchase"
    title = "The return is larger than what is left of the purchase"


class ReturnLineNotInPurchase(DomainError):
    code = "return_line_not_in_purchase"
    title = "A returned line does not match any line of the purchase"


class EventConflict(DomainError):
    code = "event_conflict"
    status = 409
    title = "A different event was already recorded with this external id"


class EventReserved(DomainError):
    code = "event_reserved"
    status = 400
    title = "This event is posted by the program itself"


class TierNotInProgram(DomainError):
    code = "tier_not_in_program"
    status = 400
    title = "The tier belongs to another program"


class InvalidPin(DomainError):
    code = "invalid_pin"
    status = 400
    title = "The tier pin is not valid"
