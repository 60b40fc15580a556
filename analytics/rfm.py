"""RFM scores and segments (DESIGN.md section 8).

Scores are quintiles within the program, among members with at least one purchase: a member's score is
1 + floor(5 (rank - 1) / n), where rank is the lowest rank among ties in ascending order, so members with
the same value always share a score. Frequency and monetary value rank ascending (most → 5); recency, in
days since the last purchase, ranks descending (most recent → 5).

A segment is a range of the grid R × FM, FM being the mean of the F and M scores (1.0 to 5.0 in steps of
0.5). A program's segments are tried in priority order and the first that contains the cell names it; the
grid is data (`RfmSegment`), `DEFAULT_GRID` when a program has no rows. A saved grid covers every cell
(`analytics.services.rfm` saves grids).
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import cast

import numpy as np
from django.db.models import Count, F, Max
from numpy.typing import ArrayLike, NDArray

from analytics.models import MemberAnalytics, RfmSegment
from members.models import Program

SCORES = range(1, 6)
# FM cells counted in halves: F + M runs from 2 to 10, FM = (F + M) / 2 from 1.0 to 5.0.
FM_HALVES = range(2, 11)
HALF = Decimal("0.5")


@dataclass(frozen=True)
class SegmentSpec:
    """One range of the grid: R from r_min to r_max, FM from fm_min to fm_max, bounds included."""

    name: str
    r_min: int
    r_max: int
    fm_min: Decimal
    fm_max: Decimal
    description: str = ""

    def contains(self, r: int, fm_halves: int) -> bool:
        return self.r_min <= r <= self.r_max and self.fm_min * 2 <= fm_halves <= self.fm_max * 2

    @classmethod
    def of(cls, row: RfmSegment) -> "SegmentSpec":
        return cls(row.name, row.r_min, row.r_max, Decimal(row.fm_min), Decimal(row.fm_max), row.description)


def _spec(name: str, r: tuple[int, int], fm: tuple[int, int], who: str, action: str) -> SegmentSpec:
    return SegmentSpec(name, r[0], r[1], Decimal(fm[0]), Decimal(fm[1]), f"{who} {action}")


# In priority order: the first segment containing a member's (R, FM) cell names it. Each description is who
# the members are, then what to do with them.
DEFAULT_GRID: tuple[SegmentSpec, ...] = (
    _spec(
        "Champions",
        (4, 5),
        (4, 5),
        "Bought recently, buy often and spend the most.",
        "Reward them: early access, new products; ask for reviews and referrals.",
    ),
    _spec(
        "Loyal",
        (3, 5),
        (3, 5),
        "Buy regularly and spend well.",
        "Upsell higher-value products; invite them to a higher tier.",
    ),
    _spec(
        "Potential Loyalist",
        (4, 5),
        (2, 5),
        "Recent customers with average frequency and spend.",
        "Offer membership benefits and recommendations from what they bought.",
    ),
    _spec(
        "New",
        (5, 5),
        (1, 5),
        "Bought very recently, but seldom and little so far.",
        "Onboard them: a welcome series and a reason for a second purchase.",
    ),
    _spec(
        "Promising",
        (4, 4),
        (1, 5),
        "Bought fairly recently, still little.",
        "Build the habit: small time-limited offers, free delivery or samples.",
    ),
    _spec(
        "Need Attention",
        (3, 3),
        (2, 5),
        "Average value, but have not bought for a while.",
        "Time-limited offers and recommendations from their history.",
    ),
    _spec(
        "About to Sleep",
        (3, 3),
        (1, 5),
        "Low value and slipping away.",
        "Remind them with popular products and a discount.",
    ),
    _spec(
        "Can't Lose Them",
        (1, 1),
        (4, 5),
        "Were among the best customers, but have not bought for a long time.",
        "Win them back personally: new products, a renewal offer; ask what went wrong.",
    ),
    _spec(
        "At Risk",
        (1, 2),
        (3, 5),
        "Spent well and often, but long ago.",
        "Personal messages to reconnect and a renewal incentive.",
    ),
    _spec(
        "Hibernating",
        (2, 2),
        (1, 5),
        "Last purchase long ago, few orders and low spend.",
        "Relevant products and special discounts, without investing much.",
    ),
    _spec(
        "Lost",
        (1, 1),
        (1, 5),
        "Lowest recency, frequency and spend.",
        "One reactivation campaign at most; otherwise leave them out.",
    ),
)


# --- Grids ----------------------------------------------------------------------------------------


def rfm_grid(program: Program) -> tuple[SegmentSpec, ...]:
    """The program's segments in priority order, or the default grid when it has none."""
    rows = RfmSegment.objects.filter(program=program).order_by("priority", "id")
    return tuple(SegmentSpec.of(row) for row in rows) or DEFAULT_GRID


