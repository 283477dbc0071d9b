"""Archiving before deleting: to a real S3 wire protocol (moto's server on loopback)
and to the local folder; verified before anything is deleted; crash-safe; restorable."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import boto3
import pytest
import time_machine
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from moto.server import ThreadedMotoServer

from delivery.archive import archiving, parts
from delivery.models import Attempt, Batch, InboundMessage, Message
from delivery.retention import remove_expired_data
from delivery.status import FINAL_STATUSES
from delivery.tests.factories import MessageFactory

pytestmark = pytest.mark.django_db
Status = Message.Status
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY_ONE = datetime(2025, 4, 26, 23, 30, tzinfo=UTC)  # 401 days and a bit before NOW
DAY_TWO = datetime(2025, 4, 27, 8, 15, tzinfo=UTC)
RECENT = NOW - timedelta(days=399)
MESSAGE_COLUMNS = [field.attname for field in Message._meta.concrete_fields]
INBOUND_COLUMNS = [field.attname for field in InboundMessage._meta.concrete_fields]


class Crash(Exception):
    """The process dying at this point."""


@pytest.fixture(scope="session")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Bucket:
    """The test's bucket, seen through boto3 (not through our code)."""

    def __init__(self, endpoint: str) -> None:
        self.name = f"archive-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.client.create_bucket(Bucket=self.name)

    def object_keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name)
        return sorted(entry["Key"] for entry in listed.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def rows(self, key: str) -> list[dict]:
        return [json.loads(line) for line in gzip.decompress(self.get(key)).splitlines()]

    def archived_ids(self, kind: str) -> list[int]:
        """Every id in every data object of this kind, duplicates included."""
        return sorted(
            row["id"]
            for key in self.object_keys()
            if key.startswith(f"{kind}/") and key.endswith(".jsonl.gz")
            for row in self.rows(key)
        )


@pytest.fixture
def bucket(settings, moto_endpoint):
    bucket = Bucket(moto_endpoint)
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "endpoint_url": moto_endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "file_overwrite": True,
            },
        },
    }
    return bucket


@pytest.fixture(autouse=True)
def small_parts(settings):
    settings.MESSAGE_RETENTION_DAYS = 400
    settings.INBOUND_RETENTION_DAYS = 400
    settings.ARCHIVE_PART_ROWS = 2


def finished(at: datetime, status: str = Status.DELIVERED, **fields) -> Message:
    sent = MessageFactory(status=status, created_at=at, status_updated_at=at, **fields)
    Attempt.objects.create(
        message=sent, started_at=at, duration_ms=80, outcome=Attempt.Outcome.ACCEPTED
    )
    return sent


def inbound(at: datetime, **fields) -> InboundMessage:
    return InboundMessage.objects.create(
        message_sid=f"SM{uuid.uuid4().hex}",
        from_phone="+14155550100",
        to="+15005550006",
        body="Thanks! Ünïcode too",
        received_at=at,
        **fields,
    )


def columns(model, names, ids) -> list[dict]:
    return list(model.objects.filter(pk__in=ids).order_by("pk").values(*names))


def restore(day: str, *extra: str) -> list[str]:
    out = StringIO()
    call_command("restore_archive", day, *extra, stdout=out)
    return out.getvalue().splitlines()


