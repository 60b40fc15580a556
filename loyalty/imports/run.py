"""Streaming the file: rows are read and validated one at a time and imported a batch at a time."""

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from django.db import transaction
from django.utils import timezone

from loyalty.imports.batch import BatchOutcome, batch_check, batch_import
from loyalty.imports.rows import ColumnsError, ImportRow, RowError, RowParser, column_indexes
from loyalty.imports.writer import tables_analyze
from loyalty.models import Account, Award, Entry, Lot, Purchase, TierHistory
from members.models import Member, Program

DEFAULT_BATCH_SIZE = 10_000
# The tables an import grows; their statistics are refreshed as they double.
GROWN_TABLES = (Member, Account, Purchase, Entry, Lot, Award, TierHistory)
PROGRESS_EVERY = 1_000  # rows


@dataclass
class ImportReport:
    rows: int = 0  # data rows read
    imported: int = 0
    skipped: int = 0  # imported before: same purchase id
    rejected: int = 0
    members_created: int = 0
    points: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class ImportStopped(Exception):
    """A batch failed: it was rolled back whole; the batches before it stay imported."""

    def __init__(self, report: ImportReport, first_line: int, last_line: int):
        self.report = report
        self.first_line = first_line
        self.last_line = last_line
        super().__init__(f"Batch {report.batches} (lines {first_line}-{last_line}) failed and was rolled back.")


def _records(reader) -> Iterator[tuple[int, list[str]] | RowError]:
    """(line where the record starts, values), skipping blank lines; unreadable records as errors."""
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(line, f"unreadable CSV: {exc}", ())
            if reader.line_num < line:  # nothing consumed: stop rather than loop
                return
            continue
        if any(value.strip() for value in record):
            yield line, record


@dataclass
class _Run:
    program: Program
    award_points: bool
    dry_run: bool
    on_error: Callable[[RowError], None]
    report: ImportReport = field(default_factory=ImportReport)
    new_customers: set[str] = field(default_factory=set)  # dry run: members it would have created

    def reject(self, error: RowError) -> None:
        self.report.rejected += 1
        self.on_error(error)

    def flush(self, batch: list[ImportRow]) -> None:
        if not batch:
            return
        self.report.batches += 1
        if self.dry_run:
            outcome = batch_check(
                program=self.program, rows=batch, award_points=self.award_points, new_customers=self.new_customers
            )
        else:
            try:
                with transaction.atomic():
                    outcome = batch_import(
                        program=self.program, rows=batch, award_points=self.award_points, now=timezone.now()
                    )
            except Exception as exc:
                raise ImportStopped(self.report, batch[0].line, batch[-1].line) from exc
            if self.report.batches & (self.report.batches - 1) == 0:  # batches 1, 2, 4, 8, ...
                tables_analyze(GROWN_TABLES)
        self._count(outcome)

    def _count(self, outcome: BatchOutcome) -> None:
        report = self.report
        report.imported += outcome.imported
        report.skipped += outcome.skipped
        report.points += outcome.points
        report.members_created += outcome.members_created
        for error in sorted(outcome.errors, key=lambda error: error.line):
            self.reject(error)


def purchases_import(
    *,
    program: Program,
    file: TextIO,
    mapping: dict[str, str] | None = None,
    award_points: bool = True,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    delimiter: str = ",",
    on_header: Callable[[list[str]], None] | None = None,
    on_error: Callable[[RowError], None] | None = None,
    on_progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Imports the purchases of a CSV file (see the package's docstring). Calls `on_progress`
    every 1,000 rows. Raises ColumnsError when the header lacks a required column,
    ImportStopped when a batch fails."""
    reader = csv.reader(file, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise ColumnsError("The file is empty: it needs a header row naming the columns.")
    parser = RowParser(program=program, indexes=column_indexes(header, mapping or {}), now=timezone.now())
    if on_header is not None:
        on_header(header)
    run = _Run(program=program, award_points=award_points, dry_run=dry_run, on_error=on_error or (lambda error: None))
    batch: list[ImportRow] = []
    for record in _records(reader):
        run.report.rows += 1
        parsed = record if isinstance(record, RowError) else parser.parse(*record)
        if isinstance(parsed, RowError):
            run.reject(parsed)
        else:
            batch.append(parsed)
        if len(batch) >= batch_size:
            run.flush(batch)
            batch = []
        if on_progress is not None and run.report.rows % PROGRESS_EVERY == 0:
            on_progress(run.report)
    run.flush(batch)
    return run.report
