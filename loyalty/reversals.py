"""What returns take back of a purchase's points: pure functions on plain dataclasses, no ORM.

Semantics (DESIGN.md section 4), from the awards as the purchase recorded them
(`loyalty.rules.Award`: points, each line's share, the conditions), so later
changes to the rules do not change what a return reverses:
- A line returned by SKU gives back its share of each base-rate and multiplier
  award: floor(award x returned share / all shares); a line returned in part
  (by amount) gives back that part of its share.
- An award whose condition the remaining basket no longer meets is taken back
  whole: a minimum basket above what the lines not returned add up to, or a
  "SKU in basket" bonus once every line that met it is returned.
  Other bonuses (first or n-th purchase, channel, store...) stay until the whole
  purchase is returned.
- The tier's award on top gives back the same proportion as the rule awards.
- Money returned without lines gives back its proportional share of what the
  returned lines have left: floor(rest x money / money not returned as lines);
  such a return cannot tell which lines went, so it takes back no bonus whole.
- Everything returned gives back everything.

The result is the purchase's reversal *in all* after the returns so far; each
return reverses the difference from what earlier returns reversed (never less
than 0). It never exceeds the points awarded and never decreases as more is
returned, so returns in any order add up to at most the award, and to exactly
the award once everything is returned.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from loyalty.rules import Award, floor_points

ONE = Decimal(1)


@dataclass(frozen=True)
class Returned:
    """A purchase's returns so far."""

    total: Decimal  # the purchase's total
    returned_total: Decimal  # all money returned, by lines or by amount
    line_money: Decimal  # the part of it returned as lines
    lines_left: tuple[Decimal, ...] = ()  # per purchase line, the part not returned (1: all of it; 0: none)

    def line_left(self, position: int) -> Decimal:
        # A purchase sent without lines was evaluated as one line that cannot be returned by SKU.
        return self.lines_left[position] if position < len(self.lines_left) else ONE


def points_reversed_in_all(awards: Sequence[Award], returned: Returned) -> int:
    """The points the purchase's `awards` have given back after the returns in `returned`."""
    awarded = sum(award.points for award in awards)
    if returned.returned_total >= returned.total:
        return awarded
    by_lines = _by_lines(awards, returned)
    money_by_amount = returned.returned_total - returned.line_money
    money_not_by_lines = returned.total - returned.line_money  # > money_by_amount: not everything is returned
    return by_lines + floor_points((awarded - by_lines) * money_by_amount / money_not_by_lines)


def _by_lines(awards: Sequence[Award], returned: Returned) -> int:
    rule_awards = [award for award in awards if award.rule_id is not None]
    rule_points = sum(award.points for award in rule_awards)
    rule_back = sum(_award_back(award, returned) for award in rule_awards)
    on_top = sum(award.points for award in awards if award.rule_id is None)
    return rule_back + (floor_points(Decimal(on_top * rule_back) / rule_points) if rule_points else 0)


def _award_back(award: Award, returned: Returned) -> int:
    if not _still_met(award, returned):
        return award.points
    shares = sum(award.line_shares, Decimal(0))
    if shares <= 0:
        return 0  # a bonus whose condition still holds
    back = sum((share * (ONE - returned.line_left(i)) for i, share in enumerate(award.line_shares)), Decimal(0))
    return min(max(floor_points(award.points * back / shares), 0), award.points)


def _still_met(award: Award, returned: Returned) -> bool:
    # The basket that is left is what was not returned as lines: money returned without lines
    # says nothing of which lines went, so it only gives back its share (see `points_reversed_in_all`).
    left = returned.total - returned.line_money
    return (award.min_basket is None or left >= award.min_basket) and (
        not award.needs_lines or any(returned.line_left(i) > 0 for i in award.needs_lines)
    )