def test_expired_rows_are_archived_verified_deleted_and_restored(bucket):
    day_one = [finished(DAY_ONE, status) for status in (Status.DELIVERED, Status.FAILED)]
    day_one.append(finished(DAY_ONE + timedelta(minutes=10), Status.CANCELED))
    day_two = [finished(DAY_TWO, Status.UNDELIVERED)]
    untouched = [finished(DAY_ONE, Status.SENT), finished(DAY_ONE, Status.PENDING)]
    untouched.append(finished(RECENT))
    texts = [inbound(DAY_ONE, reply=day_one[0]), inbound(DAY_TWO)]
    recent_text = inbound(RECENT)
    archived = [*day_one, *day_two]
    ids = [m.pk for m in archived]
    before = columns(Message, MESSAGE_COLUMNS, ids)
    inbound_before = columns(InboundMessage, INBOUND_COLUMNS, [t.pk for t in texts])

    removed = remove_expired_data(now=NOW)

    assert removed == {
        "inbound_messages": 2,
        "messages": 4,
        "attempts": 4,
        "import_jobs": 0,
        "import_files": 0,
        "archived_inbound_parts": 2,
        "archived_message_parts": 3,
        "unverified_parts": 0,
    }
    assert bucket.object_keys() == [
        "inbound/2025/04/26/part-0001.jsonl.gz",
        "inbound/2025/04/26/part-0001.manifest.json",
        "inbound/2025/04/27/part-0001.jsonl.gz",
        "inbound/2025/04/27/part-0001.manifest.json",
        "messages/2025/04/26/part-0001.jsonl.gz",
        "messages/2025/04/26/part-0001.manifest.json",
        "messages/2025/04/26/part-0002.jsonl.gz",
        "messages/2025/04/26/part-0002.manifest.json",
        "messages/2025/04/27/part-0001.jsonl.gz",
        "messages/2025/04/27/part-0001.manifest.json",
    ]
    first = bucket.rows("messages/2025/04/26/part-0001.jsonl.gz")
    assert [row["id"] for row in first] == ids[:2]
    assert set(first[0]) == {*MESSAGE_COLUMNS, "batch", "send_attempts"}
    assert first[0]["created_at"] == "2025-04-26T23:30:00+00:00"
    assert first[0]["batch"] == {"kind": "campaign", "label": day_one[0].batch.label}
    assert [a["outcome"] for a in first[0]["send_attempts"]] == ["accepted"]
    manifest = json.loads(bucket.get("messages/2025/04/26/part-0001.manifest.json"))
    assert (manifest["rows"], manifest["ids"]) == (2, ids[:2])
    assert manifest["ids_sha256"] == parts.ids_checksum(ids[:2])
    assert set(Message.objects.all()) == set(untouched)
    assert list(InboundMessage.objects.all()) == [recent_text]

    assert restore("2025-04-26") == [
        "Outbound messages of 2025-04-26: 3 restored, 0 skipped (already there), from 2 parts",
        "Inbound texts of 2025-04-26: 1 restored, 0 skipped (already there), from 1 parts",
    ]
    assert restore("2025-04-27", "--kind", "messages") == [
        "Outbound messages of 2025-04-27: 1 restored, 0 skipped (already there), from 1 parts",
    ]
    assert columns(Message, MESSAGE_COLUMNS, ids) == before
    assert Attempt.objects.filter(message_id__in=ids).count() == 4
    assert columns(InboundMessage, INBOUND_COLUMNS, [texts[0].pk]) == inbound_before[:1]
    # Restored messages are finished: nothing will send them again.
    assert not Message.objects.filter(pk__in=ids).exclude(status__in=FINAL_STATUSES).exists()

    assert restore("2025-04-26", "--kind", "messages") == [
        "Outbound messages of 2025-04-26: 0 restored, 3 skipped (already there), from 2 parts",
    ]


def test_restored_rows_go_again_at_the_next_cleanup_without_a_second_copy(bucket):
    archived = [finished(DAY_ONE) for _ in range(3)]
    remove_expired_data(now=NOW)
    restore("2025-04-26")
    keys = bucket.object_keys()

    removed = remove_expired_data(now=NOW)

    assert (removed["messages"], removed["archived_message_parts"]) == (3, 0)
    assert bucket.object_keys() == keys
    assert bucket.archived_ids("messages") == [m.pk for m in archived]


def test_the_archive_goes_to_a_local_folder_by_default(settings, tmp_path):
    default = settings.STORAGES["archive"]
    assert default["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert default["OPTIONS"]["location"] == settings.ARCHIVE_ROOT
    assert str(settings.ARCHIVE_ROOT).endswith("var/archive")
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {**default, "OPTIONS": {**default["OPTIONS"], "location": tmp_path}},
    }
    sent = finished(DAY_ONE)
    text = inbound(DAY_TWO)

    remove_expired_data(now=NOW)

    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "inbound/2025/04/27/part-0001.jsonl.gz",
        "inbound/2025/04/27/part-0001.manifest.json",
        "messages/2025/04/26/part-0001.jsonl.gz",
        "messages/2025/04/26/part-0001.manifest.json",
    ]
    assert not Message.objects.exists()
    assert restore("2025-04-27", "--kind", "inbound") == [
        "Inbound texts of 2025-04-27: 1 restored, 0 skipped (already there), from 1 parts",
    ]
    assert InboundMessage.objects.get().message_sid == text.message_sid
    assert restore("2025-04-26")[0].startswith("Outbound messages of 2025-04-26: 1 restored")
    assert Message.objects.get().pk == sent.pk


