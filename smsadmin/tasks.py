"""The project's own periodic task (smsadmin is not a Django app: CELERY_IMPORTS loads it)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="smsadmin.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Nothing to do: beat publishing this task every 30 s is its heartbeat
    (``smsadmin.heartbeats.record_beat_tick``)."""
