"""Writing many rows at once: COPY on PostgreSQL, bulk_create elsewhere.

Rows are plain dicts keyed by attribute name (`member_id`); missing columns
take the field's default. COPY cannot return the ids it inserts, so rows that
others point to (ledger entries) take ids reserved from their table's
sequence first.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

from loyalty.models import Account

BULK_BATCH = 2_000


def _copy_supported() -> bool:
    return connection.vendor == "postgresql"


def model_row(obj: models.Model) -> dict[str, Any]:
    """The row of an unsaved model instance."""
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if not f.primary_key}


def rows_insert(model: type[models.Model], rows: Sequence[dict[str, Any]], *, ids: bool = False) -> None:
    """Inserts `rows`; with `ids` each row gets its new "id". Fields with auto_now(_add) need a
    value in the rows (COPY runs no pre_save)."""
    if not rows:
        return
    if not _copy_supported():
        objs = model._default_manager.bulk_create([model(**row) for row in rows], batch_size=BULK_BATCH)
        if ids:
            for row, obj in zip(rows, objs, strict=True):
                row["id"] = obj.pk
        return
    if ids:
        for row, new_id in zip(rows, _ids_reserve(model, len(rows)), strict=True):
            row["id"] = new_id
    _copy(model, rows)


def tables_analyze(models_: Iterable[type[models.Model]]) -> None:
    """Refreshes the planner's statistics of tables an import grows (PostgreSQL): with a table
    ten times larger than its statistics say, lookups by purchase id turn into scans. Skipped,
    with a warning from PostgreSQL, when the role does not own the tables."""
    if not _copy_supported():
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(connection.ops.quote_name(m._meta.db_table) for m in models_)}")


def _ids_reserve(model: type[models.Model], count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(model: type[models.Model], rows: Sequence[dict[str, Any]]) -> None:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.attname in rows[0]]
    names = [f.attname for f in fields]
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in rows[0]}
    json_names = {f.attname for f in fields if isinstance(f, models.JSONField)}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    dump = DjangoJSONEncoder().encode
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = [row[name] if name in row else defaults[name] for name in names]
                for i, name in enumerate(names):
                    if name in json_names:
                        values[i] = dump(values[i])
                copy.write_row(values)


# What an import changes on an account: balances, the purchase count and the tier.
ACCOUNT_FIELDS = {
    "available": "bigint",
    "pending": "bigint",
    "earned": "bigint",
    "purchases": "bigint",
    "tier_id": "bigint",
    "tier_achieved_at": "timestamptz",
    "tier_review_at": "timestamptz",
    "tier_pinned_until": "timestamptz",
}


def accounts_save(accounts: Iterable[Account], now: datetime) -> None:
    """Writes the balances, purchase counts and tiers of `accounts` (locked by the caller) in one
    UPDATE ... FROM unnest(...) on PostgreSQL, batched bulk_update elsewhere."""
    accounts = list(accounts)
    if not accounts:
        return
    if not _copy_supported():
        for account in accounts:
            account.updated_at = now
        Account.objects.bulk_update(accounts, [*ACCOUNT_FIELDS, "updated_at"], batch_size=500)
        return
    names = list(ACCOUNT_FIELDS)
    assignments = ", ".join(f"{name} = d.{name}" for name in names)
    arrays = ", ".join(f"%s::{ACCOUNT_FIELDS[name]}[]" for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Account._meta.db_table} AS a SET {assignments}, updated_at = %s "
            f"FROM unnest(%s::bigint[], {arrays}) AS d(member_id, {', '.join(names)}) "
            "WHERE a.member_id = d.member_id",
            [now, [account.pk for account in accounts], *([getattr(a, name) for a in accounts] for name in names)],
        )
