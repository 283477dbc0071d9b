"""Apply a provider's status report to a message: forward only, idempotent.

Callbacks arrive late, twice or out of order; a ``sent`` after ``delivered`` must change
nothing. The rule lives in one UPDATE: the new status applies only to a message whose
current status ranks lower.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from delivery.models import EarlyStatus, Message
from delivery.suppression import apply_failure_rules_on_commit
from smsadmin.metrics import recording as metrics
from smsadmin.prepared import fetch_prepared

Status = Message.Status

RANK = {
    Status.PENDING: 0,
    Status.SENDING: 1,
    Status.ACCEPTED: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.UNDELIVERED: 4,
    Status.FAILED: 4,
    Status.CANCELED: 4,
}
FINAL_STATUSES = frozenset(status for status, rank in RANK.items() if rank == 4)

# Twilio's message statuses, as ours.
PROVIDER_STATUSES = {
    "accepted": Status.ACCEPTED,
    "scheduled": Status.ACCEPTED,
    "queued": Status.ACCEPTED,
    "sending": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
}

_TIMESTAMP_FOR = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.UNDELIVERED: "failed_at",
    Status.FAILED: "failed_at",
    Status.ACCEPTED: "accepted_at",
}


def record_provider_status(
    *,
    provider_sid: str,
    provider_status: str,
    error_code: int | None = None,
    error_message: str = "",
) -> bool:
    """Apply a provider's report; one for a SID we have not written down yet is kept and
    applied when we have (see :class:`EarlyStatus`). True when a message changed."""
    changed = apply_provider_status(
        provider_sid=provider_sid,
        provider_status=provider_status,
        error_code=error_code,
        error_message=error_message,
    )
    known_status = provider_status.strip().lower() in PROVIDER_STATUSES
    if (
        not changed
        and known_status
        and provider_sid
        and not Message.objects.filter(provider_sid=provider_sid).exists()
    ):
        EarlyStatus.objects.create(
            provider_sid=provider_sid[:40],
            provider_status=provider_status[:20],
            error_code=error_code,
            error_message=error_message[:255],
        )
    return changed


def apply_early_statuses(*, provider_sids: list[str] | None = None) -> int:
    """Apply waiting early reports whose SID is now known (all, or just these SIDs)."""
    waiting = EarlyStatus.objects.filter(
        provider_sid__in=Message.objects.filter(provider_sid__isnull=False).values("provider_sid")
        if provider_sids is None
        else provider_sids
    ).order_by("received_at", "pk")
    applied = []
    changed = 0
    for early in waiting:
        if not Message.objects.filter(provider_sid=early.provider_sid).exists():
            continue
        changed += apply_provider_status(
            provider_sid=early.provider_sid,
            provider_status=early.provider_status,
            error_code=early.error_code,
            error_message=early.error_message,
        )
        applied.append(early.pk)
    EarlyStatus.objects.filter(pk__in=applied).delete()
    return changed


def forget_old_early_statuses(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Reports for SIDs we never stored (another system's messages, say) expire."""
    deleted, _ = EarlyStatus.objects.filter(received_at__lt=timezone.now() - older_than).delete()
    return deleted


def apply_provider_status(
    *,
    provider_sid: str,
    provider_status: str,
    error_code: int | None = None,
    error_message: str = "",
) -> bool:
    """Move the message with this provider SID forward; True when something changed."""
    new_status = PROVIDER_STATUSES.get(provider_status.strip().lower())
    if new_status is None or not provider_sid:
        return False
    lower = [status.value for status, rank in RANK.items() if rank < RANK[new_status]]
    timestamp_column = _TIMESTAMP_FOR[new_status]
    now = timezone.now()
    placeholders = ", ".join(["%s"] * len(lower))
    # Prepared: the status callbacks run it a thousand times a second and more.
    rows = fetch_prepared(
        f"""
        UPDATE delivery_message
        SET status = %s, {timestamp_column} = %s, status_updated_at = %s,
            error_code = COALESCE(%s, error_code),
            error_message = CASE WHEN %s <> '' THEN %s ELSE error_message END
        WHERE provider_sid = %s AND status IN ({placeholders})
        RETURNING kind
        """,  # noqa: S608 - the column name and placeholders are ours
        [
            new_status.value,
            now,
            now,
            error_code,
            error_message[:255],
            error_message[:255],
            provider_sid,
            *lower,
        ],
    )
    kinds = [kind for (kind,) in rows]
    changed = bool(kinds)
    metrics.count_provider_status(
        kind=kinds[0] if kinds else None, status=new_status, error_code=error_code
    )
    if changed and new_status in (Status.UNDELIVERED, Status.FAILED):
        apply_failure_rules_on_commit(messages=Message.objects.filter(provider_sid=provider_sid))
    return changed
