"""Celery tasks of the members app: thin, they load by id and call a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from members.importing import jobs, recovery
from members.importing.services import ImportSummary
from members.models import ImportJob


@shared_task(name="members.validate_import_job")
def validate_import_job(job_id: int) -> dict[str, Any]:
    """Check every row of an uploaded file without writing members: the preview."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return {"job": job_id, "status": "missing"}
    return _result(job, jobs.preview_import_job(job=job))


@shared_task(name="members.run_import_job")
def run_import_job(job_id: int) -> dict[str, Any]:
    """Import a validated file; a repeated or concurrent run does nothing."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return {"job": job_id, "status": "missing"}
    return _result(job, jobs.run_import_job(job=job))


@shared_task(name="members.resume_stale_import_jobs")
def resume_stale_import_jobs() -> list[int]:
    """Queue again the imports whose worker vanished (beat, every minute)."""
    return recovery.resume_stale_import_jobs()


def _result(job: ImportJob, summary: ImportSummary | None) -> dict[str, Any]:
    job.refresh_from_db(fields=["status"])
    result: dict[str, Any] = {"job": job.pk, "status": job.status}
    if summary is not None:
        result.update(rows=summary.rows, rejected=summary.rejected)
    return result
