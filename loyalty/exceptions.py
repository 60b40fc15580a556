"""Ledger errors with stable codes."""

from members.exceptions import DomainError


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    title = "Not enough available points"


class InvalidAmount(DomainError):
    code = "invalid_amount"
    status = 400
    title = "The amount of points is not valid"


class TransferNotAllowed(DomainError):
    code = "transfer_not_allowed"
    title = "Points can only move between two different members of one program"
