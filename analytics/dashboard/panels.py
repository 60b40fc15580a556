"""The program dashboard's panels (admin page "Analytics dashboard"): each panel is a chart described as a
Chart.js configuration (plain data, drawn by the page's script) with a title and a one-line note.

Panels come from builders registered with `@dashboard_panel`, in registration order: this module registers
the loyalty panels; `rewards` registers its attainability panel when it loads (`analytics/dashboard/rewards.py`), so
this app never imports the one above it.

Every panel is as of one moment, the as-of of the analytics refresh that computed it (`analytics_as_of`): after a
refresh as of a past day, months after it show no data yet (an empty cell, a gap), not 0.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from analytics.as_of import members_as_of
from analytics.liability import points_liability, upcoming_expiries
from analytics.lifetime import CAC_TARGET, clv_cac_by_channel, clv_distribution
from analytics.metrics import add_months, cohort_matrix, month_of, month_periods
from analytics.nps import nps_by_month
from analytics.rfm import rfm_summary
from analytics.selectors import analytics_as_of
from loyalty.models import Account
from loyalty.ruleset import program_ruleset
from members.models import MemberStatus, Program

PALETTE = ["#417690", "#79aec8", "#f5dd5d", "#e68a00", "#ba2121", "#70bf2b", "#8e5ea2", "#3cba9f", "#c45850"]
COHORT_MONTHS = 12
NO_DATA = "no data yet"  # a month not begun at the panels' as-of
TREND_MONTHS = 12


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    chart: dict[str, Any]
    note: str = ""
    matrix: dict[str, int] = field(default_factory=dict)  # columns and rows of a matrix (heatmap) chart


PanelBuilder = Callable[[Program, datetime], Panel | None]
_builders: list[PanelBuilder] = []


def dashboard_panel(builder: PanelBuilder) -> PanelBuilder:
    """Registers a panel builder; it returns None when it has nothing to show for the program."""
    _builders.append(builder)
    return builder


def dashboard_panels(program: Program, as_of: datetime | None = None) -> list[Panel]:
    """Every panel as of `as_of` (now by default)."""
    as_of = as_of or timezone.now()
    return [panel for builder in _builders if (panel := builder(program, as_of)) is not None]


CACHE_SECONDS = 7 * 24 * 3600


def _cache_key(program_id: int) -> str:
    return f"loyalty:dashboard:{program_id}"


def dashboard_panels_store(program: Program, as_of: datetime | None = None) -> tuple[list[Panel], datetime]:
    """Computes the panels as of `as_of` (by default the last analytics refresh's as-of, else now) and keeps them
    in the cache (the analytics refresh does this after its other steps, so that opening the dashboard of a large
    program does not recompute every figure)."""
    as_of = as_of or analytics_as_of(program) or timezone.now()
    panels = dashboard_panels(program, as_of)
    cache.set(_cache_key(program.pk), (panels, as_of), CACHE_SECONDS)
    return panels, as_of


def dashboard_panels_cached(program: Program) -> tuple[list[Panel], datetime]:
    """The panels of the last analytics refresh (or the last time they were computed), else computed now as of
    the last refresh's as-of."""
    cached = cache.get(_cache_key(program.pk))
    return cached if cached is not None else dashboard_panels_store(program)


def bar_chart(labels: list[str], datasets: list[dict[str, Any]], *, stacked: bool = False, **options: Any) -> dict:
    scales = {"x": {"stacked": stacked}, "y": {"stacked": stacked, "beginAtZero": True}}
    return {"type": "bar", "data": {"labels": labels, "datasets": datasets}, "options": {"scales": scales, **options}}


def heat(share: float | None) -> str:
    """A cell colour for a share 0–1 (grey when there is no value)."""
    if share is None:
        return "rgba(200, 200, 200, 0.3)"
    return f"rgba(65, 118, 144, {0.08 + 0.92 * max(0.0, min(1.0, share)):.3f})"


def matrix_chart(cells: list[dict[str, Any]], *, x_labels: list[str], y_labels: list[str], title: str) -> dict:
    """A heatmap (chartjs-chart-matrix): cells {x, y, v, label} with x and y labels; colours by v (0–1)."""
    return {
        "type": "matrix",
        "data": {
            "datasets": [
                {
                    "label": title,
                    "data": [{"x": c["x"], "y": c["y"], "v": c["v"], "label": c["label"]} for c in cells],
                    "backgroundColor": [heat(c["v"]) for c in cells],
                    "borderColor": "rgba(255, 255, 255, 1)",
                    "borderWidth": 1,
                }
            ]
        },
        "options": {
            "scales": {
                "x": {"type": "category", "labels": x_labels, "offset": True, "grid": {"display": False}},
                "y": {"type": "category", "labels": y_labels, "offset": True, "grid": {"display": False}},
            },
            "plugins": {"legend": {"display": False}},
        },
    }


# --- The loyalty panels -----------------------------------------------------------------------------------------


@dashboard_panel
def members_by_tier(program: Program, as_of: datetime) -> Panel:
    counts = dict(
        Account.objects.filter(member__in=members_as_of(program, as_of).filter(status=MemberStatus.ACTIVE))
        .values_list("tier_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    active = members_as_of(program, as_of).filter(status=MemberStatus.ACTIVE).count()
    tiers = program_ruleset(program).tiers
    labels = ["No tier", *(tier.name for tier in tiers)]
    values = [active - sum(counts.get(tier.id, 0) for tier in tiers), *(counts.get(tier.id, 0) for tier in tiers)]
    chart = bar_chart(labels, [{"label": "Active members", "data": values, "backgroundColor": PALETTE[0]}])
    return Panel("members-by-tier", "Members by tier", chart, note=f"{active:,} active members.")


@dashboard_panel
def rfm_grid_panel(program: Program, as_of: datetime) -> Panel:
    summary = rfm_summary(program)
    matrix = summary["matrix"]
    most = max((n for row in matrix for n in row), default=0) or 1
    cells = [
        {"x": f"FM {fm + 1}", "y": f"R {r + 1}", "v": n / most, "label": f"{n:,} members"}
        for r, row in enumerate(matrix)
        for fm, n in enumerate(row)
    ]
    chart = matrix_chart(
        cells,
        x_labels=[f"FM {i}" for i in range(1, 6)],
        y_labels=[f"R {i}" for i in range(5, 0, -1)],
        title="Members by recency and frequency-monetary score",
    )
    biggest = sorted(summary["segments"], key=lambda segment: -segment["members"])[:3]
    as_of = summary["as_of"]
    note = (
        "Largest segments: "
        + ", ".join(f"{s['name']} {s['members']:,}" for s in biggest)
        + f" (as of {as_of:%Y-%m-%d})."
        if as_of
        else "No analytics refresh yet: the grid fills after the first one."
    )
    return Panel("rfm-grid", "RFM grid (R score × mean of F and M)", chart, note=note, matrix={"x": 5, "y": 5})


@dashboard_panel
def retention_cohorts(program: Program, as_of: datetime) -> Panel:
    last = month_of(program, as_of)
    first = add_months(last, -(COHORT_MONTHS - 1))
    cohorts = cohort_matrix(program, first_month=first, last_month=last, offsets=COHORT_MONTHS - 1, as_of=as_of)
    offsets = [f"+{k}" for k in range(COHORT_MONTHS)]
    months = [_month_label(cohort.month) for cohort in cohorts]
    cells = [
        {
            "x": offsets[k],
            "y": _month_label(cohort.month),
            "v": share,
            "label": f"{cohort.size} members; {NO_DATA if share is None else f'{share:.0%}'}",
        }
        for cohort in cohorts
        for k, share in enumerate(cohort.shares)
    ]
    chart = matrix_chart(cells, x_labels=offsets, y_labels=months, title="Share of the cohort buying")
    note = (
        "Rows: members by the month of their first purchase; columns: months after it; darker = more bought; "
        f"grey: {NO_DATA} (after {as_of:%Y-%m})."
    )
    return Panel(
        "retention-cohorts", "Retention by cohort", chart, note=note, matrix={"x": COHORT_MONTHS, "y": len(months) or 1}
    )


@dashboard_panel
def nps_trend(program: Program, as_of: datetime) -> Panel:
    periods = month_periods(program, months=TREND_MONTHS, through=month_of(program, as_of))
    rows = nps_by_month(program, periods, as_of=as_of)
    chart = {
        "type": "line",
        "data": {
            "labels": [_month_label(month) for month, _ in rows],
            "datasets": [
                {
                    "label": "NPS",
                    "data": [figures.nps for _, figures in rows],
                    "borderColor": PALETTE[0],
                    "spanGaps": True,
                },
            ],
        },
        "options": {"scales": {"y": {"min": -100, "max": 100}}},
    }
    answered = sum(figures.respondents or 0 for _, figures in rows)
    return Panel(
        "nps-trend", "Net Promoter Score by month", chart, note=f"{answered:,} respondents over the months shown."
    )


@dashboard_panel
def liability_and_expiries(program: Program, as_of: datetime) -> Panel:
    liability = points_liability(program, as_of=as_of)
    expiries = upcoming_expiries(program, as_of=as_of)
    chart = bar_chart(
        [_month_label(expiry.month) for expiry in expiries],
        [
            {
                "label": f"{program.points_name} expiring",
                "data": [e.points for e in expiries],
                "backgroundColor": PALETTE[3],
            }
        ],
    )
    note = (
        f"Outstanding: {liability.outstanding:,} {program.points_name} ({liability.pending:,} pending), "
        f"worth {liability.value:,} {program.currency}."
    )
    return Panel("liability-expiries", "Points liability and upcoming expiries", chart, note=note)


@dashboard_panel
def clv_panel(program: Program, as_of: datetime) -> Panel:
    distribution = clv_distribution(program=program)
    labels = [f"{low:,.0f}–{high:,.0f}" for low, high, _ in distribution.bins]
    chart = bar_chart(
        labels,
        [{"label": "Members", "data": [n for _, _, n in distribution.bins], "backgroundColor": PALETTE[6]}],
    )
    note = f"Predicted CLV of {distribution.members:,} members, mean {distribution.mean or 0:,} {program.currency}."
    return Panel("clv-distribution", f"Predicted customer lifetime value ({program.currency})", chart, note=note)


@dashboard_panel
def clv_cac_panel(program: Program, as_of: datetime) -> Panel:
    channels = clv_cac_by_channel(program=program, as_of=as_of)
    colours = [PALETTE[4] if row.below_target else PALETTE[5] for row in channels]
    chart = bar_chart(
        [row.channel for row in channels],
        [{"label": "CLV : CAC", "data": [row.ratio for row in channels], "backgroundColor": colours}],
    )
    flagged = [row.channel for row in channels if row.below_target]
    note = (
        "Enter acquisition costs per channel in the admin to compare."
        if not channels
        else f"Below {CAC_TARGET}:1 (red): {', '.join(flagged)}."
        if flagged
        else f"Every channel at {CAC_TARGET}:1 or more."
    )
    return Panel("clv-cac", "CLV : CAC by acquisition channel", chart, note=note)


def _month_label(month: date) -> str:
    return month.strftime("%Y-%m")