def crash_before_verifying(monkeypatch):
    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(parts, "read_part", crash)


def crash_before_deleting(monkeypatch):
    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(archiving, "delete_archived", crash)


def crash_mid_delete(monkeypatch):
    delete = archiving.delete_archived

    def crash(rows, ids):
        delete(rows, ids[:1])
        raise Crash

    monkeypatch.setattr(archiving, "delete_archived", crash)


@pytest.mark.parametrize(
    "crash_at", [crash_before_verifying, crash_before_deleting, crash_mid_delete]
)
def test_a_rerun_after_a_crash_archives_and_deletes_every_row_exactly_once(
    bucket, monkeypatch, crash_at
):
    messages = [finished(DAY_ONE) for _ in range(3)]
    texts = [inbound(DAY_ONE) for _ in range(3)]
    untouched = finished(DAY_ONE, Status.SENT)
    with monkeypatch.context() as crashing:
        crash_at(crashing)
        with pytest.raises(Crash):
            remove_expired_data(now=NOW)
    assert InboundMessage.objects.count() >= 2  # the crash came in the first part

    remove_expired_data(now=NOW)
    remove_expired_data(now=NOW)  # and once more: nothing left to do, nothing doubled

    assert list(Message.objects.all()) == [untouched]
    assert not InboundMessage.objects.exists()
    assert bucket.archived_ids("inbound") == [t.pk for t in texts]
    assert bucket.archived_ids("messages") == [m.pk for m in messages]
    assert [key for key in bucket.object_keys() if key.endswith(".jsonl.gz")] == [
        "inbound/2025/04/26/part-0001.jsonl.gz",
        "inbound/2025/04/26/part-0002.jsonl.gz",
        "messages/2025/04/26/part-0001.jsonl.gz",
        "messages/2025/04/26/part-0002.jsonl.gz",
    ]
    restore("2025-04-26")
    assert Message.objects.count() == 4
    assert InboundMessage.objects.count() == 3


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def drop_a_row(data: bytes) -> bytes:
    lines = gzip.decompress(data).splitlines(keepends=True)
    return gzip.compress(b"".join(lines[1:]))


@pytest.mark.parametrize("damage", [truncate, drop_a_row])
def test_a_part_that_does_not_read_back_right_keeps_its_rows(bucket, monkeypatch, damage):
    messages = [finished(DAY_ONE) for _ in range(2)]
    write = parts.write_part

    def write_then_damage(storage, folder, number, part):
        write(storage, folder, number, part)
        bucket.put(parts.data_name(folder, number), damage(part.data))

    with monkeypatch.context() as damaging:
        damaging.setattr(parts, "write_part", write_then_damage)
        removed = remove_expired_data(now=NOW)

        assert (removed["messages"], removed["attempts"]) == (0, 0)
        assert (removed["archived_message_parts"], removed["unverified_parts"]) == (0, 1)
        assert Message.objects.count() == Attempt.objects.count() == 2
        with (
            time_machine.travel(NOW, tick=False),
            pytest.raises(CommandError, match="1 archive parts did not verify"),
        ):
            call_command("cleanup", stdout=StringIO())
        assert Message.objects.count() == 2

    # Undamaged, the next run rewrites the same part and only then deletes.
    removed = remove_expired_data(now=NOW)

    assert (removed["messages"], removed["unverified_parts"]) == (2, 0)
    assert bucket.object_keys() == [
        "messages/2025/04/26/part-0001.jsonl.gz",
        "messages/2025/04/26/part-0001.manifest.json",
    ]
    assert bucket.archived_ids("messages") == [m.pk for m in messages]


