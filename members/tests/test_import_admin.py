"""The "Member imports" admin: upload → background check → preview → confirm → done."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

import members.admin_import  # noqa: F401 - registers ImportJobAdmin (members.admin imports it)
from members import tasks
from members.models import Event, ImportJob, Member
from members.tests.factories import EventFactory, MemberFactory, UserFactory, social_manager
from smsadmin.testing.celery_worker import running_worker

pytestmark = pytest.mark.django_db

Status = ImportJob.Status
ADD_URL = reverse("admin:members_importjob_add")
CONTENT = (
    "Phone,First Name,Shirt\n"
    "(415) 555-0100,Ada,M\n"
    "not a phone,Bob,L\n"
    "415.555.0101,Cy,\n"
    "=cmd|' /C calc'!A0,Eve,S\n"
)


@pytest.fixture
def manager_client() -> Client:
    """A Social manager: importing is part of the everyday role, not only the Admins'."""
    client = Client()
    client.force_login(social_manager())
    return client


def job_url(view: str, job: ImportJob) -> str:
    return reverse(f"admin:members_importjob_{view}", args=[job.pk])


def upload(client: Client, content: str = CONTENT, **fields: Any) -> Any:
    data = {"region": "US", "event": "", "new_event_slug": "", **fields}
    data["file"] = SimpleUploadedFile("people.csv", content.encode(), content_type="text/csv")
    return client.post(ADD_URL, data)


def test_social_manager_uploads_previews_confirms_and_the_import_is_done(
    manager_client, queued, media_root, django_capture_on_commit_callbacks
):
    MemberFactory(phone="+14155550101", first_name="Cyrus")
    form_page = manager_client.get(ADD_URL)
    assert form_page.status_code == 200
    assert form_page.context["form"].initial["region"] == "US"

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(manager_client)

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response.url == job_url("change", job)
    assert (len(callbacks), queued) == (1, {"validate": [job.pk], "run": []})
    assert (job.status, job.original_name, job.bytes_total) == (
        Status.UPLOADED, "people.csv", len(CONTENT),
    )  # fmt: skip
    waiting_page = manager_client.get(job_url("change", job))
    assert waiting_page.context["is_running"] is True
    assert b'<progress id="import-progress"' in waiting_page.content
    assert b'<meta http-equiv="refresh" content="3">' in waiting_page.content

    tasks.validate_import_job(job.pk)

    preview = manager_client.get(job_url("change", job))
    assert preview.context["can_confirm"] is True
    assert preview.context["counts"]["created"] == 1
    assert preview.context["counts"]["updated"] == 1
    assert [row["phone"] for row in preview.context["sample_rows"]] == [
        "+14155550100", "+14155550101",
    ]  # fmt: skip
    assert preview.context["job"].errors_preview == [
        {"line": 3, "raw_phone": "not a phone", "reason": "Not a phone number."},
        {"line": 5, "raw_phone": "=cmd|' /C calc'!A0", "reason": "Not a phone number."},
    ]
    page = preview.content.decode()
    assert "<td>3</td><td>not a phone</td><td>Not a phone number.</td>" in page
    assert "Confirm import" in page
    assert Member.objects.count() == 1

    download = manager_client.get(preview.context["rejected_rows_url"])
    assert download["Content-Type"] == "text/csv"
    assert 'filename="rejected-rows-people.csv"' in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows == [
        ["line", "phone", "reason"],
        ["3", "not a phone", "Not a phone number."],
        ["5", "'=cmd|' /C calc'!A0", "Not a phone number."],
    ]

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = manager_client.post(job_url("confirm", job))
    assert confirmed.url == job_url("change", job)
    assert queued["run"] == [job.pk]
    # Until a worker takes it, the page follows a job that waits, and it cannot be
    # confirmed twice.
    job.refresh_from_db()
    assert job.status == Status.QUEUED
    waiting = manager_client.get(job_url("change", job))
    assert (waiting.context["is_running"], waiting.context["can_confirm"]) == (True, False)
    assert manager_client.get(job_url("status", job)).json()["status_label"] == (
        "Waiting for a worker"
    )
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(job_url("confirm", job))
    assert queued["run"] == [job.pk]

    tasks.run_import_job(job.pk)

    job.refresh_from_db()
    assert job.status == Status.DONE
    assert dict(Member.objects.values_list("phone", "first_name")) == {
        "+14155550100": "Ada", "+14155550101": "Cy",
    }  # fmt: skip
    final = manager_client.get(job_url("change", job))
    assert final.context["can_confirm"] is False
    assert "Confirm import" not in final.content.decode()
    assert final.context["counts"]["created"] == 1


