"""Hand-written statements for the till's hot paths (a purchase, a redemption, a return).

The ORM builds and compiles every statement anew: about half a millisecond of Python each, most of a
purchase's cost (docs/benchmarks.md, "Accrual"). The statements here are written once per model and
column list and keep the same text on every call, so PostgreSQL prepares them (DB_PREPARED_STATEMENTS)
and Python only binds values. They speak plain SQL that PostgreSQL and SQLite both run (multi-row VALUES,
RETURNING), with values prepared as the ORM prepares them: the rows they write and read are the rows the ORM
would write and read (tests/loyalty/test_fast_path_differential.py runs the till's calls both ways, with the
ORM twins of these functions in tests/loyalty/reference.py).

Use them inside a transaction, for the few statements a hot path runs; everything else uses the ORM. As with
the ORM, a failed statement marks the enclosing atomic block for rollback.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from django.db import connection, models, transaction
from django.db.models.fields import AutoFieldMixin

M = TypeVar("M", bound=models.Model)
Prepare = Callable[[Any], Any]


def quote(name: str) -> str:
    """A table or column name quoted for the database in use (for the hand-written statements here and beside)."""
    return connection.ops.quote_name(name)


@cache
def _column(model: type[models.Model], attname: str) -> models.Field:
    field = next((f for f in model._meta.concrete_fields if f.attname == attname), None)
    if field is None:
        raise LookupError(f"{model.__name__} has no column {attname}")
    return field


@cache
def _preparers(vendor: str, model: type[models.Model], attnames: tuple[str, ...]) -> tuple[Prepare | None, ...]:
    """How each value is prepared for the database, as the ORM's save does: on PostgreSQL the driver
    adapts Python values itself except JSON; elsewhere (SQLite) every field prepares its value."""
    prepared: list[Prepare | None] = []
    for name in attnames:
        field = _column(model, name)
        if vendor == "postgresql" and not isinstance(field, models.JSONField):
            prepared.append(None)
        else:
            prepared.append(_bound(field))
    return tuple(prepared)


def _bound(field: models.Field) -> Prepare:
    return lambda value: field.get_db_prep_save(value, connection)


def _values(model: type[models.Model], attnames: tuple[str, ...], values: Sequence[Any]) -> list[Any]:
    prepare = _preparers(connection.vendor, model, attnames)
    return [value if fn is None else fn(value) for fn, value in zip(prepare, values, strict=True)]


@cache
def _insert_sql(
    vendor: str, model: type[models.Model], attnames: tuple[str, ...], returning: bool, rows: int = 1
) -> str:
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(_column(model, name).column) for name in attnames)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(attnames)) + ")"] * rows)
    tail = f" RETURNING {quote(model._meta.pk.column)}" if returning else ""
    return f"INSERT INTO {table} ({columns}) VALUES {placeholders}{tail}"


@cache
def _stored(model: type[models.Model]) -> tuple[str, ...]:
    """The columns an insert of `model` writes: every concrete one but an automatic primary key."""
    return tuple(f.attname for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin))


def instance_insert(obj: M) -> M:
    """Inserts `obj` (`auto_now_add` columns filled as the ORM's save fills them) and sets its primary key, unless
    it has one already (taken with `next_id_sql`): then nothing is read back, and inside `one_round_trip` the
    insert waits to be sent with the statements after it. No signals are sent: the hot paths' models have none."""
    model = type(obj)
    preset = obj.pk is not None
    names = (model._meta.pk.attname, *_stored(model)) if preset else _stored(model)
    values = [_column(model, name).pre_save(obj, True) for name in names]
    sql = _insert_sql(connection.vendor, model, names, not preset)
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(sql, _values(model, names, values))
        if not preset:
            obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def instances_insert(objs: Sequence[models.Model]) -> None:
    """Inserts `objs` (of one model) as `instance_insert` does, in one round trip, without reading their keys."""
    if objs:
        model = type(objs[0])
        names = _stored(model)
        columns = [_column(model, name) for name in names]
        rows_insert(model, names, [[column.pre_save(obj, True) for column in columns] for obj in objs])


ROWS_PER_INSERT = 100  # rows of one multi-row INSERT (SQLite takes at most 32,766 parameters in a statement)


def rows_insert(model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Inserts `rows` (tuples of values in `attnames` order) with one multi-row INSERT per hundred: one statement
    text per number of rows, so the few sizes a purchase has (its awards, its lines) are each prepared once.
    Not an executemany: inside `one_round_trip` psycopg would end the round trip at each one."""
    names = tuple(attnames)
    for start in range(0, len(rows), ROWS_PER_INSERT):
        batch = rows[start : start + ROWS_PER_INSERT]
        sql = _insert_sql(connection.vendor, model, names, False, len(batch))
        with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
            cursor.execute(sql, [value for row in batch for value in _values(model, names, row)])


@cache
def _update_sql(vendor: str, model: type[models.Model], sets: tuple[str, ...], adds: tuple[str, ...]) -> str:
    table = quote(model._meta.db_table)
    assignments = [f"{quote(_column(model, name).column)} = %s" for name in sets]
    # A delta is cast to bigint: bound as a 4-byte integer it would wrap past 2^31.
    assignments += [f"{(c := quote(_column(model, name).column))} = {c} + CAST(%s AS BIGINT)" for name in adds]
    return f"UPDATE {table} SET {', '.join(assignments)} WHERE {quote(model._meta.pk.column)} = %s"


def row_update(
    model: type[models.Model], pk: Any, *, sets: Mapping[str, Any], adds: Mapping[str, int] | None = None
) -> None:
    """Sets columns (`sets`, by attname) and adds to others (`adds`: column = column + value) of the row `pk`
    (nothing is read back: inside `one_round_trip` it is sent with the statements after it). Pass every column
    of a kind of update each time, zeros included, so that its text stays the same (prepared once)."""
    adds = adds or {}
    names, add_names = tuple(sets), tuple(adds)
    sql = _update_sql(connection.vendor, model, names, add_names)
    params = _values(model, names, tuple(sets.values())) + [int(value) for value in adds.values()] + [pk]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def one_round_trip() -> Iterator[None]:
    """The statements run inside are sent to PostgreSQL together and answered together (psycopg's pipeline
    mode): one round trip for the writes whose results nobody reads before the block ends; a read inside
    (a RETURNING, a SELECT) sends what waits and costs one more. Errors surface at the latest when the block
    ends, as Django's database errors, and mark the enclosing atomic block for rollback. Elsewhere (SQLite)
    statements run one by one, as always."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with transaction.mark_for_rollback_on_error(), connection.wrap_database_errors, connection.connection.pipeline():
        yield


def next_id_sql(model: type[models.Model]) -> str | None:
    """An SQL expression taking the next primary key of `model` from its sequence, to select together with other
    reads before inserting with `instance_insert` (PostgreSQL); None elsewhere (the insert reads its key back)."""
    if connection.vendor != "postgresql":
        return None
    table, column = model._meta.db_table, model._meta.pk.column
    return f"nextval(pg_get_serial_sequence('{quote(table)}', '{column}'))"


# --- Reads -------------------------------------------------------------------------------------------------------


Convert = Callable[[Any], Any]


@cache
def _converters(vendor: str, model: type[models.Model]) -> tuple[tuple[int, Convert], ...]:
    """For each concrete column whose raw value the ORM converts (JSON, and on SQLite dates and decimals),
    its position and the conversion."""
    found = ((position, _field_converter(vendor, field)) for position, field in enumerate(model._meta.concrete_fields))
    return tuple((position, convert) for position, convert in found if convert is not None)


def _chained(steps: Sequence[Callable[..., Any]], expression: Any) -> Convert:
    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value, expression, connection)
        return value

    return convert


@cache
def select_columns(vendor: str, model: type[models.Model], alias: str) -> str:
    """The SELECT list of every concrete column of `model` under the table alias `alias`, in model order
    (what `model_from_row` reads back)."""
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def models_from_row(row: Sequence[Any], *models: type[models.Model]) -> list[Any]:
    """One instance of each of `models` from a row that selects their columns one after the other
    (`select_columns` of each, in that order)."""
    instances: list[Any] = []
    start = 0
    for model in models:
        instances.append(model_from_row(model, row, start))
        start += len(model._meta.concrete_fields)
    return instances


def model_from_row(model: type[M], row: Sequence[Any], start: int = 0) -> M:
    """The instance of `model` whose columns are `row[start:]` (as `select_columns` lists them), converted as
    the ORM converts them."""
    values = list(row[start : start + len(model._meta.concrete_fields)])
    for position, convert in _converters(connection.vendor, model):
        values[position] = convert(values[position])
    return model.from_db(connection.alias, None, values)  # type: ignore[arg-type]  # None: every column, in order


@cache
def _field_converter(vendor: str, field: models.Field | models.Expression) -> Convert | None:
    """How the ORM converts what the database hands back for a column of `field`, or for the expression
    `field` (an aggregate); None when it takes the value as it comes."""
    expression: Any = field.get_col(field.model._meta.db_table) if isinstance(field, models.Field) else field
    output = expression.output_field
    steps = connection.ops.get_db_converters(expression) + output.get_db_converters(connection)
    return _chained(steps, expression) if steps else None


def rows_select(
    sql: str, params: Sequence[Any], *, as_fields: Sequence[models.Field | models.Expression | None] = ()
) -> list[tuple[Any, ...]]:
    """The rows of a hand-written SELECT; the first columns converted as the ORM converts a column of each field
    of `as_fields`, or an expression of it (`Sum(...)`: SQLite hands sums back unrounded); None: as sent."""
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = [(i, _field_converter(connection.vendor, f)) for i, f in enumerate(as_fields) if f is not None]
    converters = [(i, c) for i, c in found if c is not None]
    if not converters:
        return rows
    converted = []
    for row in rows:
        values = list(row)
        for position, convert in converters:
            values[position] = convert(values[position])
        converted.append(tuple(values))
    return converted