def test_a_damaged_part_whose_rows_are_gone_stops_that_day_and_is_reported(bucket):
    gone = finished(DAY_ONE)
    remove_expired_data(now=NOW)
    bucket.put("messages/2025/04/26/part-0001.jsonl.gz", b"not gzip")
    later = finished(DAY_ONE)
    other_day = finished(DAY_TWO)

    removed = remove_expired_data(now=NOW)

    # The damaged part may be the only copy of ``gone``: it is neither rewritten nor
    # joined by a new part of that day; other days go on.
    assert (removed["messages"], removed["unverified_parts"]) == (1, 1)
    assert list(Message.objects.all()) == [later]
    assert bucket.get("messages/2025/04/26/part-0001.jsonl.gz") == b"not gzip"
    assert [key for key in bucket.object_keys() if key.startswith("messages/2025/04/26/")] == [
        "messages/2025/04/26/part-0001.jsonl.gz",
        "messages/2025/04/26/part-0001.manifest.json",
    ]
    assert [row["id"] for row in bucket.rows("messages/2025/04/27/part-0001.jsonl.gz")] == [
        other_day.pk
    ]
    assert gone.pk not in Message.objects.values_list("pk", flat=True)


def test_a_dry_run_writes_nothing_and_counts_the_parts(bucket):
    for _ in range(3):
        finished(DAY_ONE)
    inbound(DAY_TWO)

    removed = remove_expired_data(now=NOW, dry_run=True)

    assert (removed["archived_message_parts"], removed["archived_inbound_parts"]) == (2, 1)
    assert (removed["messages"], removed["inbound_messages"]) == (3, 1)
    assert bucket.object_keys() == []
    assert (Message.objects.count(), InboundMessage.objects.count()) == (3, 1)


def test_a_message_whose_batch_is_gone_and_a_text_whose_reply_is_gone_are_restored(bucket):
    orphan = finished(DAY_ONE)
    reply = finished(DAY_TWO)
    text = inbound(DAY_ONE, reply=reply)
    remove_expired_data(now=NOW)
    Batch.objects.filter(pk=orphan.batch_id).delete()

    lines = restore("2025-04-26")  # the reply, archived on 2025-04-27, stays out

    assert lines == [
        "Outbound messages of 2025-04-26: 1 restored, 0 skipped (already there), from 1 parts",
        "Inbound texts of 2025-04-26: 1 restored, 0 skipped (already there), from 1 parts",
    ]
    assert Message.objects.get().pk == orphan.pk
    assert not Batch.objects.filter(pk=orphan.batch_id).exists()
    assert InboundMessage.objects.get(pk=text.pk).reply_id is None


def test_restore_refuses_a_bad_date_and_a_day_with_nothing_archived(bucket):
    with pytest.raises(CommandError, match="Not a date"):
        restore("2025-13-01")
    with pytest.raises(CommandError, match="Nothing archived for 2025-04-26"):
        restore("2025-04-26")


def test_in_the_local_folder_a_part_left_without_its_manifest_is_rewritten_in_place(
    settings, tmp_path, monkeypatch
):
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "allow_overwrite": True},
        },
    }
    messages = [finished(DAY_ONE) for _ in range(3)]

    def data_then_crash(storage, folder, number, part):
        storage.save(parts.data_name(folder, number), ContentFile(part.data[:10]))
        raise Crash

    with monkeypatch.context() as crashing:
        crashing.setattr(parts, "write_part", data_then_crash)
        with pytest.raises(Crash):
            remove_expired_data(now=NOW)
    assert Message.objects.count() == 3

    removed = remove_expired_data(now=NOW)

    assert (removed["messages"], removed["archived_message_parts"]) == (3, 2)
    folder = tmp_path / "messages/2025/04/26"
    assert sorted(p.name for p in folder.iterdir()) == [
        "part-0001.jsonl.gz",
        "part-0001.manifest.json",
        "part-0002.jsonl.gz",
        "part-0002.manifest.json",
    ]
    archived = [
        json.loads(line)["id"]
        for name in ("part-0001.jsonl.gz", "part-0002.jsonl.gz")
        for line in gzip.decompress((folder / name).read_bytes()).splitlines()
    ]
    assert archived == [m.pk for m in messages]