def _bounds_problems(segment: SegmentSpec) -> list[str]:
    problems = []
    if not (1 <= segment.r_min <= segment.r_max <= 5):
        problems.append(f"R must run from r_min to r_max within 1–5 (got {segment.r_min}–{segment.r_max}).")
    fm_bounds = (Decimal(segment.fm_min), Decimal(segment.fm_max))
    if not (1 <= fm_bounds[0] <= fm_bounds[1] <= 5):
        problems.append(f"FM must run from fm_min to fm_max within 1.0–5.0 (got {fm_bounds[0]}–{fm_bounds[1]}).")
    if any(bound % HALF for bound in fm_bounds):
        problems.append("FM bounds go in steps of 0.5 (FM is the mean of two whole scores).")
    return problems


def grid_problems(segments: Sequence[SegmentSpec]) -> list[str]:
    """What is wrong with a grid (in priority order): bad ranges, empty or repeated names, cells no segment
    covers. Empty when the grid is valid."""
    if not segments:
        return ["A grid needs at least one segment."]
    problems = []
    seen: set[str] = set()
    for position, segment in enumerate(segments, start=1):
        name = segment.name.strip()
        label = f"Segment {position} ({name or 'no name'})"
        if not name:
            problems.append(f"{label}: a name is required.")
        elif len(name) > cast(int, RfmSegment._meta.get_field("name").max_length):
            problems.append(f"{label}: the name is longer than 64 characters.")
        elif name.casefold() in seen:
            problems.append(f"{label}: another segment has this name.")
        seen.add(name.casefold())
        problems.extend(f"{label}: {problem}" for problem in _bounds_problems(segment))
    if problems:
        return problems
    uncovered = [
        f"R{r} × FM {Decimal(halves) / 2:.1f}"
        for r in SCORES
        for halves in FM_HALVES
        if not any(segment.contains(r, halves) for segment in segments)
    ]
    if uncovered:
        problems.append("No segment covers " + ", ".join(uncovered) + "; every R 1–5 × FM 1.0–5.0 cell needs one.")
    return problems


# --- Scores and segments, vectorised ----------------------------------------------------------------


def quintile_scores(values: ArrayLike, *, descending: bool = False) -> NDArray[np.int16]:
    """1 + floor(5 (rank - 1) / n), rank being the lowest rank among equal values (ascending, or descending
    when `descending`): equal values share a score."""
    array = np.asarray(values)
    n = array.size
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    _, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
    up_to = np.cumsum(counts)  # values up to and including each distinct value
    # The lowest rank of a distinct value: 1 + how many values come before it in the ranking order.
    first_rank = 1 + (n - up_to if descending else up_to - counts)
    ranks = first_rank[inverse.reshape(-1)]
    return (1 + (5 * (ranks - 1)) // n).astype(np.int16)


def grid_table(segments: Sequence[SegmentSpec]) -> NDArray[np.object_]:
    """The segment name of every cell: table[R - 1, F + M - 2], "" where no segment covers it."""
    table = np.full((len(SCORES), len(FM_HALVES)), "", dtype=object)
    for r in SCORES:
        for halves in FM_HALVES:
            table[r - 1, halves - 2] = next((s.name for s in segments if s.contains(r, halves)), "")
    return table


def segments_of(segments: Sequence[SegmentSpec], r: ArrayLike, f: ArrayLike, m: ArrayLike) -> NDArray[np.object_]:
    """The segment name of each member from their R, F and M scores."""
    r, f, m = (np.asarray(scores, dtype=np.intp) for scores in (r, f, m))
    return grid_table(segments)[r - 1, f + m - 2]


# --- The program's picture ----------------------------------------------------------------------------


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def rfm_summary(program: Program) -> dict:
    """Members per segment (with their share of the members who have a segment) and per cell of the R × FM
    matrix, FM rounded down (matrix[R - 1][FM - 1]), as of the last refresh. Segments are listed in the
    grid's order; a segment from before a grid change that members still hold is listed after them, with
    `in_grid` false, until the next refresh."""
    rows = MemberAnalytics.objects.filter(program=program).order_by()
    counts = dict(rows.values_list("segment").annotate(n=Count("pk")))
    cells = (
        rows.filter(r_score__isnull=False, f_score__isnull=False, m_score__isnull=False)
        .annotate(fm_halves=F("f_score") + F("m_score"))
        .values_list("r_score", "fm_halves")
        .annotate(n=Count("pk"))
    )
    matrix = [[0] * len(SCORES) for _ in SCORES]
    for r, halves, n in cells:
        matrix[r - 1][halves // 2 - 1] += n
    without = counts.pop("", 0)
    segmented = sum(counts.values())
    grid = rfm_grid(program)
    stale = dict.fromkeys(("r_min", "r_max", "fm_min", "fm_max"))
    listed = [{**asdict(segment), "in_grid": True, "members": counts.pop(segment.name, 0)} for segment in grid] + [
        {"name": name, **stale, "description": "", "in_grid": False, "members": n} for name, n in sorted(counts.items())
    ]
    return {
        "program": program.slug,
        "as_of": rows.aggregate(as_of=Max("computed_at"))["as_of"],
        "members": segmented + without,
        "without_purchase": without,
        "segments": [{**segment, "share": _share(segment["members"], segmented)} for segment in listed],
        "matrix": matrix,
    }
