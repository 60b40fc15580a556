"""Tier qualification, promotion, review and pinning.

The qualification metric (qualifying points, spend or number of purchases,
per program) is summed over the member's purchases in the window: a rolling
number of days, or the calendar year in the program's time zone. Returns
lower it, because purchases carry what was returned and reversed.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DecimalField, F, Func, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.rows import quote, row_update, rows_select
from events.outbox import EventType, events_emit
from events.payloads.common import TierRef, tier_ref
from events.payloads.points import tier_changed_payload
from loyalty.exceptions import InvalidPin, TierNotInProgram
from loyalty.models import FULLY_RETURNED, Account, Purchase, Tier, TierChangeReason, TierHistory
from loyalty.ruleset import ProgramRuleset, TierSpec, program_ruleset
from loyalty.services.accounts import lock_accounts, lock_accounts_by_id
from loyalty.services.rules import program_config_changed
from members.models import Member, Program, TierDowngrade, TierMetric, TierWindow

ZERO = Decimal(0)


def window_start(program: Program, as_of: datetime) -> datetime:
    if program.tier_window == TierWindow.CALENDAR_YEAR:
        local = as_of.astimezone(program.tz)
        return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return as_of - timedelta(days=program.tier_window_days)


def _metric_expression(program: Program) -> Func:
    if program.tier_metric == TierMetric.SPEND:
        return Coalesce(Sum(F("total") - F("returned_total")), ZERO)
    if program.tier_metric == TierMetric.PURCHASES:
        return Count("id", filter=~FULLY_RETURNED)
    return Coalesce(Sum(F("points_awarded") - F("points_reversed")), 0)


def _window(program: Program, as_of: datetime) -> QuerySet[Purchase]:
    return Purchase.objects.filter(
        program=program, occurred_at__gt=window_start(program, as_of), occurred_at__lte=as_of
    )


def tier_metric_value(*, program: Program, member_id: int, as_of: datetime) -> Decimal:
    """The member's qualification metric over the window ending at `as_of` (one query)."""
    return tier_metric_between(program=program, member_id=member_id, start=window_start(program, as_of), end=as_of)


# The three metrics of a member's purchases in a window, as `_metric_expression` counts them: hand-written,
# since every purchase runs it (config.rows). Parameters: program, member, window start and end.
METRICS_SQL = (
    "SELECT COALESCE(SUM(total - returned_total), 0) AS spend, "
    "COALESCE(SUM(CASE WHEN total > 0 AND returned_total >= total THEN 0 ELSE 1 END), 0) AS counted, "
    "COALESCE(SUM(points_awarded - points_reversed), 0) AS points FROM {table} "
    "WHERE program_id = %s AND member_id = %s AND occurred_at > %s AND occurred_at <= %s"
)
# How the spend column comes back (SQLite hands sums back as floats), as the ORM reads it.
METRICS_FIELDS = (Sum("total", output_field=DecimalField(max_digits=14, decimal_places=2)), None, None)


def metrics_sql() -> str:
    return METRICS_SQL.format(table=quote(Purchase._meta.db_table))


def metric_of(program: Program, spend: Any, counted: int, points: Any) -> Decimal:
    """The program's metric among the three that METRICS_SQL reads."""
    if program.tier_metric == TierMetric.SPEND:
        return Decimal(spend)
    return Decimal(counted if program.tier_metric == TierMetric.PURCHASES else points)


def tier_metric_between(*, program: Program, member_id: int, start: datetime, end: datetime) -> Decimal:
    """The qualification metric of the member's purchases in (start, end] (one query)."""
    ((spend, counted, points),) = rows_select(
        metrics_sql(), [program.pk, member_id, start, end], as_fields=METRICS_FIELDS
    )
    return metric_of(program, spend, counted, points)


def qualified_tier(tiers: tuple[TierSpec, ...], metric: Decimal) -> TierSpec | None:
    """The highest tier whose threshold the metric reaches."""
    return next((tier for tier in reversed(tiers) if metric >= tier.threshold), None)


def _rank(tier: TierSpec | None) -> int:
    return tier.rank if tier is not None else -1


TIER_FIELDS = ["tier", "tier_achieved_at", "tier_review_at", "tier_pinned_until", "updated_at"]
TIER_COLUMNS = ("tier_id", *TIER_FIELDS[1:])


