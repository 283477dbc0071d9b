"""The numbers on the admin index: messages per day, delivery rate, why texts failed.

The message table grows by a campaign's worth of rows at a time and has no index on
``created_at``. Ids grow with ``created_at``, so the window is found once as an id (one
backward scan of the primary key through the window's rows only) and every other query
reads ``id > boundary``: its cost is bounded by the window, not by the table.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from delivery.errors import describe_error
from delivery.models import Message
from delivery.selectors import status_counts
from delivery.status import FINAL_STATUSES

Status = Message.Status

CHART_DAYS = 14
RATE_DAYS = 7
TOP_FAILURES = 5


@dataclass(frozen=True)
class StatusGroup:
    """One colour of the stacked bars: a few statuses staff read as one thing."""

    key: str
    label: str
    statuses: tuple[str, ...]


# Bottom to top of each bar. Every status is in exactly one group, so a bar's height is
# the day's number of messages.
STATUS_GROUPS = (
    StatusGroup("delivered", "Delivered", (Status.DELIVERED,)),
    StatusGroup("sent", "Sent or accepted", (Status.SENT, Status.ACCEPTED)),
    StatusGroup("failed", "Failed or undelivered", (Status.FAILED, Status.UNDELIVERED)),
    StatusGroup("canceled", "Canceled", (Status.CANCELED,)),
    StatusGroup("pending", "Pending or sending", (Status.PENDING, Status.SENDING)),
)
_GROUP_OF_STATUS = {status: group.key for group in STATUS_GROUPS for status in group.statuses}
REPORTED_STATUSES = (Status.DELIVERED, Status.UNDELIVERED, Status.FAILED)


@dataclass(frozen=True)
class DayCounts:
    day: datetime.date
    counts: dict[str, int]  # by status group key
    delivered: int
    reported: int  # delivered + undelivered + failed

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def delivery_rate(self) -> float | None:
        return self.delivered / self.reported if self.reported else None


@dataclass(frozen=True)
class FailureReason:
    code: int | None
    reason: str
    count: int


@dataclass(frozen=True)
class MessageDashboard:
    days: list[DayCounts]  # oldest first, CHART_DAYS of them, today last
    failures: list[FailureReason]  # most frequent first, last RATE_DAYS days

    @property
    def today(self) -> DayCounts:
        return self.days[-1]

    @property
    def rate_days(self) -> list[DayCounts]:
        return self.days[-RATE_DAYS:]

    @property
    def delivery_rate_today(self) -> float | None:
        return self.today.delivery_rate

    @property
    def delivery_rate_week(self) -> float | None:
        delivered = sum(day.delivered for day in self.rate_days)
        reported = sum(day.reported for day in self.rate_days)
        return delivered / reported if reported else None

    @property
    def failures_total(self) -> int:
        return sum(failure.count for failure in self.failures)


def message_dashboard(*, now: datetime.datetime | None = None) -> MessageDashboard:
    """Per local day and status for two weeks, and the week's top failures: three queries."""
    now = now or timezone.now()
    zone = timezone.get_current_timezone()
    today = timezone.localdate(now, zone)
    chart_start_day = today - datetime.timedelta(days=CHART_DAYS - 1)
    rate_start_day = today - datetime.timedelta(days=RATE_DAYS - 1)
    chart_start = _local_midnight(chart_start_day, zone)
    rate_start = _local_midnight(rate_start_day, zone)

    window = Message.objects.order_by().filter(
        id__gt=_last_id_before(chart_start), created_at__gte=chart_start
    )

    counts = {
        chart_start_day + datetime.timedelta(days=offset): dict.fromkeys(Status.values, 0)
        for offset in range(CHART_DAYS)
    }
    rows = (
        window.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "status")
        .annotate(count=Count("id"))
    )
    for row in rows:
        if row["day"] in counts:  # a clock set ahead could create rows "tomorrow"
            counts[row["day"]][row["status"]] += row["count"]

    failures = [
        FailureReason(
            code=row["error_code"], reason=describe_error(row["error_code"]), count=row["count"]
        )
        for row in window.filter(
            created_at__gte=rate_start, status__in=[Status.FAILED, Status.UNDELIVERED]
        )
        .values("error_code")
        .annotate(count=Count("id"))
        .order_by("-count", "error_code")[:TOP_FAILURES]
    ]
    return MessageDashboard(
        days=[_day_counts(day, by_status) for day, by_status in counts.items()],
        failures=failures,
    )


def batches_percent(batch_ids: Iterable[int]) -> dict[int, int]:
    """How far each batch has got, as ``batch_progress`` counts it (batches with messages)."""
    percents = {}
    for batch_id, counts in status_counts(batch_ids).items():
        total = sum(counts.values())
        if total:
            finished = sum(counts[status] for status in FINAL_STATUSES)
            percents[batch_id] = int(100 * finished / total)
    return percents


def _last_id_before(moment: datetime.datetime) -> int:
    """The newest message created before ``moment``; 0 when there is none."""
    last = (
        Message.objects.filter(created_at__lt=moment)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return last or 0


def _local_midnight(day: datetime.date, zone: datetime.tzinfo) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min), zone)


def _day_counts(day: datetime.date, by_status: dict[str, int]) -> DayCounts:
    by_group = dict.fromkeys((group.key for group in STATUS_GROUPS), 0)
    for status, count in by_status.items():
        by_group[_GROUP_OF_STATUS[status]] += count
    return DayCounts(
        day=day,
        counts=by_group,
        delivered=by_status[Status.DELIVERED],
        reported=sum(by_status[status] for status in REPORTED_STATUSES),
    )
