"""The CSV member import: one function that reads, validates, reports and writes.

Used by the ``import_members`` command and, through :mod:`members.importing.jobs`, by the
admin's upload → preview → confirm flow.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, TextIO

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from members.importing.parallel import default_process_count, validated_batches
from members.importing.reader import CsvFile, ImportRefused, RawRow
from members.importing.rows import ColumnMap, RowError, RowValidator
from members.importing.writers import MemberWriter, writer_for_database
from members.spreadsheet import FormulaSafeCsvWriter

BATCH_SIZE = 2000
REJECTED_ROWS_KEPT = 100
PROGRESS_INTERVAL_SECONDS = 0.5
ERROR_REPORT_HEADER = ("line", "phone", "reason")


@dataclass(frozen=True)
class ImportProgress:
    bytes_read: int
    bytes_total: int
    rows_read: int


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do). Member counts are by phone."""

    dry_run: bool
    event_slug: str = ""
    rows: int = 0  # data rows read, blank lines not counted
    created: int = 0
    updated: int = 0
    duplicates: int = 0  # rows whose phone appears again later in the file
    rejected: int = 0
    opted_out: int = 0  # imported phones with an active opt-out (left in place)
    suppressed: int = 0  # imported phones with an active suppression (left in place)
    registered: int = 0  # new registrations for the event
    encoding: str = ""
    delimiter: str = ""
    merge_fields: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected_rows: list[RowError] = field(default_factory=list)  # the first ones only

    def counts(self) -> dict[str, Any]:
        """Everything but the rejected rows, as JSON-ready values (``ImportJob.counts``)."""
        values = asdict(self)
        del values["rejected_rows"]
        return values

    def rejected_rows_as_dicts(self) -> list[dict[str, Any]]:
        return [row._asdict() for row in self.rejected_rows]

    def line(self) -> str:
        """The one-line summary, e.g. for the command's output."""
        counts = (
            f"created {self.created}, updated {self.updated}, duplicates {self.duplicates}, "
            f"rejected {self.rejected}, opted out {self.opted_out}, "
            f"suppressed {self.suppressed}"
        )
        if self.event_slug:
            counts += f", registered {self.registered} for {self.event_slug}"
        verb = "Dry run, nothing written" if self.dry_run else "Imported"
        return f"{verb}: {self.rows} rows: {counts}."


def import_members(
    *,
    file: BinaryIO,
    region: str,
    event_slug: str = "",
    dry_run: bool = False,
    error_report: TextIO | None = None,
    on_progress: Callable[[ImportProgress], None] | None = None,
    writer_class: type[MemberWriter] | None = None,
    validation_processes: int | None = None,
) -> ImportSummary:
    """Import the members of a CSV file; raise :class:`ImportRefused` for a fatal problem.

    ``file`` is a seekable binary file. Rejected rows are written to ``error_report`` (a
    formula-safe CSV: line, phone, reason) and the first ones kept in the summary.
    ``writer_class`` defaults to the database's writer; ``validation_processes`` to
    worker processes for big files (0: validate in this process).
    """
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ImportRefused(f"Unknown region {region!r}: use a two-letter code such as US.")
    if event_slug:
        try:
            validate_slug(event_slug)
        except ValidationError:
            raise ImportRefused(
                f"Invalid event slug {event_slug!r}: use letters, numbers, - and _."
            ) from None
    bytes_total = _size_of(file)
    if bytes_total > settings.IMPORT_MAX_BYTES:
        raise ImportRefused(
            f"The file is {_megabytes(bytes_total)}; the largest accepted is "
            f"{_megabytes(settings.IMPORT_MAX_BYTES)} (IMPORT_MAX_BYTES). Split it."
        )
    csv_file = CsvFile(file)
    columns = ColumnMap.from_header(csv_file.raw_headers)
    summary = ImportSummary(
        dry_run=dry_run,
        event_slug=event_slug,
        encoding=csv_file.encoding,
        delimiter=csv_file.delimiter_name,
        merge_fields=list(columns.merge_keys),
        notes=list(csv_file.notes),
    )
    rejected = _RejectedRows(summary, error_report)
    progress = _ProgressReporter(on_progress, csv_file, bytes_total)
    if validation_processes is None:
        validation_processes = default_process_count(bytes_total)
    writer_class = writer_class or writer_for_database()
    accepted = 0
    with (
        _long_lived_objects_left_out_of_garbage_collection(),
        writer_class(
            merge_keys=columns.merge_keys, event_slug=event_slug, dry_run=dry_run
        ) as writer,
        # closing: worker processes stop at once when writing fails, not at collection.
        closing(
            validated_batches(
                _batches(csv_file.rows(), max_rows=settings.IMPORT_MAX_ROWS),
                RowValidator(columns, region=region),
                processes=validation_processes,
            )
        ) as results,
    ):
        for valid, errors in results:
            writer.write(valid)
            accepted += len(valid)
            rejected.add(errors)
            progress.report(rows_read=accepted + summary.rejected)
        written = writer.finish()
    progress.report(rows_read=accepted + summary.rejected, force=True)
    summary.rows = accepted + summary.rejected
    summary.created = written.created
    summary.updated = written.updated
    summary.duplicates = accepted - written.created - written.updated
    summary.registered = written.registered
    summary.opted_out = written.opted_out
    summary.suppressed = written.suppressed
    return summary


@contextmanager
def _long_lived_objects_left_out_of_garbage_collection() -> Iterator[None]:
    """Full collections would walk the phone metadata (millions of objects) again and
    again while rows are validated, costing a quarter of the time: freeze what exists."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def write_error_report_header(stream: TextIO) -> FormulaSafeCsvWriter:
    writer = FormulaSafeCsvWriter(stream)
    writer.writerow(ERROR_REPORT_HEADER)
    return writer


class _RejectedRows:
    """Counts rejected rows, keeps the first ones and writes them all to the report."""

    def __init__(self, summary: ImportSummary, report: TextIO | None) -> None:
        self._summary = summary
        self._report = write_error_report_header(report) if report is not None else None

    def add(self, errors: list[RowError]) -> None:
        if not errors:
            return
        summary = self._summary
        summary.rejected += len(errors)
        room = REJECTED_ROWS_KEPT - len(summary.rejected_rows)
        if room > 0:
            summary.rejected_rows.extend(errors[:room])
        if self._report is not None:
            self._report.writerows(errors)


class _ProgressReporter:
    def __init__(
        self,
        callback: Callable[[ImportProgress], None] | None,
        csv_file: CsvFile,
        bytes_total: int,
    ) -> None:
        self._callback = callback
        self._csv_file = csv_file
        self._bytes_total = bytes_total
        self._last_report = time.monotonic()

    def report(self, *, rows_read: int, force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_INTERVAL_SECONDS:
            self._last_report = now
            self._callback(
                ImportProgress(
                    bytes_read=self._csv_file.bytes_read,
                    bytes_total=self._bytes_total,
                    rows_read=rows_read,
                )
            )


def _batches(rows: Iterator[RawRow], *, max_rows: int) -> Iterator[list[RawRow]]:
    """The rows in batches; refuse the file at the first row over ``max_rows``."""
    batch: list[RawRow] = []
    for count, row in enumerate(rows, start=1):
        if count > max_rows:
            raise ImportRefused(
                f"The file has more than {max_rows:,} data rows (IMPORT_MAX_ROWS). "
                "Split it into smaller files; nothing was imported."
            )
        batch.append(row)
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def _size_of(file: BinaryIO) -> int:
    position = file.tell()
    size = file.seek(0, 2)
    file.seek(position)
    return size


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB"
