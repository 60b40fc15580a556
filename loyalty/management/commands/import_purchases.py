"""python manage.py import_purchases FILE --program SLUG [--map COLUMN=FIELD ...] [--no-points] [--dry-run]"""

import csv
import io
import os
import time
from typing import BinaryIO

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from loyalty.imports import DEFAULT_BATCH_SIZE, ColumnsError, ImportReport, ImportStopped, RowError, purchases_import
from members.models import Program

TABLE_ROWS = 50


class Progress:
    """One line on stderr: rows, share of the file, rows per second. Redrawn in place on a
    terminal (at most 5 times a second), a new line every 10 seconds otherwise."""

    def __init__(self, out: OutputWrapper, raw: BinaryIO, size: int):
        self.out, self.raw, self.size = out, raw, size
        self.tty = out.isatty()
        self.every = 0.2 if self.tty else 10.0
        self.last = 0.0

    def __call__(self, report: ImportReport, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        share = f"{min(self.raw.tell() / self.size, 1):6.1%}" if self.size else ""
        line = (
            f"{report.rows:>11,} rows {share} | {report.rows_per_second:>8,.0f} rows/s | "
            f"{report.imported:,} imported, {report.skipped:,} skipped, {report.rejected:,} rejected"
        )
        if self.tty:
            self.out.write(f"\r{line}", ending="\n" if final else "")
        else:
            self.out.write(line)
        self.out.flush()


class Errors:
    """Refused rows: all of them to the --errors file (line, reason and the row as read), the
    first ones kept for the table."""

    def __init__(self, path: str | None):
        self.file = open(path, "w", newline="", encoding="utf-8") if path else None
        self.writer = csv.writer(self.file) if self.file else None
        self.first: list[RowError] = []

    def header(self, columns: list[str]) -> None:
        if self.writer:
            self.writer.writerow(["line", "reason", *columns])

    def add(self, error: RowError) -> None:
        if len(self.first) < TABLE_ROWS:
            self.first.append(error)
        if self.writer:
            self.writer.writerow([error.line, error.reason, *error.raw])

    def close(self) -> None:
        if self.file:
            self.file.close()


class Command(BaseCommand):
    help = (
        "Imports historical purchases from a CSV file with a header row: external_id (the customer), "
        "occurred_at (ISO 8601 date or date and time; a date is midnight in the program's time zone) and total; "
        "optional purchase_id, store, channel, currency. Members are created as needed. Points are awarded by "
        "the current rules exactly as recording the purchases one by one in time order would (caps, first and "
        "n-th purchase, budgets, tiers included), unless --no-points. Refused rows are listed with their line "
        "numbers and write nothing; each batch is one transaction; purchase ids already imported are skipped, "
        "so the same file can be run again. See loyalty/imports/__init__.py for the details."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file (UTF-8, a BOM is fine).")
        parser.add_argument("--program", required=True, help="Program slug.")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help="Read COLUMN as FIELD, e.g. --map customer=external_id --map date=occurred_at. Repeatable.",
        )
        parser.add_argument("--no-points", action="store_true", help="Import the history without awarding points.")
        parser.add_argument("--dry-run", action="store_true", help="Validate only; write nothing.")
        parser.add_argument("--errors", metavar="FILE", help="Write the refused rows (line, reason, row) as CSV.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Rows per transaction.")
        parser.add_argument("--delimiter", default=",", help="Column delimiter (default ',').")

    def handle(self, *args, **options):
        program = Program.objects.filter(slug=options["program"]).first()
        if program is None:
            raise CommandError(f"No program with slug {options['program']!r}.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        mapping = self._mapping(options["map"])
        errors = Errors(options["errors"])
        try:
            report = self._import(program, mapping, errors, options)
        finally:
            errors.close()
        self._summary(report, errors, options)

    def _mapping(self, pairs: list[str]) -> dict[str, str]:
        mapping = {}
        for pair in pairs:
            column, sep, field = pair.partition("=")
            if not sep or not column.strip() or not field.strip():
                raise CommandError(f"--map takes COLUMN=FIELD, not {pair!r}.")
            mapping[column.strip()] = field.strip()
        return mapping

    def _import(self, program: Program, mapping: dict[str, str], errors: Errors, options) -> ImportReport:
        try:
            raw = open(options["file"], "rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from exc
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            progress = Progress(self.stderr, raw, os.fstat(raw.fileno()).st_size) if options["verbosity"] else None
            try:
                report = purchases_import(
                    program=program,
                    file=text,
                    mapping=mapping,
                    award_points=not options["no_points"],
                    dry_run=options["dry_run"],
                    batch_size=options["batch_size"],
                    delimiter=options["delimiter"],
                    on_header=errors.header,
                    on_error=errors.add,
                    on_progress=progress,
                )
            except ColumnsError as exc:
                raise CommandError(str(exc)) from exc
            except UnicodeDecodeError as exc:
                raise CommandError(f"{options['file']} is not UTF-8: {exc}.") from exc
            except ImportStopped as exc:
                self._summary(exc.report, errors, options, final=False)
                raise CommandError(
                    f"{exc} Batches before it are imported. Cause: {exc.__cause__!r}. "
                    "Fix the cause and run the same command again: rows already imported are skipped."
                ) from exc
            if progress is not None:
                progress(report, final=True)
        return report

    def _summary(self, report: ImportReport, errors: Errors, options, final: bool = True) -> None:
        if errors.first:
            self.stdout.write(f"{'line':>8}  reason")
            for error in sorted(errors.first, key=lambda error: error.line):
                self.stdout.write(f"{error.line:>8}  {error.reason}")
            if report.rejected > len(errors.first):
                more = f" (all in {options['errors']})" if options["errors"] else " (use --errors FILE for all)"
                self.stdout.write(f"   ... and {report.rejected - len(errors.first):,} more{more}")
        verb = "would import" if options["dry_run"] else "imported"
        points = "" if options["no_points"] or options["dry_run"] else f", {report.points:,} points awarded"
        self.stdout.write(
            f"{report.rows:,} rows: {verb} {report.imported:,}, skipped {report.skipped:,} already imported, "
            f"rejected {report.rejected:,}; {report.members_created:,} new members{points}. "
            f"{report.seconds:,.1f} s, {report.rows_per_second:,.0f} rows/s."
        )
        if final and report.rejected:
            done = "would be imported" if options["dry_run"] else "were imported"
            raise CommandError(f"{report.rejected:,} row(s) rejected; the other rows {done}.")
