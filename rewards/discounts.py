"""What a voucher takes off a basket: pure functions on plain values, no queries.

A voucher's scope is the SKUs and categories its reward names; an empty scope is the whole basket.
The discount is computed on the lines in scope only: a fixed discount up to their amount, a percent
of their amount, a free product's price, nothing for a gift. It is rounded half up to cents once,
in `discount_of`. The minimum basket is measured on the same amount the discount is (the lines in
scope, or the basket amount for a voucher without scope).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from rewards.models import RewardKind

CENT = Decimal("0.01")


@dataclass(frozen=True)
class BasketLine:
    sku: str
    amount: Decimal
    category: str = ""


@dataclass(frozen=True)
class Scope:
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    @classmethod
    def of(cls, skus: Iterable[str] | None, categories: Iterable[str] | None) -> "Scope":
        return cls(frozenset(skus or ()), frozenset(categories or ()))

    def __bool__(self) -> bool:
        return bool(self.skus or self.categories)

    def covers(self, line: BasketLine) -> bool:
        return not self or line.sku in self.skus or (bool(line.category) and line.category in self.categories)

    def amount_in(self, lines: Sequence[BasketLine]) -> Decimal | None:
        """The amount of the lines in scope; None when no line is."""
        covered = [line.amount for line in lines if self.covers(line)]
        return sum(covered, Decimal(0)) if covered else None


def discount_of(kind: str, value: Decimal | None, base: Decimal | None) -> Decimal | None:
    """The discount of a voucher of `kind` and `value` on `base`, the amount it applies to (None: not
    known, then a percent discount cannot tell and a fixed one gives its value)."""
    value = value or Decimal(0)
    if kind == RewardKind.GIFT:
        discount = Decimal(0)
    elif kind == RewardKind.FREE_PRODUCT:
        discount = value
    elif kind == RewardKind.PERCENT_DISCOUNT:
        if base is None:
            return None
        discount = base * value / 100
    else:
        discount = value if base is None else min(value, base)
    return discount.quantize(CENT, rounding=ROUND_HALF_UP)
