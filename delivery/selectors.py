"""Reads about messages: how far a batch has got, and why some failed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min
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
