"""Whole numbers written by clients (ids in URLs, page numbers, search terms): parsed in one place."""

MAX_ID = 2**63 - 1  # the largest bigint: ids and counters beyond it cannot name a row


def whole_number(value: object, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """`value` as a whole number from `minimum` to `maximum` when it is written in ASCII digits, else None
    ('1.5', '²', '-1', 10**30). The length is checked before converting: int() of thousands of digits is
    slow, and past 4,300 digits Python refuses it with a ValueError (a 500)."""
    text = str(value)
    if not (0 < len(text) <= len(str(maximum)) and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if minimum <= number <= maximum else None


def row_id(value: object, not_found: type[Exception]) -> int:
    """A row's id as a client wrote it (a URL, a form, a query): a whole number from 1 to MAX_ID, else
    `not_found` is raised. What cannot name a row ('1.5', '²', '0', 10**30) names none: a 404, never a 500."""
    pk = whole_number(value, minimum=1)
    if pk is None:
        raise not_found()
    return pk
