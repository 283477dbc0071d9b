"""Handing the daily message to the delivery pipeline, each subscriber at their own time.

Every run (beat, every couple of minutes) finds the subscriber groups whose send time
has come (:mod:`positivity.due`), and adds their messages to the batch of their local
date's :class:`DailyMessage` in one ``INSERT … SELECT``. The batch's unique (batch,
phone) index makes that exactly one message per subscriber per local date, whatever
overlaps: two runs at once, a run repeated after a worker died, a fall-back hour that
happens twice. Sending, rate limits, the opt-out check at claim time and status
callbacks are the delivery pipeline's, as for any batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from delivery.dispatch import dispatch_batch
from delivery.models import Batch, Message
from delivery.segments import analyze
from members.models import Member
from positivity.due import SubscriberGroup, due_day, in_polite_hours
from positivity.models import DailyMessage
from positivity.writer import write_daily_message

logger = logging.getLogger(__name__)

# A subscriber confirmed this recently waits for the next run, so that the confirmation
# is on its way before the first daily message.
CONFIRMATION_LEAD = timedelta(seconds=60)
# How long a run waits for a day's message that another process is writing (an AI call
# with its retries usually takes seconds); past it, the next run sends it.
WRITING_WAIT_SECONDS = 60.0


@dataclass(slots=True)
class DeliveryRun:
    """What one run did, for the task's result and the command's summary."""

    queued: dict[date, int] = field(default_factory=dict)  # local date → messages added
    awaiting_approval: list[date] = field(default_factory=list)
    not_written: list[date] = field(default_factory=list)  # being written elsewhere
    confirmations: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "queued": {day.isoformat(): count for day, count in self.queued.items()},
            "awaiting_approval": [day.isoformat() for day in self.awaiting_approval],
            "not_written": [day.isoformat() for day in self.not_written],
            "confirmations": self.confirmations,
        }


def subscribers() -> QuerySet[Member]:
    """Members who get the daily message: subscribed, confirmed, textable."""
    return Member.objects.filter(
        is_daily_subscriber=True, daily_confirmed_at__isnull=False
    ).textable()


def deliver_due(*, now: datetime | None = None) -> DeliveryRun:
    """Queue the daily message for every subscriber whose time has come, then the
    confirmation for new subscribers inside polite hours."""
    now = now or timezone.now()
    run = DeliveryRun()
    ready = subscribers().filter(daily_confirmed_at__lte=now - CONFIRMATION_LEAD)
    groups_by_day: dict[date, list[SubscriberGroup]] = {}
    for group in _groups(ready):
        day = due_day(group, now)
        if day is not None:
            groups_by_day.setdefault(day, []).append(group)
    for day, groups in sorted(groups_by_day.items()):
        # A message being written right now (the hourly job) is waited for, not skipped.
        message = write_daily_message(day, wait_seconds=WRITING_WAIT_SECONDS)
        if message is None:
            run.not_written.append(day)
        elif not message.may_be_sent:
            run.awaiting_approval.append(day)
        else:
            run.queued[day] = _queue_daily(message, ready.filter(_any_of(groups)), now)
    run.confirmations = confirm_new_subscribers(now=now)
    return run


def confirm_new_subscribers(*, now: datetime | None = None) -> int:
    """Send the program's confirmation to subscribers who never had it (subscribed by
    staff or an import), each inside polite hours in their zone. Returns how many."""
    now = now or timezone.now()
    waiting = Member.objects.filter(
        is_daily_subscriber=True, daily_confirmed_at__isnull=True
    ).textable()
    groups = [group for group in _groups(waiting) if in_polite_hours(group, now)]
    if not groups:
        return 0
    with transaction.atomic():
        # Locked rows that another run is confirming are skipped, never confirmed twice.
        chosen = list(
            waiting.filter(_any_of(groups))
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("phone")
            .values_list("pk", "phone")
        )
        if not chosen:
            return 0
        Member.objects.filter(pk__in=[pk for pk, _ in chosen]).update(daily_confirmed_at=now)
        body = settings.DAILY_MESSAGE_CONFIRMATION
        shape = analyze(body)
        batch = Batch.objects.create(
            kind=Batch.Kind.DAILY,
            label=f"Daily message confirmations {now:%Y-%m-%d %H:%M}",
            sender=settings.DAILY_MESSAGE_SENDER,
        )
        Message.objects.bulk_create(
            [
                Message(
                    batch=batch,
                    kind=Batch.Kind.DAILY,
                    phone=phone,
                    sender=batch.sender,
                    body=body,
                    encoding=shape.encoding,
                    segments=shape.segments,
                    created_at=now,
                    status_updated_at=now,
                )
                for _, phone in chosen
            ],
            batch_size=1_000,
        )
        dispatch_batch(batch_id=batch.pk)
    logger.info("Queued %d daily message confirmations", len(chosen))
    return len(chosen)


def _groups(members: QuerySet[Member]) -> list[SubscriberGroup]:
    rows = members.order_by().values_list("timezone", "number_timezones", "daily_send_time")
    return sorted(
        {SubscriberGroup.of(*row) for row in rows.distinct()},
        key=lambda group: (group.timezone, group.number_timezones, str(group.send_time)),
    )


def _any_of(groups: list[SubscriberGroup]) -> Q:
    condition = Q(pk__in=[])
    for group in groups:
        condition |= group.members_filter()
    return condition


def _queue_daily(message: DailyMessage, recipients: QuerySet[Member], now: datetime) -> int:
    """Add the recipients to the message's batch (once each); return how many were new."""
    with transaction.atomic():
        # Locked against an edit in the admin: the text read here is the one staff see.
        message = DailyMessage.objects.select_for_update().get(pk=message.pk)
        if message.batch is None:
            message.batch = Batch.objects.create(
                kind=Batch.Kind.DAILY,
                label=f"Daily message {message.date:%Y-%m-%d}",
                sender=settings.DAILY_MESSAGE_SENDER,
            )
            message.save(update_fields=["batch"])
        added = _insert_messages(message, recipients, now)
        if added:
            dispatch_batch(batch_id=message.batch.pk)
    if added:
        logger.info("Queued the daily message of %s for %d subscribers", message.date, added)
    return added


def _insert_messages(message: DailyMessage, recipients: QuerySet[Member], now: datetime) -> int:
    batch: Batch = message.batch  # type: ignore[assignment] - created by the caller
    shape = analyze(message.text)
    phones_sql, phones_params = (
        recipients.order_by().values_list("phone", flat=True).query.sql_with_params()
    )
    # ON CONFLICT without a target: the partial unique (batch, phone) index is the only
    # one a new pending row can hit, and the same words work on SQLite (the demo).
    sql = f"""
        INSERT INTO delivery_message (
            batch_id, kind, phone, sender, body, encoding, segments, status, attempts,
            must_reconcile, is_compliance_reply, error_message, created_at,
            status_updated_at
        )
        SELECT %s, %s, m.phone, %s, %s, %s, %s, %s, 0, false, false, '', %s, %s
        FROM ({phones_sql}) AS m
        WHERE true
        ORDER BY m.phone
        ON CONFLICT DO NOTHING
    """  # noqa: S608 - every value is a parameter; the SQL pieces are our own
    params = [
        batch.pk,
        Batch.Kind.DAILY,
        batch.sender,
        message.text,
        shape.encoding,
        shape.segments,
        Message.Status.PENDING,
        now,
        now,
        *phones_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)
