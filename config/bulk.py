"""Bulk inserts for the few writes that create rows by the hundred thousand (campaign vouchers, imports).

`bulk_insert` takes plain tuples of database-ready values (no model instances, no per-field preparation):
on PostgreSQL it streams them with COPY, elsewhere it sends one multi-row INSERT per batch. Constraint
violations surface as Django's `IntegrityError`, as with the ORM, so callers can retry in a savepoint.
"""

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any, cast

from django.db import connection, models

SQLITE_BATCH = 500  # rows per INSERT: SQLite allows 32,766 parameters per statement


def _field(model: type[models.Model], name: str) -> "models.Field[Any, Any]":
    # Bulk writes name concrete columns only, never a reverse relation or a generic foreign key.
    return cast("models.Field[Any, Any]", model._meta.get_field(name))


def bulk_insert(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Inserts `rows` (tuples of values in `fields` order, column names) into `model`'s table; returns how many.

    Call it inside a transaction: it does not open one."""
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in fields)
    count = 0
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        # Elsewhere values go through the fields' own preparation (SQLite stores datetimes as naive UTC text).
        prepare = [_field(model, name).get_db_prep_save for name in fields]
        iterator = ([fn(value, connection) for fn, value in zip(prepare, row, strict=True)] for row in rows)
        while batch := list(islice(iterator, SQLITE_BATCH)):
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(batch))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {placeholders}", [value for row in batch for value in row]
            )
            count += len(batch)
    return count


def bulk_update(model: type[models.Model], key: str, fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Sets `fields` of the rows of `model` whose `key` column matches, from tuples (key, *values); returns
    how many rows were sent. PostgreSQL: COPY into a temporary table, then one UPDATE ... FROM. Elsewhere:
    one UPDATE per row (executemany). Call it inside a transaction."""
    table = connection.ops.quote_name(model._meta.db_table)
    key_column = connection.ops.quote_name(key)
    columns = [connection.ops.quote_name(name) for name in fields]
    count = 0
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE TEMPORARY TABLE bulk_update_rows ON COMMIT DROP AS "
                f"SELECT {key_column}, {', '.join(columns)} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY bulk_update_rows ({key_column}, {', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            assignments = ", ".join(f"{column} = u.{column}" for column in columns)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM bulk_update_rows u WHERE {table}.{key_column} = u.{key_column}"
            )
            cursor.execute("DROP TABLE bulk_update_rows")
            return count
        prepare = [_field(model, name).get_db_prep_save for name in fields]
        assignments = ", ".join(f"{column} = %s" for column in columns)
        iterator = iter(rows)
        while batch := list(islice(iterator, SQLITE_BATCH)):
            values = [[*(fn(v, connection) for fn, v in zip(prepare, row[1:], strict=True)), row[0]] for row in batch]
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {key_column} = %s", values)
            count += len(batch)
    return count
