"""Purchases and returns: the till's whole sale-to-points path, each in one transaction.

A purchase locks the member's account (and the referrer's, for a first
purchase), evaluates the program's compiled rules in memory, locks the
budgeted rules that are about to award (after the account, in primary-key
order), credits the points as one lot, records the purchase, its lines and
awards, and promotes the member's tier when the purchase crosses a threshold.
The external id is unique per program: a retry returns the first answer.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from config.rows import (
    instance_insert,
    model_from_row,
    next_id_sql,
    one_round_trip,
    quote,
    rows_insert,
    rows_select,
    select_columns,
)
from events.models import OutboxEvent
from events.payloads.common import AwardRef
from loyalty.exceptions import AmountTooLarge, CurrencyMismatch, OccurredInFuture, PurchaseConflict, TotalMismatch
from loyalty.models import Account, Award, Entry, Lot, Purchase, PurchaseLine
from loyalty.rules import Basket, Evaluation, Line, MemberContext, evaluate_event, evaluate_purchase
from loyalty.ruleset import ProgramRuleset, program_ruleset
from loyalty.services.accounts import apply_deltas, ensure_active, lock_accounts, lock_buyer_account
from loyalty.services.awards import (
    awards_as_json,
    awards_post,
    local_date,
    member_context,
    member_context_of,
    remaining_budgets,
    with_budgets,
)
from loyalty.services.ledger import points_check
from loyalty.services.tiers import (
    METRICS_FIELDS,
    TierChange,
    metric_of,
    metrics_sql,
    qualified_tier,
    tier_metric_value,
    tier_promote_if_qualified,
    window_start,
)
from members.models import Member, Program
from members.selectors import MemberRef, member_get, member_lookup

# Tills' clocks drift; a purchase a little in the future is accepted.
FUTURE_TOLERANCE = timedelta(minutes=5)
CENT = Decimal("0.01")
# The largest total (and line amount or unit price) a purchase may have: what Purchase.total holds
# (14 digits, 2 after the point). Its points are held to MAX_POINTS_PER_ENTRY by the ledger's guard.
MAX_PURCHASE_TOTAL = Decimal("999999999999.99")


def occurred_at_check(when: datetime | None, *, what: str) -> None:
    """Refuses a business time (of a purchase, return, event or answer) more than FUTURE_TOLERANCE ahead of
    now: a till's clock may run a little fast, a date years ahead is a mistake."""
    if when is not None and when > timezone.now() + FUTURE_TOLERANCE:
        raise OccurredInFuture(f"The {what} time is more than 5 minutes in the future.")


@dataclass(frozen=True)
class LineInput:
    sku: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    category: str = ""


@dataclass(frozen=True)
class PurchaseInput:
    external_id: str
    occurred_at: datetime
    currency: str
    total: Decimal
    lines: tuple[LineInput, ...] = ()
    store: str = ""
    channel: str = "pos"


@dataclass
class PurchaseResult:
    purchase: Purchase | None  # None for a simulation
    member: Member
    awards: list[AwardRef]
    points: int
    outcome: dict[str, Any] = field(default_factory=dict)  # balances, tier before/after, pending_until
    replayed: bool = False


def _check_money(data: PurchaseInput) -> None:
    amounts = [("total", data.total)]
    amounts += [("lines", value) for line in data.lines for value in (line.amount, line.unit_price)]
    for field_name, value in amounts:
        if value > MAX_PURCHASE_TOTAL:
            raise AmountTooLarge(
                f"{value} is more than the largest purchase total, {MAX_PURCHASE_TOTAL}.",
                field=field_name,
                maximum=str(MAX_PURCHASE_TOTAL),
            )


def _validate(program: Program, data: PurchaseInput) -> None:
    _check_money(data)
    if data.currency.upper() != program.currency:
        raise CurrencyMismatch(f"The program counts in {program.currency}, the purchase is in {data.currency}.")
    if data.lines and sum(line.amount for line in data.lines) != data.total:
        raise TotalMismatch(
            f"The lines add up to {sum(line.amount for line in data.lines)}, the total is {data.total}."
        )
    occurred_at_check(data.occurred_at, what="purchase")


def _basket(program: Program, data: PurchaseInput) -> Basket:
    """The purchase as the rules see it. A purchase sent without lines is one line of its total."""
    lines = tuple(
        Line(
            sku=line.sku, category=line.category, quantity=line.quantity, unit_price=line.unit_price, amount=line.amount
        )
        for line in data.lines
    )
    if not lines:
        lines = (Line(sku="", category="", quantity=Decimal(1), unit_price=data.total, amount=data.total),)
    return Basket(
        lines=lines,
        total=data.total,
        channel=data.channel,
        store=data.store,
        occurred_at=data.occurred_at,
        local_weekday=data.occurred_at.astimezone(program.tz).weekday(),
    )


