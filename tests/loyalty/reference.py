"""The reference of the till's hot paths: the ORM statements that the hand-written ones (config.rows and the few
reads built on it) replaced, kept here so that tests/loyalty/test_fast_path_differential.py can run the same
sequence both ways and compare every row and answer.

`orm_reference()` swaps each hand-written function for its ORM twin wherever it was imported, for the length of
a `with` block.
"""

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import BigIntegerField, F, Q, Sum, Value

from config import rows
from loyalty.models import Account, Award, Purchase
from loyalty.ruleset import ProgramRuleset
from loyalty.services import accounts, awards, purchases, tiers
from loyalty.services.purchases import PurchaseInput, PurchaseReads
from members.models import Program


def orm_instance_insert(obj: models.Model) -> models.Model:
    obj.save(force_insert=True)
    return obj


def orm_instances_insert(objs: Sequence[models.Model]) -> None:
    if objs:
        type(objs[0])._default_manager.bulk_create(objs)


def orm_rows_insert(model: type[models.Model], attnames: Sequence[str], rows_: Sequence[Sequence[Any]]) -> None:
    model._default_manager.bulk_create([model(**dict(zip(attnames, row, strict=True))) for row in rows_])


def orm_row_update(
    model: type[models.Model], pk: Any, *, sets: Mapping[str, Any], adds: Mapping[str, int] | None = None
) -> None:
    moves = {name: F(name) + Value(delta, output_field=BigIntegerField()) for name, delta in (adds or {}).items()}
    model._default_manager.filter(pk=pk).update(**sets, **moves)


def orm_lock_accounts_by_id(member_ids: Any) -> dict[int, Account]:
    rows_ = Account.objects.select_for_update(of=("self",)).select_related("member", "member__program")
    return {account.pk: account for account in rows_.filter(pk__in=sorted(member_ids)).order_by("pk")}


def orm_lock_buyer_account(*, program: Program, field: str, value: object) -> Account | None:
    rows_ = Account.objects.select_for_update(of=("self",)).select_related("member", "member__program")
    condition = Q(member__referred_by__isnull=True) | Q(purchases__gt=0)
    return rows_.filter(condition, member__program=program, **{f"member__{field}": value}).first()


def orm_capped_awards(*, member_id: int, rule_ids: list[int], start: date, end: date) -> list[tuple[int, date, int]]:
    return list(
        Award.objects.filter(member_id=member_id, rule_id__in=rule_ids, local_date__gte=start, local_date__lte=end)
        .values("rule_id", "local_date")
        .annotate(points=Sum("points"))
        .values_list("rule_id", "local_date", "points")
    )


def orm_tier_metric_between(*, program: Program, member_id: int, start: datetime, end: datetime) -> Decimal:
    found = Purchase.objects.filter(program=program, member_id=member_id, occurred_at__gt=start, occurred_at__lte=end)
    return Decimal(found.aggregate(value=tiers._metric_expression(program))["value"])


def orm_purchase_reads(
    *, account: Account, ruleset: ProgramRuleset, data: PurchaseInput, as_of: datetime
) -> PurchaseReads:
    program = account.member.program
    return PurchaseReads(
        existing=Purchase.objects.filter(program=program, external_id=data.external_id).first(),
        context=awards.member_context(account=account, ruleset=ruleset, occurred_at=data.occurred_at),
        metric=orm_tier_metric_between(
            program=program, member_id=account.pk, start=tiers.window_start(program, as_of), end=as_of
        ),
    )


REFERENCE = {
    rows.instance_insert: orm_instance_insert,
    rows.instances_insert: orm_instances_insert,
    rows.rows_insert: orm_rows_insert,
    rows.row_update: orm_row_update,
    accounts.lock_accounts_by_id: orm_lock_accounts_by_id,
    accounts.lock_buyer_account: orm_lock_buyer_account,
    awards.capped_awards: orm_capped_awards,
    tiers.tier_metric_between: orm_tier_metric_between,
    purchases.purchase_reads: orm_purchase_reads,
}
APPS = ("config.", "members.", "events.", "loyalty.", "rewards.", "analytics.")


@contextmanager
def orm_reference() -> Iterator[int]:
    """Every module of the project that holds a hand-written function gets its ORM twin instead; yields how
    many names were swapped."""
    twins = {id(fast): orm for fast, orm in REFERENCE.items()}
    swapped = []
    for name, module in list(sys.modules.items()):
        if not name.startswith(APPS) or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if id(value) in twins:
                swapped.append((module, attribute, value))
                setattr(module, attribute, twins[id(value)])
    try:
        yield len(swapped)
    finally:
        for module, attribute, value in swapped:
            setattr(module, attribute, value)
