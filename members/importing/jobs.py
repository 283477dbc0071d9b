"""The admin's import jobs: upload, validate the file (the preview), confirm, import.

``uploaded → validating → validated → queued → importing → done`` (``failed`` when the file
cannot be read at all); see :class:`members.models.ImportJob`. Each step claims the job
with a conditional UPDATE, so a repeated or concurrent task does nothing twice.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from members.importing.reader import CsvFile, ImportRefused
from members.importing.rows import (
    EMAIL,
    FIRST_MERGE_VALUE,
    FIRST_NAME,
    IS_DAILY,
    LAST_NAME,
    PHONE,
    TIMEZONE,
    ColumnMap,
    RowValidator,
)
from members.importing.services import ImportProgress, ImportSummary, import_members
from members.models import ImportJob

logger = logging.getLogger(__name__)

Status = ImportJob.Status
SAMPLE_ROWS_SCANNED = 1000


def start_import_job(
    *, upload: UploadedFile, region: str, event_slug: str, created_by: Any
) -> ImportJob:
    """Save an uploaded file as a job and validate it in the background (the preview)."""
    from members.tasks import validate_import_job  # here: the tasks module imports this one

    job = ImportJob.objects.create(
        file=upload,
        original_name=(upload.name or "members.csv")[:255],
        region=region.upper(),
        event_slug=event_slug,
        bytes_total=upload.size or 0,
        created_by=created_by,
        heartbeat_at=timezone.now(),
    )
    transaction.on_commit(partial(validate_import_job.delay, job.pk))
    return job


def confirm_import_job(*, job: ImportJob) -> bool:
    """Queue the real import of a validated job; False (and nothing queued) otherwise.

    The job is ``queued`` from here until a worker claims it, so its page follows it
    (and a second confirmation does nothing) even before the worker starts.
    """
    from members.tasks import run_import_job as run_import_job_task  # see start_import_job

    if not ImportJob.objects.filter(pk=job.pk, status=Status.VALIDATED).update(
        status=Status.QUEUED, heartbeat_at=timezone.now()
    ):
        return False
    job.status = Status.QUEUED
    transaction.on_commit(partial(run_import_job_task.delay, job.pk))
    return True


def preview_import_job(*, job: ImportJob) -> ImportSummary | None:
    """Validate the job's file without writing members: counts, rejected rows, report.

    Harmless to repeat until the import starts; returns None when the job is already
    importing, done or failed.
    """
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=[Status.UPLOADED, Status.VALIDATING, Status.VALIDATED]
    ).update(status=Status.VALIDATING, bytes_read=0, rows_read=0, heartbeat_at=timezone.now())
    if not claimed:
        return None
    return _process(job, dry_run=True, running=Status.VALIDATING, finished=Status.VALIDATED)


def run_import_job(*, job: ImportJob) -> ImportSummary | None:
    """Import a confirmed (or validated) job's file. Only one caller ever runs it: returns
    None for the others (and for a job that is not ``queued`` or ``validated``)."""
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=[Status.QUEUED, Status.VALIDATED]
    ).update(status=Status.IMPORTING, bytes_read=0, rows_read=0, heartbeat_at=timezone.now())
    if not claimed:
        return None
    return _process(job, dry_run=False, running=Status.IMPORTING, finished=Status.DONE)


def sample_accepted_rows(*, job: ImportJob, limit: int = 5) -> list[dict[str, Any]]:
    """The first few rows that pass validation, as the members they would become."""
    if not job.file:
        return []
    samples: list[dict[str, Any]] = []
    try:
        with job.file.open("rb") as file:
            csv_file = CsvFile(file)
            columns = ColumnMap.from_header(csv_file.raw_headers)
            validator = RowValidator(columns, region=job.region)
            for scanned, (line, cells, problem) in enumerate(csv_file.rows()):
                if len(samples) >= limit or scanned >= SAMPLE_ROWS_SCANNED:
                    break
                row = validator.validate(line, cells, problem)
                if type(row) is tuple:
                    samples.append(_as_member_values(row, columns))
    except (ImportRefused, OSError):
        return []
    return samples


def _as_member_values(row: tuple[Any, ...], columns: ColumnMap) -> dict[str, Any]:
    return {
        "phone": row[PHONE],
        "first_name": row[FIRST_NAME] or "",
        "last_name": row[LAST_NAME] or "",
        "email": row[EMAIL] or "",
        "timezone": row[TIMEZONE] or "",
        "is_daily_subscriber": row[IS_DAILY],
        "fields": {
            key: value
            for key, value in zip(columns.merge_keys, row[FIRST_MERGE_VALUE:], strict=True)
            if value is not None
        },
    }


def _process(job: ImportJob, *, dry_run: bool, running: str, finished: str) -> ImportSummary | None:
    jobs = ImportJob.objects.filter(pk=job.pk, status=running)
    try:
        with (
            job.file.open("rb") as file,
            tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as report,
            _progress_recorder(job) as record_progress,
        ):
            summary = import_members(
                file=file,
                region=job.region,
                event_slug=job.event_slug,
                dry_run=dry_run,
                error_report=report,
                on_progress=record_progress,
            )
            report_name = _save_error_report(job, report) if summary.rejected else ""
    except ImportRefused as refusal:
        jobs.update(status=Status.FAILED, failure=refusal.message, finished_at=timezone.now())
        return None
    except Exception:
        logger.exception("Member import job %s crashed", job.pk)
        jobs.update(
            status=Status.FAILED,
            failure="The import stopped on an unexpected error; nothing was imported. "
            "The error is in the worker's log.",
            finished_at=timezone.now(),
        )
        raise
    jobs.update(
        status=finished,
        counts=summary.counts(),
        errors_preview=summary.rejected_rows_as_dicts(),
        error_report=report_name,
        rows_read=summary.rows,
        bytes_read=job.bytes_total or _file_size(job),
        failure="",
        finished_at=timezone.now() if finished == Status.DONE else None,
    )
    job.refresh_from_db()
    return summary


def _file_size(job: ImportJob) -> int:
    try:
        return job.file.size
    except OSError:
        return 0


def _save_error_report(job: ImportJob, report: Any) -> str:
    report.seek(0)
    if job.error_report:  # from an earlier run of the same step
        job.error_report.delete(save=False)
    stem = job.original_name.rsplit(".", 1)[0] or "import"
    name = f"rejected-rows-{job.pk}-{stem}.csv"
    job.error_report.save(name, File(report), save=False)
    return job.error_report.name


# How often a running job shows it is alive, even in a long phase without progress (the
# final merge of a big file): well inside IMPORT_STALE_SECONDS.
HEARTBEAT_SECONDS = 30


@contextmanager
def _progress_recorder(job: ImportJob) -> Iterator[Any]:
    """A callback that stores progress where the admin's status page can see it now, and
    (on PostgreSQL) a thread that touches the job's heartbeat while it runs.

    On PostgreSQL the import runs in one long transaction (and its connection is busy
    streaming COPY), so progress goes through a second connection, in autocommit.
    """
    side_connection: BaseDatabaseWrapper | None = None
    if connection.vendor == "postgresql":
        side_connection = connections.create_connection(DEFAULT_DB_ALIAS)
    recorder = side_connection or connection
    table = ImportJob._meta.db_table
    lock = threading.Lock()  # the side connection is shared with the heartbeat thread

    def record(progress: ImportProgress) -> None:
        with lock, recorder.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET bytes_read = %s, rows_read = %s, heartbeat_at = %s "  # noqa: S608
                "WHERE id = %s",
                [progress.bytes_read, progress.rows_read, timezone.now(), job.pk],
            )

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                with lock, recorder.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET heartbeat_at = %s WHERE id = %s",  # noqa: S608
                        [timezone.now(), job.pk],
                    )
            except Exception:  # a missed beat is no reason to stop the import
                logger.warning("Could not touch import job %s's heartbeat", job.pk)

    heart = threading.Thread(target=beat, name=f"import-{job.pk}-heartbeat", daemon=True)
    if side_connection is not None:
        side_connection.inc_thread_sharing()  # one at a time, under the lock
        heart.start()
    try:
        yield record
    finally:
        stop.set()
        if heart.is_alive():
            heart.join()
        if side_connection is not None:
            side_connection.dec_thread_sharing()
            side_connection.close()