def _evaluate(ruleset: ProgramRuleset, basket: Basket, context: MemberContext, *, lock: bool) -> Evaluation:
    """Evaluates the rules; budgeted rules that award are then held to their live budget
    (locked when `lock`, so concurrent purchases can never overspend it). More points than one
    ledger entry may hold are refused (AmountTooLarge) before anything is written."""
    evaluation = evaluate_purchase(ruleset.rules, basket, context)
    awarding = {a.rule_id for a in evaluation.awards if a.rule_id in ruleset.budgeted_rule_ids}
    if awarding:
        budgets = remaining_budgets(awarding, lock=lock)
        evaluation = evaluate_purchase(with_budgets(ruleset.rules, budgets), basket, context)
    if evaluation.points:
        points_check(evaluation.points)
    return evaluation


def _tier_contribution(program: Program, data: PurchaseInput, points: int, now: datetime) -> Decimal:
    if data.occurred_at <= window_start(program, now):
        return Decimal(0)
    return {"spend": data.total, "purchases": Decimal(1)}.get(program.tier_metric, Decimal(points))


def _outcome(account: Account, change: TierChange, pending_until: datetime | None) -> dict[str, Any]:
    return {
        "balances": account.balances,
        "tier": {
            "before": change.before.name if change.before else None,
            "after": change.after.name if change.after else None,
        },
        "pending_until": pending_until.isoformat() if pending_until else None,
    }


NEW_ROWS = (Entry, Lot, Purchase, OutboxEvent)  # whose keys a purchase takes before writing (PostgreSQL)
# A purchase line as a purchase writes it (config.rows: values in this order, no model instance to build).
LINE_COLUMNS = (
    "purchase_id", "member_id", "position", "sku", "category", "quantity", "unit_price", "amount", "eligible",
    "returned_quantity", "returned_amount",
)  # fmt: skip


@dataclass(frozen=True)
class PurchaseReads:
    existing: Purchase | None  # the purchase of this external id, recorded before: a retry
    context: MemberContext  # for the rules: tier, purchases so far, what the capped rules gave
    metric: Decimal  # the tier metric before this purchase
    # The keys the new rows take (PostgreSQL, config.rows.next_id_sql); None: read back from each insert.
    entry_id: int | None = None
    lot_id: int | None = None
    purchase_id: int | None = None
    event_pk: int | None = None  # of the points.earned event


@cache
def _reads_sql(vendor: str, capped: int) -> str:
    """Replay check, tier metric and cap usage of a purchase in one statement (hand-written, config.rows). It runs
    after the account lock, so it sees every purchase and award of the member committed before (under the lock)."""
    caps = ", ".join(
        f"COALESCE(CAST(SUM(CASE WHEN rule_id = %s AND local_date = %s THEN points ELSE 0 END) AS BIGINT), 0)"
        f" AS today_{n}, COALESCE(CAST(SUM(CASE WHEN rule_id = %s THEN points ELSE 0 END) AS BIGINT), 0) AS month_{n}"
        for n in range(capped)
    )
    caps_table = (
        f" CROSS JOIN (SELECT {caps} FROM {quote(Award._meta.db_table)} "
        "WHERE member_id = %s AND local_date >= %s AND local_date <= %s) c"
        if capped
        else ""
    )
    cap_columns = "".join(f", c.today_{n}, c.month_{n}" for n in range(capped))
    new_ids = [next_id_sql(model) for model in NEW_ROWS]
    id_columns = "".join(f", {sql}" for sql in new_ids if sql is not None)
    return (
        f"SELECT m.spend, m.counted, m.points{cap_columns}{id_columns}, {select_columns(vendor, Purchase, 'r')} "
        f"FROM ({metrics_sql()}) m{caps_table} "
        f"LEFT JOIN {quote(Purchase._meta.db_table)} r ON r.program_id = %s AND r.external_id = %s"
    )


