"""Remove data past its retention: finished outbound messages with their attempts,
inbound texts, and member imports with their files (``MESSAGE_RETENTION_DAYS``,
``INBOUND_RETENTION_DAYS``, ``IMPORT_RETENTION_DAYS``).

Rows go in chunks of ids, each its own short DELETE, so a million-row cleanup never holds
one giant transaction or lock. Batches stay: campaigns and daily messages point at them.
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
    """Delete (or with ``dry_run`` only count) what is past its retention; how many of
    each kind: messages, attempts, inbound_messages, import_jobs, import_files."""
    now = now or timezone.now()
    removed: dict[str, int] = {}
    # Inbound first: fewer reply links are left to clear when their messages go.
    removed["inbound_messages"] = _remove_inbound(
        received_before=now - timedelta(days=settings.INBOUND_RETENTION_DAYS), dry_run=dry_run
    )
    removed |= _remove_messages(
        finished_before=now - timedelta(days=settings.MESSAGE_RETENTION_DAYS), dry_run=dry_run
    )
    removed |= _remove_imports(
        finished_before=now - timedelta(days=settings.IMPORT_RETENTION_DAYS), dry_run=dry_run
    )
    if not dry_run:
        logger.info("Removed expired data: %s", removed)
    return removed


def _remove_messages(*, finished_before: datetime, dry_run: bool) -> dict[str, int]:
    # A final status never changes again, so status_updated_at is when it finished.
    expired = Message.objects.filter(
        status__in=FINAL_STATUSES, status_updated_at__lt=finished_before
    )
    if dry_run:
        return {
            "messages": expired.count(),
            "attempts": Attempt.objects.filter(message__in=expired).count(),
        }
    # Django's delete removes the attempts (CASCADE) and clears inbound reply links
    # (SET_NULL) chunk by chunk, and refuses if anything PROTECTs a message.
    deleted: Counter[str] = Counter()
    for ids in _chunks_of_ids(expired):
        _, per_model = expired.filter(pk__in=ids).only("pk").delete()
        deleted.update(per_model)
    return {
        "messages": deleted[Message._meta.label],
        "attempts": deleted[Attempt._meta.label],
    }


def _remove_inbound(*, received_before: datetime, dry_run: bool) -> int:
    expired = InboundMessage.objects.filter(received_at__lt=received_before)
    if dry_run:
        return expired.count()
    deleted = 0
    for ids in _chunks_of_ids(expired):
        deleted += expired.filter(pk__in=ids).delete()[0]
    return deleted


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
