"""One-line hooks the apps call where something worth counting happens.

Kept free of app imports at module level: ``members`` (the ground floor) calls it too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from smsadmin.metrics import definitions

if TYPE_CHECKING:
    from delivery.backends import SendResult
    from delivery.claims import SendRecord


def observe_provider_send(*, result: SendResult, claimed_at: datetime) -> None:
    """One request to the provider: its time, its error code, and for an accepted
    message the time since the claim."""
    definitions.PROVIDER_SEND_SECONDS.observe(result.duration_ms / 1000)
    if result.error_code is not None:
        definitions.PROVIDER_ERRORS.labels(code=str(result.error_code)).inc()
    if result.outcome == "accepted":
        seconds = (timezone.now() - claimed_at).total_seconds()
        definitions.MESSAGE_PROCESSING_SECONDS.observe(max(0.0, seconds))


def count_send_records(records: Iterable[SendRecord], *, batch_id: int) -> None:
    """The statuses a round of sends wrote (see ``delivery.claims._next_status``)."""
    from delivery.backends import SendOutcome

    kind = _batch_kind(batch_id)
    for record in records:
        status = {
            SendOutcome.ACCEPTED: "accepted",
            SendOutcome.FAILED: "failed",
            SendOutcome.SKIPPED: "canceled",
        }.get(record.outcome)
        attempts = record.message.attempts + len(record.attempts)
        if record.outcome == SendOutcome.RETRY and attempts >= settings.SMS_MAX_ATTEMPTS:
            status = "failed"
        if status is not None:
            definitions.MESSAGES.labels(status=status, kind=kind).inc()


def count_provider_status(*, kind: str | None, status: str, error_code: int | None) -> None:
    """A status report that moved a message of this kind forward (``kind`` None: it moved
    nothing, a repeat or a late one, and counts nothing)."""
    if kind is None:
        return
    definitions.MESSAGES.labels(status=str(status), kind=kind).inc()
    if error_code is not None and status in ("failed", "undelivered"):
        definitions.PROVIDER_ERRORS.labels(code=str(error_code)).inc()


def count_rate_limit_wait(sender: str) -> None:
    definitions.RATE_LIMIT_WAITS.labels(sender=sender).inc()


def count_opt_out(*, source: str) -> None:
    definitions.OPT_OUTS.labels(source=str(source)).inc()


def count_suppressions(*, reasons: Iterable[str]) -> None:
    for reason in reasons:
        definitions.SUPPRESSIONS.labels(reason=str(reason)).inc()


def counted_webhook(webhook_type: str) -> Callable[[Callable[..., HttpResponse]], Any]:
    """Count a webhook view's requests by result: 403 rejected (bad signature), other 4xx
    invalid, 5xx or an exception error, else ok."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def counted(*args: Any, **kwargs: Any) -> HttpResponse:
            try:
                response = view(*args, **kwargs)
            except Exception:
                definitions.WEBHOOKS.labels(type=webhook_type, result="error").inc()
                raise
            definitions.WEBHOOKS.labels(
                type=webhook_type, result=_webhook_result(response.status_code)
            ).inc()
            return response

        return counted

    return decorate


def _webhook_result(status_code: int) -> str:
    if status_code == 403:
        return "rejected"
    if 400 <= status_code < 500:
        return "invalid"
    if status_code >= 500:
        return "error"
    return "ok"


# A batch's kind never changes: one query per batch and process.
_batch_kinds: dict[int, str] = {}


def _batch_kind(batch_id: int) -> str:
    if batch_id not in _batch_kinds:
        from delivery.models import Batch

        kind = Batch.objects.filter(pk=batch_id).values_list("kind", flat=True).first()
        if kind is None:
            return "unknown"
        _batch_kinds[batch_id] = kind
    return _batch_kinds[batch_id]


__all__ = [
    "count_opt_out",
    "count_provider_status",
    "count_rate_limit_wait",
    "count_send_records",
    "count_suppressions",
    "counted_webhook",
    "observe_provider_send",
]
