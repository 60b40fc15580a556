"""The rewards panel of the program dashboard (registered with `analytics.dashboard.panels` when this app loads)."""

from datetime import datetime

from analytics.dashboard.panels import PALETTE, Panel, bar_chart, dashboard_panel
from members.models import Program
from rewards.attainability import program_report

BUCKET_LABELS = {
    "now": "Now",
    "days_1_30": "In 1–30 days",
    "days_31_365": "In 31–365 days",
    "over_a_year": "Later",
    "never": "Never at their pace",
    "tier_locked": "Tier too low",
}


@dashboard_panel
def reward_attainability(program: Program, now: datetime) -> Panel:
    report = program_report(program=program, now=now)["current"]
    rewards = report["rewards"]
    datasets = [
        {"label": label, "data": [row[bucket] for row in rewards], "backgroundColor": PALETTE[i]}
        for i, (bucket, label) in enumerate(BUCKET_LABELS.items())
    ]
    chart = bar_chart(
        [f"{row['name']} ({row['points_cost']})" for row in rewards], datasets, stacked=True, indexAxis="y"
    )
    median = report["days_to_first_reward_median"]
    note = (
        f"{report['share_redeemable_now']:.0%} of active members can redeem a reward now; "
        f"median time to a first reward: {'never' if median is None else f'{median} days'}."
        + (f" {report['warning']}" if report["warning"] else "")
    )
    return Panel("reward-attainability", "When members can redeem each reward", chart, note=note)
