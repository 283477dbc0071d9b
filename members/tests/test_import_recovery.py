"""Import jobs whose worker vanished are queued again by beat; live ones are left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from members.importing import jobs
from members.importing.recovery import resume_stale_import_jobs
from members.models import ImportJob, Member
from members.tests.test_import_jobs import make_job

Status = ImportJob.Status
pytestmark = pytest.mark.django_db


def stale(settings, seconds: int = 1) -> timezone.datetime:
    return timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + seconds)


def test_a_job_left_importing_by_a_dead_worker_is_queued_again_and_then_imports(
    settings, media_root, queued, django_capture_on_commit_callbacks
):
    job = make_job(status=Status.IMPORTING, heartbeat_at=stale(settings))

    with django_capture_on_commit_callbacks(execute=True):
        assert resume_stale_import_jobs() == [job.pk]

    job.refresh_from_db()
    assert job.status == Status.QUEUED
    assert timezone.now() - job.heartbeat_at < timedelta(seconds=5)
    assert queued == {"validate": [], "run": [job.pk]}
    # What the queued task then does: the whole file, once (nothing was committed before).
    assert jobs.run_import_job(job=job) is not None
    job.refresh_from_db()
    assert job.status == Status.DONE
    assert Member.objects.count() == 2


def test_a_lost_check_starts_over(settings, media_root, queued, django_capture_on_commit_callbacks):
    validating = make_job(status=Status.VALIDATING, heartbeat_at=stale(settings))
    never_started = make_job(status=Status.UPLOADED, heartbeat_at=stale(settings))

    with django_capture_on_commit_callbacks(execute=True):
        resumed = resume_stale_import_jobs()

    assert sorted(resumed) == sorted([validating.pk, never_started.pk])
    assert set(ImportJob.objects.values_list("status", flat=True)) == {Status.UPLOADED}
    assert sorted(queued["validate"]) == sorted(resumed)
    assert queued["run"] == []


def test_live_finished_and_waiting_jobs_are_left_alone(settings, media_root, queued):
    live = make_job(status=Status.IMPORTING, heartbeat_at=stale(settings, seconds=-30))
    done = make_job(status=Status.DONE, heartbeat_at=stale(settings, seconds=3600))
    ready = make_job(status=Status.VALIDATED, heartbeat_at=stale(settings, seconds=3600))

    assert resume_stale_import_jobs() == []

    assert dict(ImportJob.objects.values_list("pk", "status")) == {
        live.pk: Status.IMPORTING,
        done.pk: Status.DONE,
        ready.pk: Status.VALIDATED,  # waits for a person to confirm it, not for a worker
    }
    assert queued == {"validate": [], "run": []}


def test_a_job_from_before_heartbeats_counts_from_its_creation(settings, media_root, queued):
    old = make_job(status=Status.QUEUED, heartbeat_at=None, created_at=stale(settings))
    new = make_job(status=Status.QUEUED, heartbeat_at=None)

    assert resume_stale_import_jobs() == [old.pk]
    assert ImportJob.objects.get(pk=new.pk).heartbeat_at is None


def test_a_second_beat_does_not_queue_a_resumed_job_again(
    settings, media_root, queued, django_capture_on_commit_callbacks
):
    job = make_job(status=Status.QUEUED, heartbeat_at=stale(settings))

    with django_capture_on_commit_callbacks(execute=True):
        first = resume_stale_import_jobs()
        second = resume_stale_import_jobs()

    assert (first, second, queued["run"]) == ([job.pk], [], [job.pk])


@pytest.mark.django_db(transaction=True)
def test_a_running_import_touches_its_heartbeat_even_without_progress(monkeypatch, media_root):
    """The final merge of a big file reports no progress: the heartbeat thread still
    shows the job alive."""
    import threading

    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    job = make_job(status=Status.IMPORTING, heartbeat_at=timezone.now() - timedelta(days=1))
    seen = threading.Event()

    with jobs._progress_recorder(job):
        for _ in range(100):
            job.refresh_from_db(fields=["heartbeat_at"])
            if timezone.now() - job.heartbeat_at < timedelta(seconds=5):
                seen.set()
                break
            threading.Event().wait(0.05)

    assert seen.is_set()
