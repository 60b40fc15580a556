"""A batch's purchases evaluated in time order against each member's running state.

For each purchase the member context is what `member_context` would read at
that point (purchases so far, tier, capped rules' awards of the day and
month), the rules are the compiled ruleset with the budgets left, and the
rows are those `purchase_record` writes, kept as plain dicts (a model
instance costs more than writing its row) and written by `save`.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from loyalty.imports.rows import ImportRow
from loyalty.imports.writer import accounts_save, model_row, rows_insert
from loyalty.models import (
    Account,
    Award,
    Entry,
    EntryKind,
    Lot,
    Purchase,
    TierChangeReason,
    TierHistory,
    lifetime_deltas,
)
from loyalty.rules import Evaluation, evaluate_purchase
from loyalty.ruleset import program_ruleset
from loyalty.services.awards import (
    award_basis,
    awards_as_json,
    local_date,
    member_context_of,
    remaining_budgets,
    rule_budgets_spend,
    with_budgets,
)
from loyalty.services.ledger import points_check
from loyalty.services.purchases import CENT, _basket, _outcome, _tier_contribution, purchase_record
from loyalty.services.tiers import TierChange, _metric_expression, _rank, _tier_change, _window, qualified_tier
from members.models import Member, Program

Row = dict[str, Any]


class Posting:
    def __init__(
        self,
        *,
        program: Program,
        accounts: dict[int, Account],
        rows: Sequence[ImportRow],
        award_points: bool,
        now: datetime,
    ):
        """`accounts` (locked) of the members whose `rows` are added; `rows` tell the cap query
        which months to read."""
        self.program = program
        self.ruleset = program_ruleset(program)
        self.accounts = accounts
        self.award_points = award_points
        self.now = now
        self.points = 0
        self.budgets: dict[int, int] = {}
        if award_points and self.ruleset.budgeted_rule_ids:
            # Locked after the accounts, as a purchase locks them.
            self.budgets = remaining_budgets(set(self.ruleset.budgeted_rule_ids), lock=True)
        self.rules = with_budgets(self.ruleset.rules, self.budgets)
        self.spent: dict[int, int] = defaultdict(int)
        self.capped = frozenset(r.id for r in self.ruleset.rules if r.cap_per_member_day or r.cap_per_member_month)
        self.cap_awards = self._cap_awards(rows) if award_points and self.capped and rows else {}
        self.metrics = self._tier_metrics() if self.ruleset.tiers and rows else {}
        self.entries: list[Row] = []
        self.lots: list[Row] = []
        self.awards: list[Row] = []
        self.purchases: list[Row] = []
        self.histories: list[TierHistory] = []
        self.touched: dict[int, Account] = {}

    def _cap_awards(self, rows: Sequence[ImportRow]) -> dict[tuple, dict[date, int]]:
        """What the capped rules gave each member in the months the batch covers: (member, rule,
        year, month) -> day -> points, so each purchase sees the day's and month's use so far."""
        days = [local_date(self.program, row.data.occurred_at) for row in rows]
        found = (
            Award.objects.filter(
                member_id__in=sorted(self.accounts),
                rule_id__in=self.capped,
                local_date__gte=min(days).replace(day=1),
                local_date__lte=max(days),
            )
            .values("member_id", "rule_id", "local_date")
            .annotate(points=Sum("points"))
            .values_list("member_id", "rule_id", "local_date", "points")
        )
        usage: dict[tuple, dict[date, int]] = defaultdict(dict)
        for member_id, rule_id, day, points in found:
            usage[(member_id, rule_id, day.year, day.month)][day] = points
        return usage

    def _tier_metrics(self) -> dict[int, Decimal]:
        """Each member's qualification metric now, as `tier_metric_value` reads it (one query)."""
        found = (
            _window(self.program, self.now)
            .filter(member_id__in=sorted(self.accounts))
            .values("member_id")
            .annotate(value=_metric_expression(self.program))
            .values_list("member_id", "value")
        )
        return {member_id: Decimal(value) for member_id, value in found}

    def record(self, member: Member, row: ImportRow) -> None:
        """A purchase that goes through `purchase_record` itself, in its place in time: the
        budgets spent so far are written before and read again after."""
        if self.budgets:
            rule_budgets_spend(dict(self.spent))
            self.spent.clear()
        self.points += purchase_record(program=self.program, member=member, data=row.data).points
        if self.budgets:
            self.budgets = remaining_budgets(set(self.budgets), lock=True)
            self.rules = with_budgets(self.ruleset.rules, self.budgets)

    def add(self, member_id: int, row: ImportRow) -> None:
        """One purchase, as `purchase_record` would record it at this point."""
        account = self.accounts[member_id]
        data = row.data
        day = local_date(self.program, data.occurred_at)
        evaluation = self._evaluate(account, row, day) if self.award_points else None
        points = evaluation.points if evaluation is not None else 0
        available_at = self.program.available_at_for(min(data.occurred_at, self.now))
        pending_until = available_at if available_at > self.now else None
        entry = self._credit(account, row, evaluation, day, available_at) if evaluation and points else None
        account.purchases += 1
        self.touched[member_id] = account
        change = self._promote(account, row, points)
        self.purchases.append(
            {
                "program_id": self.program.pk,
                "member_id": member_id,
                "external_id": data.external_id,
                "store": data.store,
                "channel": data.channel,
                "occurred_at": data.occurred_at,
                "currency": self.program.currency,
                "total": data.total,
                # Without lines a purchase is one line of its total: no SKU or category to exclude.
                "eligible_amount": evaluation.eligible_amount.quantize(CENT) if evaluation else data.total,
                "points_awarded": points,
                "entry_id": entry,  # the entry's row until `save` knows its id
                "awards": awards_as_json(evaluation) if evaluation else [],
                "outcome": _outcome(account, change, pending_until),
                "created_at": self.now,
            }
        )
        self.points += points

    def _evaluate(self, account: Account, row: ImportRow, day: date) -> Evaluation:
        context = member_context_of(
            ruleset=self.ruleset,
            tier_id=account.tier_id,
            purchases_before=account.purchases,
            awards=self._cap_usage(account.pk, day) if self.capped else (),
            today=day,
        )
        evaluation = evaluate_purchase(self.rules, _basket(self.program, row.data), context)
        if evaluation.points:
            points_check(evaluation.points)  # AmountTooLarge refuses the row, as purchase_record would
        self._count(account.pk, day, evaluation)
        return evaluation

    def _cap_usage(self, member_id: int, day: date) -> list[tuple[int, date, int]]:
        return [
            (rule_id, used_day, points)
            for rule_id in self.capped
            for used_day, points in self.cap_awards.get((member_id, rule_id, day.year, day.month), {}).items()
        ]

    def _count(self, member_id: int, day: date, evaluation: Evaluation) -> None:
        """The awards count against the caps and budgets of the purchases after this one."""
        for award in evaluation.awards:
            if award.rule_id in self.capped:
                used = self.cap_awards.setdefault((member_id, award.rule_id, day.year, day.month), {})
                used[day] = used.get(day, 0) + award.points
            if award.rule_id in self.budgets:
                self.budgets[award.rule_id] -= award.points
                self.spent[award.rule_id] += award.points
                self.rules = with_budgets(self.ruleset.rules, self.budgets)

    def _credit(self, account: Account, row: ImportRow, evaluation: Evaluation, day: date, available_at) -> Row:
        """The rows `awards_post` writes: an earn entry, its lot, the awards; and the account's
        balances moved as `credit_locked` moves them (no debt to pay: see `_one_by_one`)."""
        data, points, program = row.data, evaluation.points, self.program
        entry = {
            "program_id": program.pk,
            "member_id": account.pk,
            "kind": EntryKind.EARN.value,
            "amount": points,
            "key": f"purchase:{data.external_id}",
            "occurred_at": data.occurred_at,
            "created_at": self.now,
            "details": {"purchase": data.external_id, "awards": awards_as_json(evaluation)},
        }
        pending = available_at > self.now
        self.entries.append(entry)
        self.lots.append(
            {
                "program_id": program.pk,
                "member_id": account.pk,
                "entry_id": entry,
                "amount": points,
                "remaining": points,
                "pending": pending,
                "occurred_at": data.occurred_at,
                "available_at": available_at,
                "expires_at": program.expires_at_for(data.occurred_at),
            }
        )
        self.awards.extend(
            {
                "program_id": program.pk,
                "member_id": account.pk,
                "rule_id": award.rule_id,
                "rule_name": award.rule[:120],
                "entry_id": entry,
                "points": award.points,
                "local_date": day,
                "basis": award_basis(award),
                "created_at": self.now,
            }
            for award in evaluation.awards
        )
        deltas = {"pending" if pending else "available": points, **lifetime_deltas(EntryKind.EARN, points)}
        for name, delta in deltas.items():
            setattr(account, name, getattr(account, name) + delta)
        return entry

    def _promote(self, account: Account, row: ImportRow, points: int) -> TierChange:
        """Promotion at once when the purchase crosses a threshold, as `tier_promote_if_qualified`
        decides it; the new tier counts for the member's next purchases."""
        before = self.ruleset.tier(account.tier_id)
        if not self.ruleset.tiers:
            return TierChange(before, before, Decimal(0))
        metric = self.metrics.get(account.pk, Decimal(0))
        metric += _tier_contribution(self.program, row.data, points, self.now)
        self.metrics[account.pk] = metric
        target = qualified_tier(self.ruleset.tiers, metric)
        if _rank(target) <= _rank(before):
            return TierChange(before, before, metric)
        self.histories.append(
            _tier_change(account=account, to=target, reason=TierChangeReason.PROMOTION, metric=metric, now=self.now)
        )
        return TierChange(before, target, metric)

    def save(self) -> None:
        rows_insert(Entry, self.entries, ids=True)
        # Now that the entries have ids, the rows pointing to them get them.
        for row in (*self.lots, *self.awards, *self.purchases):
            if row["entry_id"] is not None:
                row["entry_id"] = row["entry_id"]["id"]
        rows_insert(Lot, self.lots)
        rows_insert(Award, self.awards)
        rows_insert(Purchase, self.purchases)
        rows_insert(TierHistory, [model_row(history) for history in self.histories])
        accounts_save(self.touched.values(), self.now)
        rule_budgets_spend(dict(self.spent))
