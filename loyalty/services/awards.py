"""Turning an evaluation of the earning rules into ledger credits and award records.

Shared by purchases, events (signup, birthday, referral, custom) and their jobs.
"""

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from django.db.models import Case, When
from django.utils import timezone

from config.rows import quote, rows_insert, rows_select
from events.outbox import EventType, event_emit
from events.payloads.common import AwardRef
from events.payloads.points import points_earned_payload
from loyalty.models import Account, Award, EarningRule, Entry, EntryKind
from loyalty.rules import Award as RuleAward
from loyalty.rules import Evaluation, MemberContext, RuleSpec
from loyalty.ruleset import ProgramRuleset
from loyalty.services.accounts import plus
from loyalty.services.ledger import credit_locked
from members.models import Program

# An award row as awards_post writes it (config.rows: values in this order, no model instance to build).
AWARD_COLUMNS = (
    "program_id", "member_id", "rule_id", "rule_name", "entry_id", "event", "points", "local_date", "basis",
    "created_at",
)  # fmt: skip


def local_date(program: Program, moment: datetime) -> date:
    return moment.astimezone(program.tz).date()


def member_context(*, account: Account, ruleset: ProgramRuleset, occurred_at: datetime) -> MemberContext:
    """What the rules need to know about the member: tier, purchases so far, and, when
    some rule has a per-member cap, what those rules already gave today and this month
    (one query, whatever the number of rules)."""
    rows: Iterable[tuple[int, date, int]] = ()
    today = None
    capped = sorted(ruleset.capped_rule_ids)
    if capped:
        today = local_date(account.member.program, occurred_at)
        rows = capped_awards(member_id=account.pk, rule_ids=capped, start=today.replace(day=1), end=today)
    return member_context_of(
        ruleset=ruleset, tier_id=account.tier_id, purchases_before=account.purchases, awards=rows, today=today
    )


def capped_awards(*, member_id: int, rule_ids: list[int], start: date, end: date) -> list[tuple[int, date, int]]:
    """The member's points per (rule, local date) from `start` to `end` (inclusive) of the rules `rule_ids`:
    one hand-written statement (config.rows), its text fixed by the number of capped rules."""
    table = quote(Award._meta.db_table)
    sql = (
        f"SELECT rule_id, local_date, CAST(SUM(points) AS BIGINT) FROM {table} WHERE member_id = %s "
        f"AND rule_id IN ({', '.join(['%s'] * len(rule_ids))}) AND local_date >= %s AND local_date <= %s "
        "GROUP BY rule_id, local_date"
    )
    rows = rows_select(sql, [member_id, *rule_ids, start, end], as_fields=(None, Award._meta.get_field("local_date")))
    return [(rule_id, day, points) for rule_id, day, points in rows]


def member_context_of(
    *,
    ruleset: ProgramRuleset,
    tier_id: int | None,
    purchases_before: int,
    awards: Iterable[tuple[int, date, int]] = (),
    today: date | None = None,
) -> MemberContext:
    """The member context from what is known already (no query; the import keeps these in memory).
    `awards` are the member's (rule id, local date, points) of capped rules, given with `today`,
    the purchase's local date: those of today's month up to today count against the caps."""
    used_today: dict[int, int] = {}
    used_this_month: dict[int, int] = {}
    if today is not None:
        month_start = today.replace(day=1)
        for rule_id, day, points in awards:
            if month_start <= day <= today:
                used_this_month[rule_id] = used_this_month.get(rule_id, 0) + points
                if day == today:
                    used_today[rule_id] = used_today.get(rule_id, 0) + points
    tier = ruleset.tier(tier_id)
    return MemberContext(
        tier_id=tier.id if tier else None,
        tier_name=tier.name if tier else "",
        tier_multiplier=tier.earn_multiplier if tier else MemberContext.tier_multiplier,
        purchases_before=purchases_before,
        used_today=used_today,
        used_this_month=used_this_month,
    )


