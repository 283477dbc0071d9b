"""Hand a batch's pending messages to workers, and pick up what nobody is working on.

Tasks only say "send this batch's due messages"; the rows are the record. A task sends
up to MESSAGES_PER_TASK and enqueues its successor while due messages remain, so a
million-message batch takes a few hundred tasks, not a million.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache

import kombu.exceptions
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from delivery.models import Batch, Message

logger = logging.getLogger(__name__)
MESSAGES_PER_TASK = 5_000


def _enqueue_or_leave_to_sweeper(enqueue: Callable[[], object], batch_id: int) -> None:
    """Publish a sending task; when the broker is down, log and carry on: the rows are
    committed and the sweeper re-dispatches the idle batch once the broker is back."""
    try:
        enqueue()
    except kombu.exceptions.OperationalError as error:
        logger.warning("Broker unavailable, batch %s left to the sweeper: %s", batch_id, error)


def parallel_chains() -> int:
    """How many task chains work on one batch at once (one per worker slot, by default)."""
    return settings.SMS_SEND_TASK_CHAINS


def dispatch_batch(*, batch_id: int, chains: int | None = None) -> None:
    """Enqueue the batch's sending after the current transaction commits."""
    from delivery.tasks import send_batch_messages

    for _ in range(chains or parallel_chains()):
        transaction.on_commit(
            lambda: _enqueue_or_leave_to_sweeper(
                lambda: send_batch_messages.delay(batch_id), batch_id
            )
        )


# A batch that takes messages one at a time (the API) gets one sending task per window,
# started when the window ends: every message committed within it is pending by then.
TRICKLE_WINDOW_SECONDS = 0.5


def dispatch_trickle(*, batch_id: int, send_at: datetime | None = None) -> None:
    """After commit, make sure a task will send this batch's new message soon: at most one
    task per batch per TRICKLE_WINDOW_SECONDS, however many messages arrive, and one at
    ``send_at`` for a message that must wait (within the broker's visibility timeout;
    later ones are found by the sweeper when they come due)."""
    from delivery.tasks import send_batch_messages

    def enqueue() -> None:
        now = timezone.now()
        if send_at is not None and send_at > now:
            if send_at - now < timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT):
                send_batch_messages.apply_async((batch_id,), eta=send_at)
            return
        if _claim_trickle_window(batch_id):
            send_batch_messages.apply_async((batch_id,), countdown=TRICKLE_WINDOW_SECONDS * 1.5)

    transaction.on_commit(lambda: _enqueue_or_leave_to_sweeper(enqueue, batch_id))


# When this process last claimed each batch's window: within it, no need to ask Redis.
_claimed_at: dict[int, float] = {}


def _claim_trickle_window(batch_id: int) -> bool:
    """True for the first caller of a window (Redis SET NX with expiry); always True
    without Redis (the demo on the filesystem broker)."""
    now = time.monotonic()
    if now - _claimed_at.get(batch_id, -TRICKLE_WINDOW_SECONDS) < TRICKLE_WINDOW_SECONDS:
        return False  # this process's own task of this window is on its way
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        claimed = True
    else:
        try:
            claimed = bool(
                _redis().set(
                    f"smsadmin:trickle:{batch_id}",
                    1,
                    nx=True,
                    px=int(TRICKLE_WINDOW_SECONDS * 1000),
                )
            )
        except redis.RedisError:
            claimed = True
    if claimed:
        if len(_claimed_at) > 1_000:
            _claimed_at.clear()
        _claimed_at[batch_id] = now
    return claimed


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def has_due_messages(*, batch_id: int) -> bool:
    now = timezone.now()
    return Message.objects.filter(
        Q(send_after__isnull=True) | Q(send_after__lte=now),
        batch_id=batch_id,
        status=Message.Status.PENDING,
    ).exists()


def sweep_idle_batches() -> list[int]:
    """Re-dispatch unpaused batches with due pending messages that nobody is sending."""
    now = timezone.now()
    idle_since = now - timedelta(seconds=settings.SMS_IDLE_BATCH_SECONDS)
    due = Message.objects.filter(
        Q(send_after__isnull=True) | Q(send_after__lte=now),
        batch_id=OuterRef("pk"),
        status=Message.Status.PENDING,
    )
    idle = (
        Batch.objects.filter(is_paused=False)
        .filter(Q(last_claimed_at__isnull=True) | Q(last_claimed_at__lt=idle_since))
        .filter(Exists(due))
    )
    batch_ids = list(idle.values_list("pk", flat=True))
    for batch_id in batch_ids:
        dispatch_batch(batch_id=batch_id, chains=1)
    return batch_ids