def purchase_reads(*, account: Account, ruleset: ProgramRuleset, data: PurchaseInput, as_of: datetime) -> PurchaseReads:
    """What a purchase reads once the account is locked, in one statement: the purchase of the same external id,
    and the same figures as `member_context` and `tier_metric_value` (their ORM twin: tests/loyalty/reference.py)."""
    program = account.member.program
    capped = sorted(ruleset.capped_rule_ids)
    today = local_date(program, data.occurred_at)
    params: list[Any] = [program.pk, account.pk, window_start(program, as_of), as_of]
    if capped:
        params += [value for rule_id in capped for value in (rule_id, today, rule_id)]
        params += [account.pk, today.replace(day=1), today]
    params += [program.pk, data.external_id]
    ((spend, counted, points, *row),) = rows_select(
        _reads_sql(connection.vendor, len(capped)), params, as_fields=METRICS_FIELDS
    )
    caps, row = row[: 2 * len(capped)], row[2 * len(capped) :]
    reserved = sum(next_id_sql(model) is not None for model in NEW_ROWS)
    ids, purchase = row[:reserved], row[reserved:]
    entry_id, lot_id, purchase_id, event_pk = ids or (None, None, None, None)
    awards = []  # as member_context_of takes them: today's points, and the rest of the month's
    for n, rule_id in enumerate(capped):
        awards += [(rule_id, today, caps[2 * n]), (rule_id, today.replace(day=1), caps[2 * n + 1] - caps[2 * n])]
    context = member_context_of(
        ruleset=ruleset, tier_id=account.tier_id, purchases_before=account.purchases, awards=awards, today=today
    )
    return PurchaseReads(
        existing=model_from_row(Purchase, purchase) if purchase[0] is not None else None,
        context=context,
        metric=metric_of(program, spend, counted, points),
        entry_id=entry_id,
        lot_id=lot_id,
        purchase_id=purchase_id,
        event_pk=event_pk,
    )


def _replay(existing: Purchase, member: Member, data: PurchaseInput) -> PurchaseResult:
    if existing.member_id != member.pk or existing.total != data.total or existing.occurred_at != data.occurred_at:
        raise PurchaseConflict(f"Purchase {data.external_id} was recorded with other details.")
    return PurchaseResult(
        purchase=existing,
        member=member,
        awards=existing.awards,
        points=existing.points_awarded,
        outcome=existing.outcome,
        replayed=True,
    )


def _lock_buyer(program: Program, member: Member | MemberRef) -> tuple[dict[int, Account], Member, Member | None]:
    """Locks the buyer's account, and the referrer's when the member was referred (both in primary-key
    order); returns the accounts, the buyer and the referrer. A member named by a `MemberRef` is looked up
    by the lock itself, in one statement, unless this may be a referred member's first purchase, which
    needs the referrer's account too."""
    if isinstance(member, MemberRef):
        ((field_name, value),) = member_lookup(field=member.field, value=member.value).items()
        account = lock_buyer_account(program=program, field=field_name, value=value)
        if account is not None:
            return {account.pk: account}, account.member, None
        member = member_get(program=program, field=member.field, value=member.value)
    referrer = Member(pk=member.referred_by_id, program_id=program.pk) if member.referred_by_id else None
    return lock_accounts([member, *([referrer] if referrer else [])]), member, referrer


def purchase_record(
    *, program: Program, member: Member | MemberRef, data: PurchaseInput, savepoint: bool = True
) -> PurchaseResult:
    """Records a purchase of `member` (a Member, or a MemberRef the till sent: MemberNotFound when
    it names no member of the program). `savepoint=False` is for a caller whose transaction rolls back
    whole on any error (the API's request with an Idempotency-Key, config.api.idempotency): two
    statements fewer."""
    with transaction.atomic(savepoint=savepoint):
        return _purchase_record(program=program, member=member, data=data)


def _purchase_record(*, program: Program, member: Member | MemberRef, data: PurchaseInput) -> PurchaseResult:
    accounts, member, referrer = _lock_buyer(program, member)
    _validate(program, data)
    account = accounts[member.pk]
    program = account.member.program
    ruleset = program_ruleset(program)
    now = timezone.now()
    reads = purchase_reads(account=account, ruleset=ruleset, data=data, as_of=now)
    if reads.existing is not None:
        return _replay(reads.existing, member, data)
    ensure_active(account.member)
    evaluation = _evaluate(ruleset, _basket(program, data), reads.context, lock=True)
    # A till clock a little ahead must not make points pending in a program without a return window.
    available_at = program.available_at_for(min(data.occurred_at, timezone.now()))
    pending_until = available_at if available_at > timezone.now() else None
    # The writes go in one round trip, with the keys taken by the read above.
    with one_round_trip():
        return _purchase_write(
            accounts, account, referrer, ruleset, data, reads, evaluation, now, available_at, pending_until
        )


