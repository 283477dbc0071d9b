"""The daily message's jobs for beat: thin wrappers around the writer and the sender."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from positivity.sending import deliver_due
from positivity.writer import write_daily_message
from smsadmin.locks import one_at_a_time


def days_to_write(today: date | None = None) -> list[date]:
    """Today and tomorrow in the organisation's zone: subscribers east of it reach
    tomorrow first, and staff who approve messages see them a day ahead."""
    today = today or timezone.localdate()
    return [today, today + timedelta(days=1)]


@shared_task(name="positivity.write_daily_messages")
@one_at_a_time("positivity.write_daily_messages", timeout=900)
def write_daily_messages() -> dict[str, str]:
    """Write today's and tomorrow's messages when they do not exist; a repeat does nothing."""
    written = {}
    for day in days_to_write():
        message = write_daily_message(day)
        written[day.isoformat()] = message.source if message else "being written"
    return written


@shared_task(name="positivity.deliver_daily_messages")
@one_at_a_time("positivity.deliver_daily_messages", timeout=900)
def deliver_daily_messages() -> dict[str, object]:
    """Queue the daily message for subscribers whose local send time has come."""
    return deliver_due().as_dict()
