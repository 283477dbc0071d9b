"""``manage.py import_members PATH [--event SLUG] [--region CC] [--dry-run]``."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from members.importing.reader import ImportRefused
from members.importing.services import ImportProgress, ImportSummary, import_members

REJECTED_ROWS_PRINTED = 20
PROGRESS_EVERY_SECONDS = 2.0


class Command(BaseCommand):
    help = (
        "Import members from a CSV file (comma, semicolon or tab; UTF-8, UTF-16 or "
        "Windows-1252). Prints one summary line and the first rejected rows; exits "
        "non-zero only when the file cannot be read at all."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path, help="the CSV file")
        parser.add_argument(
            "--event", default="", metavar="SLUG", help="register every row for this event"
        )
        parser.add_argument(
            "--region",
            default=settings.DEFAULT_PHONE_REGION,
            metavar="CC",
            help="region of numbers written without +country code (default: %(default)s)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and report, write nothing"
        )
        parser.add_argument(
            "--report",
            type=Path,
            metavar="PATH",
            help="write every rejected row to this CSV file (line, phone, reason)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        report_path: Path | None = options["report"]
        try:
            with path.open("rb") as file:
                report = (
                    report_path.open("w", encoding="utf-8", newline="") if report_path else None
                )
                try:
                    summary = import_members(
                        file=file,
                        region=options["region"],
                        event_slug=options["event"],
                        dry_run=options["dry_run"],
                        error_report=report,
                        on_progress=self._progress_printer(),
                    )
                finally:
                    if report is not None:
                        report.close()
        except ImportRefused as refusal:
            raise CommandError(f"{path}: {refusal.message}") from None
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror or error}") from None
        self._print_summary(summary, report_path)

    def _progress_printer(self) -> Any:
        last_printed = time.monotonic()

        def print_progress(progress: ImportProgress) -> None:
            nonlocal last_printed
            now = time.monotonic()
            if now - last_printed < PROGRESS_EVERY_SECONDS:
                return
            last_printed = now
            percent = 100 * progress.bytes_read // max(progress.bytes_total, 1)
            self.stderr.write(f"read {progress.rows_read:,} rows ({percent}%)")

        return print_progress

    def _print_summary(self, summary: ImportSummary, report_path: Path | None) -> None:
        self.stdout.write(summary.line())
        for note in summary.notes:
            self.stdout.write(note)
        if not summary.rejected:
            return
        shown = summary.rejected_rows[:REJECTED_ROWS_PRINTED]
        self.stdout.write(f"Rejected rows (first {len(shown)} of {summary.rejected}):")
        for row in shown:
            self.stdout.write(f"  line {row.line}: {row.raw_phone!r}: {row.reason}")
        if report_path:
            self.stdout.write(f"Every rejected row is in {report_path}.")
