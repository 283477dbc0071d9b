"""Reads about messages: how far a batch has got, and why some failed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from delivery.errors import describe_error
from delivery.models import Batch, Message
from delivery.status import FINAL_STATUSES

Status = Message.Status


@dataclass(frozen=True)
class FailureGroup:
    code: int | None
    reason: str
    count: int


@dataclass(frozen=True)
class BatchProgress:
    total: int
    counts: dict[str, int]
    finished: int
    percent: int
    delivery_rate: float | None
    failures: list[FailureGroup] = field(default_factory=list)
    # Pending messages held for later (quiet hours, retry back-off), and the next release.
    deferred: int = 0
    next_release_at: datetime | None = None

    @property
    def waiting(self) -> int:
        return self.counts.get(Status.PENDING, 0) + self.counts.get(Status.SENDING, 0)


def status_counts(batch_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """How many messages each batch has in each status (every status, zeros included).

    Two indexed GROUP BYs: pending rows are counted in ``message_pending_idx`` and the
    rest in ``message_batch_status_idx``, which leaves pending out (see Message.Meta).
    """
    ids = list(batch_ids)
    counts = {batch_id: dict.fromkeys(Status.values, 0) for batch_id in ids}
    messages = Message.objects.order_by().filter(batch_id__in=ids)
    for batch_id, count in (
        messages.filter(status=Status.PENDING).values_list("batch_id").annotate(Count("id"))
    ):
        counts[batch_id][Status.PENDING] = count
    for batch_id, status, count in (
        messages.exclude(status=Status.PENDING)
        .values_list("batch_id", "status")
        .annotate(Count("id"))
    ):
        counts[batch_id][status] = count
    return counts


PendingRow = tuple[int, datetime, datetime | None]

# Batch to batch through message_pending_idx (batch, id), one probe per batch that has
# pending messages, then each such batch's first rows by id (the same index, in order).
_OLDEST_PENDING_SQL = """
    WITH RECURSIVE batches(batch_id) AS (
        (SELECT batch_id FROM delivery_message WHERE status = 'pending'
         ORDER BY batch_id LIMIT 1)
        UNION ALL
        SELECT (
            SELECT m.batch_id FROM delivery_message m
            WHERE m.status = 'pending' AND m.batch_id > b.batch_id
            ORDER BY m.batch_id LIMIT 1
        )
        FROM batches b WHERE b.batch_id IS NOT NULL
    )
    SELECT head.id, head.created_at, head.send_after
    FROM batches b
    CROSS JOIN LATERAL (
        SELECT m.id, m.created_at, m.send_after FROM delivery_message m
        WHERE m.batch_id = b.batch_id AND m.status = 'pending' {due}
        ORDER BY m.id LIMIT %s
    ) head
    ORDER BY head.id LIMIT %s
"""


def oldest_pending(*, limit: int, due_by: datetime | None = None) -> list[PendingRow]:
    """The first ``limit`` pending messages by id, as (id, created_at, send_after); with
    ``due_by``, only those due by then (no ``send_after``, or one not after it).

    Pending rows are indexed per batch only (``message_pending_idx``), so on PostgreSQL
    this skips from batch to batch in that index and merges each batch's first rows: at
    most ``limit`` rows of each batch with pending messages, where "pending ORDER BY id"
    would read every pending row or walk the primary key past every message already sent.
    """
    if connection.vendor != "postgresql":
        pending = Message.objects.filter(status=Status.PENDING)
        if due_by is not None:
            pending = pending.filter(Q(send_after__isnull=True) | Q(send_after__lte=due_by))
        return list(pending.order_by("id").values_list("id", "created_at", "send_after")[:limit])
    due = "AND (m.send_after IS NULL OR m.send_after <= %s)" if due_by is not None else ""
    params = [due_by] if due_by is not None else []
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot know how few batches have pending rows: its estimate of
        # (batches times limit) rows would JIT-compile the query, 250 ms for a 60 ms read.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_OLDEST_PENDING_SQL.format(due=due), [*params, limit, limit])
        return list(cursor.fetchall())


def batch_progress(batch: Batch | int) -> BatchProgress:
    """Counts per status (indexed GROUP BYs), progress and failures by error code."""
    batch_id = batch if isinstance(batch, int) else batch.pk
    messages = Message.objects.filter(batch_id=batch_id).order_by()
    counts = status_counts([batch_id])[batch_id]
    total = sum(counts.values())
    finished = sum(counts[status] for status in FINAL_STATUSES)
    delivered = counts[Status.DELIVERED]
    reported = delivered + counts[Status.UNDELIVERED] + counts[Status.FAILED]
    failures = [
        FailureGroup(
            code=row["error_code"], reason=describe_error(row["error_code"]), count=row["count"]
        )
        for row in messages.filter(status__in=[Status.FAILED, Status.UNDELIVERED])
        .values("error_code")
        .annotate(count=Count("id"))
        .order_by("-count", "error_code")
    ]
    held = messages.filter(status=Status.PENDING, send_after__gt=timezone.now()).aggregate(
        count=Count("id"), next_release_at=Min("send_after")
    )
    return BatchProgress(
        deferred=held["count"],
        next_release_at=held["next_release_at"],
        total=total,
        counts=counts,
        finished=finished,
        percent=int(100 * finished / total) if total else 0,
        delivery_rate=delivered / reported if reported else None,
        failures=failures,
    )