def remaining_budgets(rule_ids: set[int], *, lock: bool) -> dict[int, int]:
    """What is left of each budgeted rule's budget. With `lock` the rules about to award are
    locked (primary-key order, after the account) so concurrent purchases cannot overspend."""
    rows = EarningRule.objects.filter(pk__in=sorted(rule_ids)).order_by("pk")
    rows = rows.select_for_update() if lock else rows
    return {rule.pk: cast(int, rule.budget_total) - rule.budget_used for rule in rows}  # budgeted rules only


def with_budgets(rules: tuple[RuleSpec, ...], budgets: dict[int, int]) -> tuple[RuleSpec, ...]:
    return tuple(replace(rule, budget_remaining=budgets[rule.id]) if rule.id in budgets else rule for rule in rules)


def awards_as_json(evaluation: Evaluation) -> list[AwardRef]:
    return [{"rule": a.rule, "rule_id": a.rule_id, "points": a.points} for a in evaluation.awards]


def award_basis(award: RuleAward) -> dict[str, Any]:
    """What a return of the purchase re-checks, as the award row keeps it (`loyalty.reversals`)."""
    return {
        "lines": [format(share.normalize(), "f") for share in award.line_shares],
        "min_basket": str(award.min_basket) if award.min_basket is not None else None,
        "needs": list(award.needs_lines),
    }


def award_from_row(award: Award) -> RuleAward:
    """The award as the purchase recorded it, from its row (see `award_basis`)."""
    basis = award.basis
    return RuleAward(
        rule_id=award.rule_id,
        rule=award.rule_name,
        points=award.points,
        line_shares=tuple(Decimal(share) for share in basis.get("lines", ())),
        min_basket=Decimal(basis["min_basket"]) if basis.get("min_basket") is not None else None,
        needs_lines=tuple(basis.get("needs", ())),
    )


def awards_post(
    *,
    account: Account,
    evaluation: Evaluation,
    occurred_at: datetime,
    available_at: datetime,
    key: str | None = None,
    details: dict[str, Any] | None = None,
    event: str = "",
    budgeted_rule_ids: frozenset[int] = frozenset(),
    extra_deltas: dict[str, int] | None = None,
    entry_id: int | None = None,
    lot_id: int | None = None,
    event_pk: int | None = None,
) -> Entry | None:
    """Credits the evaluation's points as one lot and records which rule gave how many.
    The caller holds the account's lock (and the budgeted rules' locks); `entry_id` and `lot_id` as
    `credit_locked` takes them, `event_pk` as `event_emit` does."""
    if evaluation.points <= 0:
        return None
    program = account.member.program
    entry = credit_locked(
        account=account,
        kind=EntryKind.EARN,
        amount=evaluation.points,
        occurred_at=occurred_at,
        available_at=available_at,
        expires_at=program.expires_at_for(occurred_at),
        key=key,
        details={**(details or {}), "awards": awards_as_json(evaluation)},
        extra_deltas=extra_deltas,
        entry_id=entry_id,
        lot_id=lot_id,
    )
    day, now = local_date(program, occurred_at), timezone.now()
    rows_insert(
        Award,
        AWARD_COLUMNS,
        [
            (program.pk, account.pk, a.rule_id, a.rule[:120], entry.pk, event, a.points, day, award_basis(a), now)
            for a in evaluation.awards
        ],
    )
    rule_budgets_spend({a.rule_id: a.points for a in evaluation.awards if a.rule_id in budgeted_rule_ids})
    event_emit(
        pk=event_pk,
        program_id=program.pk,
        member_id=account.pk,
        type=EventType.POINTS_EARNED,
        occurred_at=occurred_at,
        data=points_earned_payload(
            member_id=account.pk,
            points=evaluation.points,
            awards=awards_as_json(evaluation),
            details=details or {},
            event=event,
            available_at=available_at,
            expires_at=program.expires_at_for(occurred_at),
            balances=account.balances,
        ),
    )
    return entry


def rule_budgets_spend(spent: dict[int, int]) -> None:
    """Adds points given to the budgets of their rules (the caller holds the rules' locks)."""
    if spent:
        EarningRule.objects.filter(pk__in=spent).update(
            budget_used=Case(*(When(pk=pk, then=plus("budget_used", points)) for pk, points in spent.items()))
        )
