"""The project's own periodic task (smsadmin is not a Django app: CELERY_IMPORTS loads it)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="smsadmin.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Nothing to do: beat publishing this task every 30 s is its heartbeat
    (``smsadmin.heartbeats.record_beat_tick``)."""


@shared_task(name="smsadmin.publish_queue_depth", ignore_result=True)
def publish_queue_depth() -> int | None:
    """Put the pending messages into CloudWatch, where AWS scales the workers on them
    (terraform/modules/ecs); does nothing unless QUEUE_DEPTH_METRIC_NAMESPACE is set."""
    from smsadmin.queue_depth import publish

    return publish()
