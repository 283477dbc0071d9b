"""Hostile CSV files through the admin's upload form, with a logged-in staff member: the
check runs (here, at once instead of on a worker) and the job's page names the problem."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

import members.admin_import  # noqa: F401 - registers ImportJobAdmin
from members import tasks
from members.models import ImportJob, Member

pytestmark = pytest.mark.django_db
Status = ImportJob.Status
ADD_URL = reverse("admin:members_importjob_add")
PNG_START = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


@pytest.fixture(autouse=True)
def checks_run_at_once(monkeypatch, media_root):
    monkeypatch.setattr(tasks.validate_import_job, "delay", tasks.validate_import_job)
    monkeypatch.setattr(tasks.run_import_job, "delay", tasks.run_import_job)


def upload(client, content: bytes, django_capture_on_commit_callbacks, name="people.csv"):
    data = {
        "region": "US",
        "event": "",
        "new_event_slug": "",
        "file": SimpleUploadedFile(name, content, content_type="text/csv"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(ADD_URL, data)


def job_page(client, job: ImportJob) -> str:
    response = client.get(reverse("admin:members_importjob_change", args=[job.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (PNG_START, "binary file"),
        ("phone,first_name\n4155550100,Ada\n".encode("utf-16-le"), "UTF-16 text without a byte"),
        (b"phone" + b"," * 1_000_000 + b"\n", "1000001 columns"),
        (b"\xef\xbb\xbf", "The file is empty"),
        (b'phone,"first_name\n4155550100,Ada\n', "never closed"),
    ],
    ids=["png", "utf16-no-bom", "million-columns", "bom-only", "unclosed-quote-in-header"],
)
def test_an_unreadable_upload_fails_with_the_reason_on_its_page(
    staff_client, django_capture_on_commit_callbacks, content, named
):
    response = upload(staff_client, content, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == Status.FAILED
    assert named in job.failure
    assert named in job_page(staff_client, job)
    assert not Member.objects.exists()


def test_an_empty_upload_is_refused_by_the_form(staff_client, django_capture_on_commit_callbacks):
    response = upload(staff_client, b"", django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert response.context["form"].errors["file"]
    assert not ImportJob.objects.exists()


def test_an_upload_one_byte_over_the_limit_is_refused_by_the_form(
    staff_client, settings, django_capture_on_commit_callbacks
):
    content = b"phone,first_name\n4155550100,Ada\n"
    settings.IMPORT_MAX_BYTES = len(content) - 1
    response = upload(staff_client, content, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert "the largest accepted is" in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()


def test_bad_rows_are_previewed_and_their_report_is_formula_safe(
    staff_client, django_capture_on_commit_callbacks
):
    good = "".join(f"41555{number:05d},Name{number}\n" for number in range(5000))
    content = (
        ("phone,first_name,note\n" + good).encode()
        + b"=cmd|' /C calc'!A0,Eve,x\n"
        + b"4155559999,Nu\x00l,x\n"
        + b'4155559998,Fay,"+SUM(1)"\n'
    )
    upload(staff_client, content, django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    assert job.status == Status.VALIDATED
    assert (job.counts["rejected"], job.counts["created"]) == (2, 5001)
    reasons = [row["reason"] for row in job.errors_preview]
    assert any("NUL" in reason for reason in reasons)
    assert "NUL character" in job_page(staff_client, job)
    download = staff_client.get(reverse("admin:members_importjob_rejected_rows", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[1][1] == "'=cmd|' /C calc'!A0"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:members_importjob_confirm", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Status.DONE
    assert Member.objects.count() == 5001
    assert Member.objects.get(phone="+14155559998").fields == {"note": "+SUM(1)"}
    assert not Member.objects.filter(phone="+14155559999").exists()
