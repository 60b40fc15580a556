"""Reads of the ledger (every query names the member or program it is about) and the rule preview."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Prefetch, QuerySet, Sum
from django.utils import timezone

from config.rows import models_from_row, quote, rows_select, select_columns
from loyalty.models import Account, Allocation, Channel, EarningRule, Entry, Lot
from loyalty.pace import Eta, local_today, tier_metric_pace
from loyalty.rules import Award, Basket, Line, MemberContext, RuleKind, RuleSpec, evaluate_purchase
from loyalty.ruleset import ProgramRuleset, TierSpec, program_ruleset, rule_spec
from loyalty.services.awards import member_context, remaining_budgets, with_budgets
from loyalty.services.tiers import tier_metric_value, window_start
from members.exceptions import MemberNotFound
from members.models import Member, MemberStatus, Program
from members.selectors import member_lookup


@dataclass(frozen=True)
class Balances:
    available: int = 0
    pending: int = 0
    debt: int = 0
    expiring_soon: int = 0
    expiring_soon_until: datetime | None = None
    earned: int = 0
    redeemed: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["expiring_soon_until"] = self.expiring_soon_until.isoformat() if self.expiring_soon_until else None
        return data


def member_balances(*, member: Member, now: datetime | None = None) -> Balances:
    """Balances in two queries whatever the length of the member's history:
    the cached account row and one indexed sum over the lots that expire soon."""
    now = now or timezone.now()
    account = Account.objects.filter(pk=member.pk).first()
    if account is None:
        return Balances()
    until = now + timedelta(days=member.program.expiry_warning_days)
    expiring = (
        Lot.objects.filter(member_id=member.pk, remaining__gt=0, expires_at__gt=now, expires_at__lte=until).aggregate(
            points=Sum("remaining")
        )["points"]
        or 0
    )
    return Balances(
        available=account.available,
        pending=account.pending,
        debt=account.debt,
        expiring_soon=expiring,
        expiring_soon_until=until,
        earned=account.earned,
        redeemed=account.redeemed,
        expired=account.expired,
    )


# The member with program, account and expiring-soon sum in one statement (hand-written, config.rows): a till
# looks a member up before every sale. Parameters: the window's start and end, the program, the value.
_MEMBER_SQL = (
    "SELECT {member}, {program}, a.member_id, a.available, a.pending, a.debt, a.earned, a.redeemed, a.expired, "
    "(SELECT COALESCE(CAST(SUM(l.remaining) AS BIGINT), 0) FROM {lots} l WHERE l.member_id = m.id "
    "AND l.remaining > 0 AND l.expires_at > %s AND l.expires_at <= %s) "
    "FROM {members} m JOIN {programs} p ON p.id = m.program_id LEFT JOIN {accounts} a ON a.member_id = m.id "
    "WHERE m.program_id = %s AND m.{column} = %s"
)


def member_with_balances(*, program: Program, field: str, value: object, now: datetime | None = None) -> Member:
    """The member of `program` named by one of LOOKUP_FIELDS (MemberNotFound otherwise), read in one statement
    with its program and its balances as `member_balances` gives them (kept on the member for MemberOutput).
    The expiring-soon window is `program`'s: the caller's copy (the API key's, cached a few seconds)."""
    ((lookup, wanted),) = member_lookup(field=field, value=value).items()
    sql = _MEMBER_SQL.format(
        member=select_columns(connection.vendor, Member, "m"),
        program=select_columns(connection.vendor, Program, "p"),
        lots=quote(Lot._meta.db_table),
        members=quote(Member._meta.db_table),
        programs=quote(Program._meta.db_table),
        accounts=quote(Account._meta.db_table),
        column=quote(cast("Field[Any, Any]", Member._meta.get_field(lookup)).column),
    )
    now = now or timezone.now()
    until = now + timedelta(days=program.expiry_warning_days)
    rows = rows_select(sql, [now, until, program.pk, wanted])
    if not rows:
        raise MemberNotFound()
    row = rows[0]
    member: Member
    member, program = models_from_row(row, Member, Program)
    member._state.fields_cache["program"] = program
    has_account, available, pending, debt, earned, redeemed, expired, expiring = row[-8:]
    member._balances = (  # type: ignore[attr-defined]  # read by MemberOutput
        Balances(
            available=available,
            pending=pending,
            debt=debt,
            expiring_soon=expiring,
            expiring_soon_until=until,
            earned=earned,
            redeemed=redeemed,
            expired=expired,
        )
        if has_account is not None
        else Balances()
    )
    return member


def ledger_entries_for_member(*, member: Member) -> QuerySet[Entry]:
    """The member's entries, newest first, with the lots each debit consumed."""
    allocations = Allocation.objects.filter(member_id=member.pk).select_related("lot").order_by("pk")
    return (
        Entry.objects.filter(member_id=member.pk)
        .select_related("lot")
        .prefetch_related(Prefetch("allocations", queryset=allocations))
        .order_by("-occurred_at", "-id")
    )


def member_ledger_export(member: Member) -> dict[str, Any]:
    """The ledger part of the member's GDPR export."""
    return {
        "balances": member_balances(member=member).as_dict(),
        "entries": [
            {
                "id": entry.pk,
                "kind": entry.kind,
                "points": entry.amount,
                "occurred_at": entry.occurred_at.isoformat(),
                "reason": entry.reason,
                "details": entry.details,
            }
            for entry in Entry.objects.filter(member_id=member.pk).order_by("occurred_at", "pk")
        ],
    }


def _tier_ref(tier: TierSpec | None) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {
        "id": tier.id,
        "name": tier.name,
        "rank": tier.rank,
        "threshold": tier.threshold,
        "earn_multiplier": tier.earn_multiplier,
    }


def member_tier_summary(*, member: Member, now: datetime | None = None) -> dict[str, Any]:
    """Current tier, the metric, what is missing for the next tier and to keep this one, and the review date."""
    now = now or timezone.now()
    program = member.program
    account = Account.objects.filter(pk=member.pk).first() or Account(member=member, program=program)
    ruleset = program_ruleset(program)
    current = ruleset.tier(account.tier_id)
    metric = tier_metric_value(program=program, member_id=member.pk, as_of=now)
    higher = [tier for tier in ruleset.tiers if current is None or tier.rank > current.rank]
    next_tier = higher[0] if higher else None
    missing_for_next = max(Decimal(0), next_tier.threshold - metric) if next_tier else None
    missing_to_keep = max(Decimal(0), current.threshold - metric) if current else None
    pace = tier_metric_pace(member=member, now=now)
    today = local_today(program, now)
    next_eta = Eta.of(pace=pace, gap=missing_for_next, today=today) if missing_for_next is not None else None
    keep_eta = Eta.of(pace=pace, gap=missing_to_keep, today=today) if missing_to_keep is not None else None
    return {
        "tier": _tier_ref(current),
        "metric": program.tier_metric,
        "metric_value": metric,
        "window_start": window_start(program, now),
        "next_tier": _tier_ref(next_tier),
        "missing_for_next": missing_for_next,
        "missing_to_keep": missing_to_keep,
        "review_at": account.tier_review_at,
        "pinned_until": account.tier_pinned_until,
        "metric_pace_per_day": pace.per_day,
        "next_tier_days": next_eta.days if next_eta else None,
        "next_tier_date": next_eta.date if next_eta else None,
        "keep_days": keep_eta.days if keep_eta else None,
        "keep_date": keep_eta.date if keep_eta else None,
        "keep_on_track": _on_track(keep_eta, account.tier_review_at, program) if keep_eta else None,
    }


def _on_track(eta: Eta, review_at: datetime | None, program: Program) -> bool:
    """Whether the member reaches the current tier's threshold by the review at their pace."""
    if eta.days == 0 or review_at is None:
        return eta.days is not None
    return eta.date is not None and eta.date <= review_at.astimezone(program.tz).date()


# --- The rule preview (the manager API's and the admin's “Test this rule”; writes nothing) ----------

KIND_LABELS = {
    RuleKind.BASE_RATE: "Base rate",
    RuleKind.MULTIPLIER: "Multiplier",
    RuleKind.BONUS: "Fixed bonus",
    RuleKind.EVENT: "Event",
}


@dataclass(frozen=True)
class RulePoints:
    id: int
    name: str
    kind: str
    kind_label: str
    priority: int
    is_active: bool
    points: int


@dataclass(frozen=True)
class Preview:
    rules: tuple[RulePoints, ...]  # every purchase rule evaluated, in evaluation order, with its points (0 or more)
    awards: tuple[Award, ...]  # what the till would be told, the tier's award included
    points: int
    total: Decimal
    eligible_amount: Decimal
    notes: tuple[str, ...]


def _specs_with(ruleset: ProgramRuleset, rule: EarningRule | None) -> tuple[tuple[RuleSpec, ...], list[str]]:
    """The program's compiled purchase rules, plus `rule` when it is switched off (to try it before switching it on)."""
    if rule is None or any(spec.id == rule.pk for spec in ruleset.rules):
        return ruleset.rules, []
    if rule.kind == RuleKind.EVENT:
        note = f"“{rule.name}” is an event rule: it gives {rule.points} points when the event “{rule.event}” is "
        return ruleset.rules, [note + "recorded, not on purchases."]
    spec = rule_spec(rule, frozenset(rule.tiers.values_list("pk", flat=True)))
    return (*ruleset.rules, spec), [f"“{rule.name}” is switched off: it is included here as if it were active."]


def _member_context(program: Program, member: Member, ruleset: ProgramRuleset, occurred_at: datetime) -> MemberContext:
    account = Account.objects.select_related("member__program").filter(pk=member.pk).first()
    account = account or Account(member=member, program=program)
    return member_context(account=account, ruleset=ruleset, occurred_at=occurred_at)


def rules_preview(
    *,
    program: Program,
    lines: Sequence[Line],
    occurred_at: datetime,
    channel: str = Channel.POS,
    store: str = "",
    total: Decimal | None = None,
    member: Member | None = None,
    rule: EarningRule | None = None,
) -> Preview:
    """The points each purchase rule of `program` would give for a basket, computed by the
    same engine and compiled rules as a real purchase (live budgets and, for a member, their
    tier, purchase count and caps), without writing anything."""
    ruleset = program_ruleset(program)
    specs, notes = _specs_with(ruleset, rule)
    budgeted = set(ruleset.budgeted_rule_ids)
    if rule is not None and rule.budget_total is not None:
        budgeted.add(rule.pk)
    if budgeted:
        specs = with_budgets(specs, remaining_budgets(budgeted, lock=False))
    if member is not None and member.status != MemberStatus.ACTIVE:
        notes.append(f"This member is {member.get_status_display().lower()}: a real purchase would be refused.")
    basket = Basket(
        lines=tuple(lines),
        total=sum((line.amount for line in lines), Decimal(0)) if total is None else total,
        channel=channel,
        store=store,
        occurred_at=occurred_at,
        local_weekday=occurred_at.astimezone(program.tz).weekday(),
    )
    context = _member_context(program, member, ruleset, occurred_at) if member is not None else MemberContext()
    evaluation = evaluate_purchase(specs, basket, context)
    by_rule = {award.rule_id: award.points for award in evaluation.awards}
    active = {spec.id for spec in ruleset.rules}
    rows = tuple(
        RulePoints(
            id=spec.id,
            name=spec.name,
            kind=spec.kind.value,
            kind_label=KIND_LABELS[spec.kind],
            priority=spec.priority,
            is_active=spec.id in active,
            points=by_rule.get(spec.id, 0),
        )
        for spec in sorted(specs, key=lambda spec: (spec.priority, spec.id))
    )
    return Preview(
        rules=rows,
        awards=evaluation.awards,
        points=evaluation.points,
        total=basket.total,
        eligible_amount=evaluation.eligible_amount,
        notes=tuple(notes),
    )
