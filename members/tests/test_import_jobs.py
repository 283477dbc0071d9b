"""Import jobs (the admin's flow without the pages): preview, claim, import, fail."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import DEFAULT_DB_ALIAS, connections

from members.importing import jobs, services
from members.models import ImportJob, Member
from members.tests.factories import MemberFactory

Status = ImportJob.Status

CONTENT = (
    "phone,first_name,city\n"
    "4155550100,Ada,Oakland\n"
    "not a phone,Bob,\n"
    "4155550101,Cy,\n"
    "4155550100,Ada again,\n"
)


def make_job(content: str | bytes = CONTENT, **fields: Any) -> ImportJob:
    data = content.encode() if isinstance(content, str) else content
    fields.setdefault("region", "US")
    return ImportJob.objects.create(
        file=ContentFile(data, name="members.csv"),
        original_name="members.csv",
        bytes_total=len(data),
        **fields,
    )


def report_rows(job: ImportJob) -> list[list[str]]:
    with job.error_report.open("rb") as file:
        return list(csv.reader(io.StringIO(file.read().decode())))


@pytest.mark.django_db
def test_preview_checks_every_row_without_writing_members(media_root):
    MemberFactory(phone="+14155550101")
    job = make_job()

    summary = jobs.preview_import_job(job=job)

    job.refresh_from_db()
    assert summary is not None
    assert job.status == Status.VALIDATED
    assert (job.rows_read, job.bytes_read, job.finished_at) == (4, job.bytes_total, None)
    assert {key: job.counts[key] for key in ("created", "updated", "duplicates", "rejected")} == {
        "created": 1, "updated": 1, "duplicates": 1, "rejected": 1,
    }  # fmt: skip
    assert job.counts["dry_run"] is True
    assert job.errors_preview == [
        {"line": 3, "raw_phone": "not a phone", "reason": "Not a phone number."}
    ]
    assert report_rows(job) == [
        ["line", "phone", "reason"],
        ["3", "not a phone", "Not a phone number."],
    ]
    assert list(Member.objects.values_list("phone", flat=True)) == ["+14155550101"]


@pytest.mark.django_db
def test_preview_of_a_file_without_rejected_rows_has_no_report(media_root):
    job = make_job("phone\n4155550100\n")

    jobs.preview_import_job(job=job)

    job.refresh_from_db()
    assert (job.status, job.errors_preview, job.error_report.name) == (Status.VALIDATED, [], "")


@pytest.mark.django_db
def test_repeating_the_preview_is_harmless(media_root):
    job = make_job()
    jobs.preview_import_job(job=job)
    job.refresh_from_db()
    first_counts = job.counts

    jobs.preview_import_job(job=job)

    job.refresh_from_db()
    assert (job.status, job.counts) == (Status.VALIDATED, first_counts)
    assert [path.name for path in (media_root / "imports" / "reports").rglob("*.csv")] == [
        job.error_report.name.rsplit("/", 1)[-1]
    ]
    assert not Member.objects.exists()


@pytest.mark.django_db
def test_unreadable_file_fails_the_job_with_the_reason(media_root):
    job = make_job(b"\x00\x01\x02binary")

    summary = jobs.preview_import_job(job=job)

    job.refresh_from_db()
    assert summary is None
    assert job.status == Status.FAILED
    assert job.failure.startswith("This is a binary file, not a CSV text file")
    assert job.finished_at is not None


@pytest.mark.django_db
def test_file_without_phone_column_fails_the_job_naming_the_headers(media_root):
    job = make_job("name,email\nAda,a@example.org\n")

    jobs.preview_import_job(job=job)

    job.refresh_from_db()
    assert (job.status, job.failure) == (
        Status.FAILED,
        "No phone column: name one column phone, mobile, phone_number or cell. "
        "Headers found: 'name', 'email'.",
    )


@pytest.mark.django_db
def test_confirmed_import_runs_once_however_often_it_is_started(media_root):
    job = make_job()
    jobs.preview_import_job(job=job)

    first = jobs.run_import_job(job=job)
    second = jobs.run_import_job(job=job)

    job.refresh_from_db()
    assert first is not None
    assert second is None
    assert job.status == Status.DONE
    assert job.finished_at is not None
    assert (job.counts["created"], job.counts["dry_run"]) == (2, False)
    assert dict(Member.objects.values_list("phone", "first_name")) == {
        "+14155550100": "Ada again", "+14155550101": "Cy",
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.UPLOADED, Status.VALIDATING, Status.FAILED, Status.DONE])
def test_only_a_validated_job_can_be_imported(media_root, status):
    job = make_job(status=status)

    assert jobs.run_import_job(job=job) is None

    job.refresh_from_db()
    assert job.status == status
    assert not Member.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.IMPORTING, Status.DONE, Status.FAILED])
def test_preview_leaves_a_job_alone_once_the_import_started(media_root, status):
    job = make_job(status=status, counts={"created": 7})

    assert jobs.preview_import_job(job=job) is None

    job.refresh_from_db()
    assert (job.status, job.counts) == (status, {"created": 7})


@pytest.mark.django_db
def test_import_refused_half_way_fails_the_job_and_writes_nothing(media_root, settings):
    job = make_job()
    jobs.preview_import_job(job=job)
    settings.IMPORT_MAX_ROWS = 2

    jobs.run_import_job(job=job)

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.failure.startswith("The file has more than 2 data rows")
    assert not Member.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_to_other_connections_while_the_file_is_read(media_root, monkeypatch):
    content = "phone\n" + "".join(f"415555{index:04d}\n" for index in range(10))
    job = make_job(content)
    monkeypatch.setattr(services, "BATCH_SIZE", 3)
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    seen_elsewhere: list[int] = []
    observer = connections.create_connection(DEFAULT_DB_ALIAS)
    real_import_members = jobs.import_members

    def import_members_observed(**options: Any) -> Any:
        record_progress = options["on_progress"]

        def on_progress(progress: services.ImportProgress) -> None:
            record_progress(progress)
            with observer.cursor() as cursor:
                cursor.execute("SELECT rows_read FROM members_importjob WHERE id = %s", [job.pk])
                seen_elsewhere.append(cursor.fetchone()[0])

        return real_import_members(**{**options, "on_progress": on_progress})

    monkeypatch.setattr(jobs, "import_members", import_members_observed)
    try:
        jobs.preview_import_job(job=job)
    finally:
        observer.close()

    assert seen_elsewhere == [3, 6, 9, 10, 10]