def _tier_change(
    *,
    account: Account,
    to: TierSpec | None,
    reason: str,
    metric: Decimal,
    now: datetime,
    actor: Any = None,
    note: str = "",
    pinned_until: datetime | None = None,
) -> TierHistory:
    """Moves `account` to tier `to` (in memory) and returns the unsaved history row."""
    member = account.member
    history = TierHistory(
        program_id=member.program_id,
        member=member,
        from_tier_id=account.tier_id,
        to_tier_id=to.id if to else None,
        reason=reason,
        metric_value=metric,
        note=note,
        actor=actor,
        created_at=now,
    )
    account.tier_id = to.id if to else None
    account.tier_achieved_at = now
    account.tier_review_at = now + timedelta(days=member.program.tier_validity_days)
    account.tier_pinned_until = pinned_until
    account.updated_at = now
    return history


def _set_tier(*, account: Account, **change: Any) -> None:
    history = _tier_change(account=account, **change)
    history.save()
    # Hand-written (config.rows): a purchase's promotion runs inside its writes' single round trip.
    row_update(Account, account.pk, sets={name: getattr(account, name) for name in TIER_COLUMNS})
    _tier_events(account.member.program, [history])


def _tier_events(program: Program, histories: list[TierHistory]) -> None:
    """tier.promoted or tier.downgraded for each history row that moved a member up or down (outbox)."""
    ruleset = program_ruleset(program)

    def ref(tier_id: int | None) -> TierRef | None:
        tier = ruleset.tier(tier_id)
        return tier_ref(id=tier.id, name=tier.name, rank=tier.rank) if tier else None

    for kind, up in ((EventType.TIER_PROMOTED, True), (EventType.TIER_DOWNGRADED, False)):
        moved = [
            h
            for h in histories
            if h.from_tier_id != h.to_tier_id
            and (_rank(ruleset.tier(h.to_tier_id)) > _rank(ruleset.tier(h.from_tier_id))) == up
        ]
        if moved:
            events_emit(
                program_id=program.pk,
                type=kind,
                occurred_at=moved[0].created_at,
                events=[
                    (
                        h.member_id,
                        tier_changed_payload(
                            member_id=h.member_id,
                            from_tier=ref(h.from_tier_id),
                            to_tier=ref(h.to_tier_id),
                            reason=h.reason,
                            metric_value=h.metric_value,
                        ),
                    )
                    for h in moved
                ],
            )


@dataclass(frozen=True)
class TierChange:
    before: TierSpec | None
    after: TierSpec | None
    metric: Decimal


def tier_promote_if_qualified(
    *, account: Account, ruleset: ProgramRuleset, metric: Decimal, now: datetime
) -> TierChange:
    """Promotion happens at once when a purchase crosses a threshold (account locked by the caller)."""
    before = ruleset.tier(account.tier_id)
    target = qualified_tier(ruleset.tiers, metric)
    if _rank(target) > _rank(before):
        _set_tier(account=account, to=target, reason=TierChangeReason.PROMOTION, metric=metric, now=now)
        return TierChange(before, target, metric)
    return TierChange(before, before, metric)


def tier_recheck_after_return(*, account: Account, purchase: Purchase, now: datetime) -> TierChange:
    """A return of a purchase that helped reach the current tier drops the member to the highest
    tier the remaining purchases still qualify for (unless a manager pinned the tier)."""
    program = account.member.program
    ruleset = program_ruleset(program)
    before = ruleset.tier(account.tier_id)
    metric = tier_metric_value(program=program, member_id=account.pk, as_of=now)
    pinned = account.tier_pinned_until is not None and account.tier_pinned_until > now
    helped = account.tier_achieved_at is not None and purchase.occurred_at <= account.tier_achieved_at
    target = qualified_tier(ruleset.tiers, metric)
    if before is None or pinned or not helped or _rank(target) >= _rank(before):
        return TierChange(before, before, metric)
    _set_tier(account=account, to=target, reason=TierChangeReason.RETURN, metric=metric, now=now)
    return TierChange(before, target, metric)


@transaction.atomic
def tier_pin(*, member: Member, tier: Tier | None, until: datetime, actor: Any, note: str = "") -> Account:
    """A manager keeps a member in `tier` until `until`, whatever the metric says."""
    now = timezone.now()
    if tier is not None and tier.program_id != member.program_id:
        raise TierNotInProgram()
    if until <= now:
        raise InvalidPin("The pin must end in the future.")
    account = lock_accounts([member])[member.pk]
    program = account.member.program
    metric = tier_metric_value(program=program, member_id=member.pk, as_of=now)
    _set_tier(
        account=account,
        to=program_ruleset(program).tier(tier.pk if tier else None),
        reason=TierChangeReason.PIN,
        metric=metric,
        now=now,
        actor=actor,
        note=note,
        pinned_until=until,
    )
    return account


