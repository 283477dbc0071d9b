"""Remove data past its retention: finished outbound messages with their attempts,
inbound texts, and member imports with their files (``MESSAGE_RETENTION_DAYS``,
``INBOUND_RETENTION_DAYS``, both ``RETENTION_DAYS`` by default, and
``IMPORT_RETENTION_DAYS``).

Messages and inbound texts are archived to object storage first and deleted only once
their archive part has been read back and checked (``delivery.archive``, which explains
why a crash at any point neither loses nor duplicates a row). Rows go in chunks of ids,
each its own short DELETE, so a million-row cleanup never holds one giant transaction
or lock. Batches stay: campaigns and daily messages point at them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from delivery.archive import KINDS, archive_and_delete, parts_to_write
from delivery.models import Attempt, InboundMessage, Message
from delivery.status import FINAL_STATUSES
from members.models import ImportJob

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5_000

# Imports that nothing is working on any more: an unconfirmed preview is abandoned by then.
# One still uploaded, validating or importing is left alone.
FINISHED_IMPORT_STATUSES = (
    ImportJob.Status.DONE,
    ImportJob.Status.FAILED,
    ImportJob.Status.VALIDATED,
)


def remove_expired_data(*, now: datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Archive and delete (or with ``dry_run`` only count) what is past its retention;
    how many of each kind: messages, attempts, inbound_messages, import_jobs,
    import_files, the archive parts written (archived_message_parts,
    archived_inbound_parts) and those that did not verify, whose rows stay
    (unverified_parts)."""
    now = now or timezone.now()
    # A Counter adds up the unverified parts of both kinds; every other key is one's own.
    removed: Counter[str] = Counter()
    # Inbound first: fewer reply links are left to clear when their messages go.
    removed.update(
        _remove_inbound(
            received_before=now - timedelta(days=settings.INBOUND_RETENTION_DAYS),
            dry_run=dry_run,
        )
    )
    removed.update(
        _remove_messages(
            finished_before=now - timedelta(days=settings.MESSAGE_RETENTION_DAYS),
            dry_run=dry_run,
        )
    )
    removed.update(
        _remove_imports(
            finished_before=now - timedelta(days=settings.IMPORT_RETENTION_DAYS),
            dry_run=dry_run,
        )
    )
    if removed["unverified_parts"]:
        logger.error(
            "%s archive parts did not verify; their rows were kept", removed["unverified_parts"]
        )
    if not dry_run:
        logger.info("Removed expired data: %s", dict(removed))
    return dict(removed)


def _remove_messages(*, finished_before: datetime, dry_run: bool) -> dict[str, int]:
    # A final status never changes again, so status_updated_at is when it finished.
    expired = Message.objects.filter(
        status__in=FINAL_STATUSES, status_updated_at__lt=finished_before
    )
    kind = KINDS["messages"]
    if dry_run:
        return {
            "messages": expired.count(),
            "attempts": Attempt.objects.filter(message__in=expired).count(),
            "archived_message_parts": parts_to_write(kind=kind, expired=expired),
            "unverified_parts": 0,
        }
    # Django's delete removes the attempts (CASCADE) and clears inbound reply links
    # (SET_NULL) chunk by chunk, and refuses if anything PROTECTs a message.
    run = archive_and_delete(kind=kind, expired=expired)
    return {
        "messages": run.deleted[Message._meta.label],
        "attempts": run.deleted[Attempt._meta.label],
        "archived_message_parts": run.parts,
        "unverified_parts": run.failed_parts,
    }


def _remove_inbound(*, received_before: datetime, dry_run: bool) -> dict[str, int]:
    expired = InboundMessage.objects.filter(received_at__lt=received_before)
    kind = KINDS["inbound"]
    if dry_run:
        return {
            "inbound_messages": expired.count(),
            "archived_inbound_parts": parts_to_write(kind=kind, expired=expired),
            "unverified_parts": 0,
        }
    run = archive_and_delete(kind=kind, expired=expired)
    return {
        "inbound_messages": run.deleted[InboundMessage._meta.label],
        "archived_inbound_parts": run.parts,
        "unverified_parts": run.failed_parts,
    }


def _remove_imports(*, finished_before: datetime, dry_run: bool) -> dict[str, int]:
    expired = (
        ImportJob.objects.filter(status__in=FINISHED_IMPORT_STATUSES)
        .alias(finished=Coalesce("finished_at", "created_at"))
        .filter(finished__lt=finished_before)
    )
    jobs = files = 0
    for ids in _chunks_of_ids(expired):
        removable = []
        for job in ImportJob.objects.filter(pk__in=ids).only("pk", "file", "error_report"):
            try:
                files += _remove_files(job, dry_run=dry_run)
            except OSError:
                # The row stays, so the next run tries its files again.
                logger.warning(
                    "Could not delete the files of member import %s", job.pk, exc_info=True
                )
                continue
            removable.append(job.pk)
        if dry_run:
            jobs += len(removable)
        else:
            jobs += ImportJob.objects.filter(pk__in=removable).delete()[0]
    return {"import_jobs": jobs, "import_files": files}


def _remove_files(job: ImportJob, *, dry_run: bool) -> int:
    removed = 0
    for stored in (job.file, job.error_report):
        if stored.name and stored.storage.exists(stored.name):
            if not dry_run:
                stored.storage.delete(stored.name)
            removed += 1
    return removed


def _chunks_of_ids(queryset: models.QuerySet[Any]) -> Iterator[list[int]]:
    """The queryset's ids in ascending chunks of ``CHUNK_SIZE``, each read when needed."""
    last_id = 0
    while ids := list(
        queryset.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:CHUNK_SIZE]
    ):
        yield ids
        last_id = ids[-1]
