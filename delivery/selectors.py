"""Reads about messages: how far a batch has got, and why some failed."""

from __future__ import annotations

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


def batch_progress(batch: Batch | int) -> BatchProgress:
    """Counts per status (one indexed GROUP BY), progress and failures by error code."""
    batch_id = batch if isinstance(batch, int) else batch.pk
    messages = Message.objects.filter(batch_id=batch_id).order_by()
    counts = dict.fromkeys(Status.values, 0)
    for row in messages.values("status").annotate(count=Count("id")):
        counts[row["status"]] = row["count"]
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
