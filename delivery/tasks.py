"""Delivery's Celery tasks: thin, idempotent, named for beat."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from django.conf import settings

from delivery.dispatch import MESSAGES_PER_TASK, has_due_messages, sweep_idle_batches
from delivery.reconcile import reconcile_stale_sending
from delivery.retention import remove_expired_data
from delivery.sending import send_due_messages
from delivery.simulation import report_simulated_statuses
from delivery.status import apply_early_statuses, forget_old_early_statuses
from smsadmin.locks import one_at_a_time


@shared_task(name="delivery.send_batch_messages")
def send_batch_messages(batch_id: int) -> dict[str, int]:
    """Send up to MESSAGES_PER_TASK due messages of a batch, then pass the baton."""
    summary = send_due_messages(batch_id=batch_id, max_messages=MESSAGES_PER_TASK)
    if summary.claimed and has_due_messages(batch_id=batch_id):
        send_batch_messages.delay(batch_id)
    return {key: value for key, value in asdict(summary).items() if isinstance(value, int)}


@shared_task(name="delivery.sweep")
@one_at_a_time("delivery.sweep", timeout=300)
def sweep() -> dict[str, object]:
    """Re-dispatch forgotten batches, reconcile messages a dead worker left behind, and
    apply status reports that came before their SID was stored."""
    reconciled = reconcile_stale_sending()
    return {
        "redispatched": sweep_idle_batches(),
        "early_statuses_applied": apply_early_statuses(),
        "early_statuses_expired": forget_old_early_statuses(),
        **asdict(reconciled),
    }


@shared_task(name="delivery.report_simulated_statuses")
@one_at_a_time("delivery.report_simulated_statuses", timeout=60)
def report_simulated_statuses_task() -> int:
    if settings.SMS_BACKEND != "simulator":
        return 0
    return report_simulated_statuses()


@shared_task(name="delivery.cleanup")
@one_at_a_time("delivery.cleanup", timeout=3600)
def cleanup() -> dict[str, int]:
    """Remove data past its retention (what ``manage.py cleanup`` does)."""
    return remove_expired_data()
