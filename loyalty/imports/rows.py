"""The CSV file's rows: columns by header, each row parsed and validated without the database."""

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from loyalty.models import Channel
from loyalty.services.purchases import CENT, FUTURE_TOLERANCE, MAX_PURCHASE_TOTAL, PurchaseInput
from members.models import Program

FIELDS = ("external_id", "occurred_at", "total", "purchase_id", "store", "channel", "currency")
REQUIRED = ("external_id", "occurred_at", "total")
# The models' lengths: Member.external_id, Purchase.external_id, Purchase.store.
MAX_LENGTHS = {"external_id": 100, "purchase_id": 100, "store": 64}
DERIVED_ID_PREFIX = "csv-"


class ColumnsError(ValueError):
    """The header does not name the columns the import needs."""


def column_indexes(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Which column holds each field. Names compare without case and surrounding spaces;
    `mapping` renames columns (column -> field) and wins over a column already named like the field."""
    renames = {column.strip().casefold(): field for column, field in mapping.items()}
    unknown = sorted(set(renames.values()) - set(FIELDS))
    if unknown:
        raise ColumnsError(f"Unknown field(s) {', '.join(unknown)} in --map; the fields are {', '.join(FIELDS)}.")
    names = [name.strip().casefold() for name in header]
    absent = sorted(column for column in renames if column not in names)
    if absent:
        raise ColumnsError(f"--map names column(s) {', '.join(absent)} that the header does not have.")
    indexes: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in renames:
            indexes[renames[name]] = i
    for i, name in enumerate(names):
        if name in FIELDS and name not in renames.values():
            indexes.setdefault(name, i)
    missing = [field for field in REQUIRED if field not in indexes]
    if missing:
        raise ColumnsError(
            f"The header has no column for {', '.join(missing)}; name one with --map COLUMN=FIELD. "
            f"Header: {', '.join(header)}"
        )
    return indexes


@dataclass(frozen=True)
class ImportRow:
    """A valid row. `data.external_id` is the purchase id, given or derived."""

    line: int
    customer: str
    data: PurchaseInput
    raw: tuple[str, ...]


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str
    raw: tuple[str, ...]


def parse_moment(value: str, program: Program) -> datetime | None:
    """ISO 8601 date or date and time. A date is local midnight, a time without offset local time,
    both in the program's time zone. None when unreadable."""
    try:
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=program.tz)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=program.tz)


def parse_total(value: str) -> tuple[Decimal | None, str]:
    """The total and "", or None and why not."""
    try:
        total = Decimal(value)
    except InvalidOperation:
        total = None
    if total is None or not total.is_finite():
        return None, f"total {value!r} is not a decimal number"
    if total < 0:
        return None, f"total {value} is negative"
    if total != total.quantize(CENT):
        return None, f"total {value} has more than 2 decimal places"
    if total > MAX_PURCHASE_TOTAL:
        return None, f"total {value} is more than the largest purchase total, {MAX_PURCHASE_TOTAL}"
    return total.quantize(CENT), ""


class RowParser:
    """Turns records into valid rows or errors, and remembers the purchase ids seen (with their
    first line) to refuse a repeated one: about 130 bytes per row for the whole file."""

    def __init__(self, *, program: Program, indexes: dict[str, int], now: datetime):
        self.program = program
        self.indexes = indexes
        self.latest = now + FUTURE_TOLERANCE
        self.first_line: dict[str, int] = {}

    def parse(self, line: int, record: list[str]) -> ImportRow | RowError:
        values = {field: record[i].strip() if i < len(record) else "" for field, i in self.indexes.items()}
        problems: list[str] = []
        customer = self._customer(values, problems)
        occurred_at = self._occurred_at(values, problems)
        total = self._total(values, problems)
        channel = self._channel(values, problems)
        self._check_others(values, problems)
        if problems or occurred_at is None or total is None:
            return RowError(line, "; ".join(problems), tuple(record))
        data = PurchaseInput(
            external_id=values.get("purchase_id", ""),
            occurred_at=occurred_at,
            currency=self.program.currency,
            total=total,
            store=values.get("store", ""),
            channel=channel,
        )
        if not data.external_id:
            data = replace(data, external_id=self._derived_id(customer, data))
        first = self.first_line.setdefault(data.external_id, line)
        if first != line:
            return RowError(line, f"purchase_id {data.external_id} repeats line {first}", tuple(record))
        return ImportRow(line=line, customer=customer, data=data, raw=tuple(record))

    def _customer(self, values: dict[str, str], problems: list[str]) -> str:
        if not values["external_id"]:
            problems.append("external_id is empty")
        return values["external_id"]

    def _occurred_at(self, values: dict[str, str], problems: list[str]) -> datetime | None:
        value = values["occurred_at"]
        moment = parse_moment(value, self.program) if value else None
        if moment is None:
            problems.append(f"occurred_at {value!r} is not an ISO 8601 date or date and time")
        elif moment > self.latest:
            problems.append(f"occurred_at {value} is in the future")
        return moment

    def _total(self, values: dict[str, str], problems: list[str]) -> Decimal | None:
        total, problem = parse_total(values["total"])
        if problem:
            problems.append(problem)
        return total

    def _channel(self, values: dict[str, str], problems: list[str]) -> str:
        channel = values.get("channel", "").lower() or Channel.POS.value
        if channel not in Channel.values:
            problems.append(f"channel {channel!r} is not one of {', '.join(Channel.values)}")
        return channel

    def _check_others(self, values: dict[str, str], problems: list[str]) -> None:
        currency = values.get("currency", "")
        if currency and currency.upper() != self.program.currency:
            problems.append(f"currency {currency} is not the program's ({self.program.currency})")
        for field, limit in MAX_LENGTHS.items():
            if len(values.get(field, "")) > limit:
                problems.append(f"{field} is longer than {limit} characters")

    def _derived_id(self, customer: str, data: PurchaseInput) -> str:
        """A row without purchase_id gets one from what it says: customer, time (UTC), total, store
        and channel; the n-th identical row of the file gets suffix n, so identical purchases all
        count and a second run of the same file finds every one of them."""
        moment = data.occurred_at.astimezone(UTC).isoformat()
        content = "\x1f".join([customer, moment, str(data.total), data.store, data.channel])
        digest = hashlib.sha256(content.encode()).hexdigest()[:24]
        n = 1
        while f"{DERIVED_ID_PREFIX}{digest}-{n}" in self.first_line:
            n += 1
        return f"{DERIVED_ID_PREFIX}{digest}-{n}"