def _purchase_write(
    accounts: dict[int, Account],
    account: Account,
    referrer: Member | None,
    ruleset: ProgramRuleset,
    data: PurchaseInput,
    reads: "PurchaseReads",
    evaluation: Evaluation,
    now: datetime,
    available_at: datetime,
    pending_until: datetime | None,
) -> PurchaseResult:
    program, member = account.member.program, account.member
    entry = awards_post(
        account=account,
        evaluation=evaluation,
        occurred_at=data.occurred_at,
        available_at=available_at,
        key=f"purchase:{data.external_id}",
        details={"purchase": data.external_id},
        budgeted_rule_ids=ruleset.budgeted_rule_ids,
        extra_deltas={"purchases": 1},
        entry_id=reads.entry_id,
        lot_id=reads.lot_id,
        event_pk=reads.event_pk,
    )
    if entry is None:
        apply_deltas(account, purchases=1)
    if reads.context.purchases_before == 0 and referrer is not None:
        _referral_bonuses(accounts, account, referrer, ruleset, data.occurred_at)
    metric = reads.metric + _tier_contribution(program, data, evaluation.points, now)
    change = tier_promote_if_qualified(account=account, ruleset=ruleset, metric=metric, now=now)
    purchase = Purchase(
        pk=reads.purchase_id,
        program=program,
        member=account.member,
        external_id=data.external_id,
        store=data.store,
        channel=data.channel,
        occurred_at=data.occurred_at,
        currency=program.currency,
        total=data.total,
        eligible_amount=evaluation.eligible_amount.quantize(CENT),
        points_awarded=evaluation.points,
        entry=entry,
        awards=awards_as_json(evaluation),
        outcome=_outcome(account, change, pending_until),
    )
    instance_insert(purchase)
    lines = [
        (
            purchase.pk,
            member.pk,
            i,
            line.sku,
            line.category,
            line.quantity,
            line.unit_price,
            line.amount,
            eligible,
            0,
            0,
        )
        # A purchase without lines was evaluated as one line of its total: nothing to store then.
        for i, (line, eligible) in enumerate(zip(data.lines, evaluation.eligible_lines, strict=False))
    ]
    rows_insert(PurchaseLine, LINE_COLUMNS, lines)
    return PurchaseResult(
        purchase=purchase,
        member=account.member,
        awards=purchase.awards,
        points=evaluation.points,
        outcome=purchase.outcome,
    )


def _referral_bonuses(
    accounts: dict[int, Account], account: Account, referrer: Member, ruleset: ProgramRuleset, occurred_at: datetime
) -> None:
    """Referral rules reward both sides on the referee's first purchase."""
    for side in (account, accounts[referrer.pk]):
        if side.member.status != "active":
            continue
        context = member_context(account=side, ruleset=ruleset, occurred_at=occurred_at)
        evaluation = evaluate_event(ruleset.event_rules, "referral", occurred_at, context)
        awards_post(
            account=side,
            evaluation=evaluation,
            occurred_at=occurred_at,
            available_at=occurred_at,
            key=f"referral:{account.pk}:{side.pk}",
            details={"event": "referral", "referee": account.pk},
            event="referral",
            budgeted_rule_ids=ruleset.budgeted_rule_ids,
        )


def purchase_simulate(*, program: Program, member: Member, data: PurchaseInput) -> PurchaseResult:
    """What `purchase_record` would award and change, writing nothing."""
    _validate(program, data)
    ensure_active(member)
    account = Account.objects.select_related("member__program").filter(pk=member.pk).first()
    account = account or Account(member=member, program=program)
    ruleset = program_ruleset(program)
    context = member_context(account=account, ruleset=ruleset, occurred_at=data.occurred_at)
    evaluation = _evaluate(ruleset, _basket(program, data), context, lock=False)
    available_at = program.available_at_for(min(data.occurred_at, timezone.now()))
    pending = available_at > timezone.now()
    now = timezone.now()
    metric = tier_metric_value(program=program, member_id=member.pk, as_of=now)
    metric += _tier_contribution(program, data, evaluation.points, now)
    before = ruleset.tier(account.tier_id)
    target = qualified_tier(ruleset.tiers, metric)
    after = target if target is not None and (before is None or target.rank > before.rank) else before
    paid = min(account.debt, evaluation.points)  # credits pay debt first
    account.debt -= paid
    account.available += 0 if pending else evaluation.points - paid
    account.pending += evaluation.points - paid if pending else 0
    outcome = _outcome(account, TierChange(before, after, metric), available_at if pending else None)
    return PurchaseResult(
        purchase=None, member=member, awards=awards_as_json(evaluation), points=evaluation.points, outcome=outcome
    )
