"""Messages a dead worker left in ``sending``: ask the provider before sending again.

Twilio can list the messages sent to a number. A message found there is marked accepted
with its SID; one the provider never saw goes back to ``pending``. A duplicate text costs
money and trust, and a message must never be silently lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from delivery.backends import create_backend
from delivery.models import Attempt, Message

logger = logging.getLogger(__name__)


@dataclass
class ReconcileSummary:
    found_sent: int = 0
    requeued: int = 0
    unknown: int = 0


def reconcile_stale_sending(*, limit: int = 500) -> ReconcileSummary:
    lease = timedelta(seconds=settings.SMS_SENDING_LEASE_SECONDS)
    stale = list(
        Message.objects.filter(
            status=Message.Status.SENDING, claimed_at__lt=timezone.now() - lease
        ).order_by("claimed_at")[:limit]
    )
    if not stale:
        return ReconcileSummary()
    found = asyncio.run(_look_up(stale))
    summary = ReconcileSummary()
    now = timezone.now()
    for message in stale:
        sid = found.get(message.pk, "")
        if sid is None:
            summary.unknown += 1  # the provider did not answer: try again next round
            continue
        guard = Message.objects.filter(
            pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at
        )
        if sid:
            changed = guard.update(
                status=Message.Status.ACCEPTED,
                provider_sid=sid,
                accepted_at=now,
                status_updated_at=now,
                attempts=message.attempts + 1,
            )
            summary.found_sent += changed
        else:
            changed = guard.update(
                status=Message.Status.PENDING,
                claimed_at=None,
                send_after=None,
                status_updated_at=now,
            )
            summary.requeued += changed
        if changed:
            Attempt.objects.create(
                message=message,
                started_at=message.claimed_at,
                duration_ms=0,
                outcome=Attempt.Outcome.RECONCILED if sid else Attempt.Outcome.RETRY,
                error_message="" if sid else "not found at the provider after a crash",
            )
    if summary.found_sent or summary.requeued:
        logger.info(
            "Reconciled stale messages: %s found sent, %s requeued",
            summary.found_sent,
            summary.requeued,
        )
    return summary


async def _look_up(messages: list[Message]) -> dict[int, str | None]:
    """Provider SID per message: a SID, "" when not found, None when the lookup failed."""
    backend = create_backend()
    semaphore = asyncio.Semaphore(16)

    async def look_up(message: Message) -> tuple[int, str | None]:
        async with semaphore:
            try:
                sid = await backend.find_sent(
                    to=message.phone,
                    sender=message.sender,
                    body=message.body,
                    since=message.claimed_at,
                )
            except Exception:
                logger.warning("Provider lookup failed for message %s", message.pk)
                return message.pk, None
            return message.pk, sid or ""

    try:
        return dict(await asyncio.gather(*(look_up(message) for message in messages)))
    finally:
        await backend.aclose()