def _review_target(
    program: Program, ruleset: ProgramRuleset, current: TierSpec | None, metric: Decimal
) -> TierSpec | None:
    target = qualified_tier(ruleset.tiers, metric)
    if _rank(target) >= _rank(current) or program.tier_downgrade == TierDowngrade.HIGHEST_QUALIFIED:
        return target
    one_down = [tier for tier in ruleset.tiers if tier.rank < _rank(current)]
    return max([*one_down[-1:], *([target] if target else [])], key=_rank, default=None)


@dataclass
class ReviewReport:
    reviewed: int = 0
    downgraded: int = 0
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"reviewed": self.reviewed, "downgraded": self.downgraded, "kept": self.kept}


def tier_review(*, now: datetime | None = None, batch_size: int | None = None) -> ReviewReport:
    """Reviews members whose tier period (plus grace) ended or whose pin expired, in batches:
    one metric query per batch; each member drops to the tier they still qualify for (or one
    level, per program setting) or keeps theirs for another period. Idempotent: a reviewed
    member's next review date is in the future."""
    now = now or timezone.now()
    batch_size = batch_size or settings.LOYALTY_JOB_BATCH_SIZE
    report = ReviewReport()
    for program in Program.objects.filter(pk__in=Account.objects.filter(tier__isnull=False).values("program_id")):
        due = (
            Account.objects.filter(program=program, tier__isnull=False)
            .filter(Q(tier_pinned_until__isnull=True) | Q(tier_pinned_until__lte=now))
            .filter(
                Q(tier_review_at__lte=now - timedelta(days=program.tier_grace_days)) | Q(tier_pinned_until__lte=now)
            )
        )
        while member_ids := list(due.order_by("pk").values_list("pk", flat=True)[:batch_size]):
            _review_batch(program, member_ids, now, report)
    return report


def _review_batch(program: Program, member_ids: list[int], now: datetime, report: ReviewReport) -> None:
    with transaction.atomic():
        accounts = lock_accounts_by_id(member_ids)
        ruleset = program_ruleset(program)
        metrics = dict(
            _window(program, now)
            .filter(member_id__in=member_ids)
            .values("member_id")
            .annotate(value=_metric_expression(program))
            .values_list("member_id", "value")
        )
        histories = []
        for member_id, account in accounts.items():
            metric = Decimal(metrics.get(member_id, 0))
            current = ruleset.tier(account.tier_id)
            target = _review_target(program, ruleset, current, metric)
            pin_ended = account.tier_pinned_until is not None and account.tier_pinned_until <= now
            reason = TierChangeReason.UNPIN if pin_ended else TierChangeReason.REVIEW
            if _rank(target) < _rank(current):
                histories.append(_tier_change(account=account, to=target, reason=reason, metric=metric, now=now))
            else:
                if pin_ended:
                    histories.append(
                        TierHistory(
                            program_id=program.pk,
                            member_id=member_id,
                            from_tier_id=account.tier_id,
                            to_tier_id=account.tier_id,
                            reason=reason,
                            metric_value=metric,
                            created_at=now,
                        )
                    )
                account.tier_review_at = now + timedelta(days=program.tier_validity_days)
                account.tier_pinned_until = None
                account.updated_at = now
        TierHistory.objects.bulk_create(histories)
        Account.objects.bulk_update(accounts.values(), TIER_FIELDS)
        _tier_events(program, histories)
    downgraded = sum(history.from_tier_id != history.to_tier_id for history in histories)
    report.reviewed += len(accounts)
    report.downgraded += downgraded
    report.kept += len(accounts) - downgraded


@transaction.atomic
def tier_save(*, tier: Tier) -> Tier:
    tier.full_clean()
    tier.save()
    program_config_changed(program=tier.program)
    return tier


@transaction.atomic
def tier_delete(*, tier: Tier) -> None:
    """Deletes a tier (ProtectedError while a member holds it or history refers to it); the config version
    bump keeps the compiled rulesets from offering the deleted tier."""
    tier.delete()
    program_config_changed(program=tier.program)
