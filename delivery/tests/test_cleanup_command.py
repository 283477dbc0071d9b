"""``manage.py cleanup`` and ``remove_expired_data``: what is past its retention goes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from delivery import retention
from delivery.archive import archiving
from delivery.models import Attempt, Batch, InboundMessage, Message
from delivery.retention import remove_expired_data
from delivery.tests.factories import MessageFactory
from members.models import ImportJob

pytestmark = pytest.mark.django_db
Status = Message.Status
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=401)
RECENT = NOW - timedelta(days=399)
NOTHING = {
    "inbound_messages": 0,
    "messages": 0,
    "attempts": 0,
    "import_jobs": 0,
    "import_files": 0,
    "archived_message_parts": 0,
    "archived_inbound_parts": 0,
    "unverified_parts": 0,
}


@pytest.fixture(autouse=True)
def retention_days(settings):
    settings.MESSAGE_RETENTION_DAYS = 400
    settings.INBOUND_RETENTION_DAYS = 400
    settings.IMPORT_RETENTION_DAYS = 30


@pytest.fixture(autouse=True)
def archive_root(settings, tmp_path):
    """Archived rows go to a temporary folder (the local-folder storage)."""
    root = tmp_path / "archive"
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "allow_overwrite": True},
        },
    }
    return root


def message(status: str, finished_at: datetime, **fields) -> Message:
    return MessageFactory(
        status=status, created_at=finished_at, status_updated_at=finished_at, **fields
    )


def attempt(of: Message) -> Attempt:
    return Attempt.objects.create(
        message=of, started_at=of.created_at, duration_ms=80, outcome=Attempt.Outcome.ACCEPTED
    )


def inbound(received_at: datetime, **fields) -> InboundMessage:
    sequence = InboundMessage.objects.count()
    return InboundMessage.objects.create(
        message_sid=f"SMin{sequence:030d}",
        from_phone="+14155550100",
        to="+15005550006",
        body="Thanks!",
        received_at=received_at,
        **fields,
    )


def import_job(status: str, finished_at: datetime, *, report: bool = True) -> ImportJob:
    job = ImportJob.objects.create(
        file=ContentFile(b"phone\n+14155550100\n", name="members.csv"),
        original_name="members.csv",
        region="US",
        status=status,
        created_at=finished_at - timedelta(minutes=5),
        finished_at=finished_at,
    )
    if report:
        job.error_report.save("members-errors.csv", ContentFile(b"row,problem\n"), save=True)
    return job


def stored(job: ImportJob) -> list[bool]:
    """Whether its upload and its error report are in storage."""
    return [bool(f.name) and f.storage.exists(f.name) for f in (job.file, job.error_report)]


def test_old_finished_messages_go_with_their_attempts(media_root):
    finished = [message(status, OLD) for status in retention.FINAL_STATUSES]
    unfinished = [
        message(status, OLD)
        for status in (Status.PENDING, Status.SENDING, Status.ACCEPTED, Status.SENT)
    ]
    recent = message(Status.DELIVERED, RECENT)
    for each in [*finished, *unfinished, recent]:
        attempt(each)

    removed = remove_expired_data(now=NOW)

    assert removed == NOTHING | {"messages": 4, "attempts": 4, "archived_message_parts": 1}
    kept = {*unfinished, recent}
    assert set(Message.objects.all()) == kept
    assert set(Attempt.objects.values_list("message_id", flat=True)) == {m.pk for m in kept}
    assert Batch.objects.count() == 4 + 4 + 1  # batches are never removed


def test_messages_are_deleted_in_chunks(media_root, monkeypatch):
    monkeypatch.setattr(archiving, "DELETE_CHUNK_SIZE", 2)
    for _ in range(5):
        message(Status.DELIVERED, OLD)

    assert remove_expired_data(now=NOW)["messages"] == 5
    assert not Message.objects.exists()


def test_old_inbound_texts_go_and_links_to_removed_replies_are_cleared(media_root):
    old_reply = message(Status.DELIVERED, OLD)
    recent_reply = message(Status.DELIVERED, RECENT)
    old_text = inbound(OLD, reply=old_reply)
    recent_text_with_old_reply = inbound(RECENT, reply=old_reply)
    recent_text = inbound(RECENT, reply=recent_reply)

    removed = remove_expired_data(now=NOW)

    assert removed == NOTHING | {
        "inbound_messages": 1,
        "messages": 1,
        "archived_inbound_parts": 1,
        "archived_message_parts": 1,
    }
    assert not InboundMessage.objects.filter(pk=old_text.pk).exists()
    recent_text_with_old_reply.refresh_from_db()
    assert recent_text_with_old_reply.reply is None
    recent_text.refresh_from_db()
    assert recent_text.reply == recent_reply
    assert list(Message.objects.all()) == [recent_reply]


def test_old_finished_imports_go_with_their_files(media_root):
    now = timezone.now()
    old = [
        import_job(ImportJob.Status.DONE, now - timedelta(days=31)),
        import_job(ImportJob.Status.FAILED, now - timedelta(days=31), report=False),
    ]
    running = import_job(ImportJob.Status.IMPORTING, now - timedelta(days=31))
    recent = import_job(ImportJob.Status.DONE, now - timedelta(days=29))
    assert stored(old[0]) == [True, True]

    removed = remove_expired_data(now=now)

    assert removed == NOTHING | {"import_jobs": 2, "import_files": 3}
    assert set(ImportJob.objects.all()) == {running, recent}
    assert [stored(job) for job in old] == [[False, False], [False, False]]
    assert stored(running) == stored(recent) == [True, True]
    assert len(list(media_root.rglob("*.csv"))) == 4  # the two kept jobs' files only


def test_a_dry_run_counts_and_changes_nothing(media_root, archive_root):
    now = timezone.now()
    gone = message(Status.FAILED, now - timedelta(days=401))
    attempt(gone)
    inbound(now - timedelta(days=401), reply=gone)
    job = import_job(ImportJob.Status.DONE, now - timedelta(days=31))
    out = StringIO()

    call_command("cleanup", "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        "Outbound messages to remove (finished, older than 400 days): 1",
        "Send attempts of those messages to remove: 1",
        "Inbound texts to remove (older than 400 days): 1",
        "Member imports to remove (older than 30 days): 1",
        "Import files to remove from storage: 2",
        "Archive parts to write: outbound messages 1, inbound texts 1",
        "Dry run: nothing was written or deleted.",
    ]
    assert not archive_root.exists()
    assert (Message.objects.count(), Attempt.objects.count()) == (1, 1)
    assert InboundMessage.objects.get().reply == gone
    assert stored(job) == [True, True]
    assert ImportJob.objects.count() == 1


def test_the_command_removes_and_lists_the_counts(media_root):
    now = timezone.now()
    for _ in range(3):
        attempt(message(Status.DELIVERED, now - timedelta(days=401)))
    message(Status.PENDING, now - timedelta(days=401))
    inbound(now - timedelta(days=500))
    out = StringIO()

    call_command("cleanup", stdout=out)

    assert out.getvalue().splitlines() == [
        "Outbound messages removed (finished, older than 400 days): 3",
        "Send attempts of those messages removed: 3",
        "Inbound texts removed (older than 400 days): 1",
        "Member imports removed (older than 30 days): 0",
        "Import files removed from storage: 0",
        "Archive parts written: outbound messages 1, inbound texts 1",
    ]
    assert list(Message.objects.values_list("status", flat=True)) == [Status.PENDING]
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "RETENTION_DAYS",
        "MESSAGE_RETENTION_DAYS",
        "INBOUND_RETENTION_DAYS",
        "IMPORT_RETENTION_DAYS",
    ],
)
@pytest.mark.parametrize("days", ["0", "-5"])
def test_a_retention_of_no_days_refuses_to_start(name, days):
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "smsadmin.settings", name: days}
    loaded = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.DEBUG"],
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode != 0
    assert f"ImproperlyConfigured: {name} must be 1 or more" in loaded.stderr
    assert f"not {days}." in loaded.stderr


def test_retention_days_is_the_default_of_both_message_retentions():
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "smsadmin.settings",
        "RETENTION_DAYS": "90",
        "INBOUND_RETENTION_DAYS": "30",
    }
    environment.pop("MESSAGE_RETENTION_DAYS", None)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; "
            "print(settings.MESSAGE_RETENTION_DAYS, settings.INBOUND_RETENTION_DAYS)",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.stdout.split() == ["90", "30"], loaded.stderr