@pytest.mark.parametrize(
    "status", [Status.UPLOADED, Status.VALIDATING, Status.IMPORTING, Status.DONE, Status.FAILED]
)
def test_confirm_is_refused_unless_the_job_is_validated(
    manager_client, queued, media_root, django_capture_on_commit_callbacks, status
):  # fmt: skip
    job = ImportJob.objects.create(
        file=SimpleUploadedFile("people.csv", CONTENT.encode()), original_name="people.csv",
        region="US", status=status,
    )  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = manager_client.post(job_url("confirm", job))

    assert response.url == job_url("change", job)
    assert callbacks == []
    assert queued == {"validate": [], "run": []}
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Only a checked file that is ready to import can be confirmed; this one is "
        f"“{job.get_status_display()}”."
    ]
    job.refresh_from_db()
    assert job.status == status
    assert not Member.objects.exists()


def test_confirm_only_accepts_post(manager_client, media_root):
    job = ImportJob.objects.create(
        file=SimpleUploadedFile("people.csv", CONTENT.encode()), original_name="people.csv",
        region="US", status=Status.VALIDATED,
    )  # fmt: skip

    assert manager_client.get(job_url("confirm", job)).status_code == 405


def test_upload_for_an_existing_event_or_a_new_slug(
    manager_client, queued, media_root, django_capture_on_commit_callbacks
):
    EventFactory(slug="gala", name="Gala")
    with django_capture_on_commit_callbacks(execute=True):
        upload(manager_client, event="gala")
        upload(manager_client, new_event_slug="spring-fair")

    assert list(ImportJob.objects.order_by("pk").values_list("event_slug", flat=True)) == [
        "gala", "spring-fair",
    ]  # fmt: skip
    assert list(Event.objects.values_list("slug", flat=True)) == ["gala"]


def test_upload_form_refuses_both_an_event_and_a_new_slug_and_oversized_files(
    manager_client, queued, media_root, settings
):
    EventFactory(slug="gala")
    settings.IMPORT_MAX_BYTES = 10

    response = upload(manager_client, event="gala", new_event_slug="other")

    form = response.context["form"]
    assert form.errors == {
        "file": [
            "The file is 0.0 MB; the largest accepted is 0.0 MB. Split it into smaller files."
        ],
        "__all__": ["Pick an existing event or type a new slug, not both."],
    }
    assert not ImportJob.objects.exists()
    assert queued == {"validate": [], "run": []}


def test_status_endpoint_reports_progress_as_json(manager_client, media_root):
    job = ImportJob.objects.create(
        file=SimpleUploadedFile("people.csv", CONTENT.encode()), original_name="people.csv",
        region="US", status=Status.VALIDATING, bytes_total=200, bytes_read=50, rows_read=1234,
    )  # fmt: skip

    response = manager_client.get(job_url("status", job))

    assert response.json() == {
        "status": "validating", "status_label": "Checking rows", "progress_percent": 25,
        "rows_read": 1234, "is_running": True,
    }  # fmt: skip


def test_failed_job_page_shows_the_reason(manager_client, media_root):
    job = ImportJob.objects.create(
        file=SimpleUploadedFile("people.csv", b"x"), original_name="people.csv", region="US",
        status=Status.FAILED, failure="No phone column: ...",
    )  # fmt: skip

    page = manager_client.get(job_url("change", job))

    assert '<p class="errornote">No phone column: ...</p>' in page.content.decode()
    assert page.context["can_confirm"] is False


def test_staff_without_the_import_permissions_cannot_upload_or_see_jobs(media_root):
    client = Client()
    client.force_login(UserFactory())
    job = ImportJob.objects.create(
        file=SimpleUploadedFile("people.csv", CONTENT.encode()), original_name="people.csv",
        region="US", status=Status.VALIDATED,
    )  # fmt: skip

    assert client.get(ADD_URL).status_code == 403
    assert upload(client).status_code == 403
    assert client.get(job_url("change", job)).status_code == 403
    assert client.get(job_url("status", job)).status_code == 403
    assert client.post(job_url("confirm", job)).status_code == 403
    assert ImportJob.objects.count() == 1


def test_social_manager_role_may_add_and_view_imports_but_not_edit_them():
    user = social_manager()

    assert user.has_perm("members.add_importjob")
    assert user.has_perm("members.view_importjob")
    assert not user.has_perm("members.change_importjob")


def wait_for_status(job: ImportJob, statuses: set[str], timeout: float = 60) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.2)  # a real worker in another process: nothing to fake here
    raise AssertionError(f"import job still {job.status!r} after {timeout} s")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_checks_and_then_imports_an_uploaded_file(media_root, tmp_path):
    client = Client()
    client.force_login(social_manager())
    with running_worker(tmp_path, extra_environment={"MEDIA_ROOT": str(media_root)}) as worker:
        upload(client)
        job = wait_for_status(ImportJob.objects.get(), {Status.VALIDATED, Status.FAILED})
        assert (job.status, job.counts["created"], job.counts["rejected"]) == (
            Status.VALIDATED, 2, 2,
        ), worker.log()  # fmt: skip
        assert not Member.objects.exists()

        client.post(job_url("confirm", job))
        job = wait_for_status(job, {Status.DONE, Status.FAILED})

    assert job.status == Status.DONE, job.failure
    assert dict(Member.objects.values_list("phone", "first_name")) == {
        "+14155550100": "Ada", "+14155550101": "Cy",
    }  # fmt: skip
