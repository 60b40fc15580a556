"""The shape of the `max_digits`/`decimal_places` pair that money fields (model and serializer) spread as `**MONEY`."""

from typing import TypedDict


class DecimalDigits(TypedDict):
    """Keyword arguments of a `DecimalField`, typed so that `DecimalField(**MONEY)` type-checks."""

    max_digits: int
    decimal_places: int
