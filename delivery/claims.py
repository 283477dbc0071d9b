"""The database side of sending: claim due messages, record what the provider said.

Claims are one UPDATE each (``pending → sending``) that skips rows other workers hold,
so any number of workers can pull from one batch without sending anything twice.
Results are written back in one UPDATE per flush, guarded by the claim's timestamp:
a row that was reconciled and re-claimed meanwhile is not overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from delivery.backends.base import SendOutcome
from delivery.models import Attempt, Batch, Message
from delivery.quiet_hours import next_send_time, zones_for
from delivery.status import apply_early_statuses
from delivery.suppression import apply_failure_rules_on_commit


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    phone: str
    sender: str
    body: str
    segments: int
    attempts: int
    must_reconcile: bool
    is_compliance_reply: bool
    claimed_at: datetime


@dataclass(slots=True)
class AttemptRecord:
    started_at: datetime
    duration_ms: int
    outcome: str
    http_status: int | None = None
    error_code: int | None = None
    error_message: str = ""


@dataclass(slots=True)
class SendRecord:
    """What happened to one claimed message in this round."""

    message: ClaimedMessage
    outcome: SendOutcome
    attempts: list[AttemptRecord]
    provider_sid: str | None = None
    error_code: int | None = None
    error_message: str = ""


_SKIP_LOCKED = "FOR UPDATE SKIP LOCKED"


def claim_due_messages(*, batch_id: int, limit: int) -> list[ClaimedMessage]:
    """Claim up to ``limit`` due pending messages of an unpaused batch.

    Messages whose phone opted out or was suppressed since fan-out are canceled here,
    just before sending, so a STOP that arrives mid-blast is honoured.
    """
    now = timezone.now()
    skip_locked = _SKIP_LOCKED if connection.vendor == "postgresql" else ""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE delivery_message SET status = 'sending', claimed_at = %s,
                       status_updated_at = %s
                WHERE id IN (
                    SELECT m.id FROM delivery_message m
                    WHERE m.batch_id = %s AND m.status = 'pending'
                      AND (m.send_after IS NULL OR m.send_after <= %s)
                      AND NOT EXISTS (
                          SELECT 1 FROM delivery_batch b WHERE b.id = m.batch_id AND b.is_paused
                      )
                    ORDER BY m.id LIMIT %s {skip_locked}
                )
                RETURNING id, phone, sender, body, segments, attempts, must_reconcile,
                          is_compliance_reply, recipient_timezones
                """,  # noqa: S608 - only our own constant is interpolated
                [now, now, batch_id, now, limit],
            )
            rows = cursor.fetchall()
            if not rows:
                return []
            blocked = _cancel_blocked([row[0] for row in rows], now)
            blocked |= _defer_outside_quiet_hours(batch_id, rows, now)
        Batch.objects.filter(pk=batch_id).update(last_claimed_at=now)
    return sorted(
        (
            ClaimedMessage(
                id=row[0],
                phone=row[1],
                sender=row[2],
                body=row[3],
                segments=row[4],
                attempts=row[5],
                must_reconcile=bool(row[6]),
                is_compliance_reply=bool(row[7]),
                claimed_at=now,
            )
            for row in rows
            if row[0] not in blocked
        ),
        key=lambda message: message.id,
    )


def _defer_outside_quiet_hours(batch_id: int, rows: list[tuple], now: datetime) -> set[int]:
    """Put back the claimed messages whose recipient is outside the batch's window now.

    Fan-out already held those outside the window then; this catches a long batch that
    runs on into a recipient's evening.
    """
    window = (
        Batch.objects.filter(pk=batch_id)
        .values_list("quiet_hours_start", "quiet_hours_end")
        .first()
    )
    if not window or window[0] is None or window[1] is None:
        return set()
    deferred: dict[datetime, list[int]] = {}
    for row in rows:
        zones = row[8]
        if zones is None:
            continue
        if isinstance(zones, str):  # Django reads jsonb as text in raw queries
            zones = json.loads(zones)
        send_at = next_send_time(now, zones_for("", zones), window[0], window[1])
        if send_at is not None:
            deferred.setdefault(send_at, []).append(row[0])
    for send_at, message_ids in deferred.items():
        Message.objects.filter(pk__in=message_ids, status=Message.Status.SENDING).update(
            status=Message.Status.PENDING,
            send_after=send_at,
            claimed_at=None,
            status_updated_at=now,
        )
    return {message_id for message_ids in deferred.values() for message_id in message_ids}


def _cancel_blocked(message_ids: list[int], now: datetime) -> set[int]:
    canceled: set[int] = set()
    # The answer to the STOP or HELP a phone just texted goes out although it opted out.
    for table, reason, exemption in (
        ("members_optout", "Opted out before it was sent", "AND NOT is_compliance_reply"),
        ("members_suppression", "Suppressed before it was sent", ""),
    ):
        ids = [message_id for message_id in message_ids if message_id not in canceled]
        if not ids:
            break
        placeholders = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE delivery_message SET status = 'canceled', canceled_at = %s,
                       status_updated_at = %s, error_message = %s
                WHERE id IN ({placeholders}) AND status = 'sending' {exemption} AND EXISTS (
                    SELECT 1 FROM {table} block
                    WHERE block.phone = delivery_message.phone AND block.lifted_at IS NULL
                )
                RETURNING id
                """,  # noqa: S608 - table names are our own constants
                [now, now, reason, *ids],
            )
            canceled.update(row[0] for row in cursor.fetchall())
    return canceled


def retry_delay(attempts: int) -> timedelta:
    """Back-off before a message with transient errors is tried again: 30 s, 1, 2, 4... min."""
    return timedelta(seconds=min(30 * 2 ** max(0, attempts - 1), 3600))


def record_results(records: list[SendRecord]) -> None:
    """Write outcomes and attempts of a round of sends, in one transaction."""
    if not records:
        return
    now = timezone.now()
    accepted_sids = [record.provider_sid for record in records if record.provider_sid]
    rows = []
    for record in records:
        attempts = record.message.attempts + len(record.attempts)
        status, send_after = _next_status(record, attempts, now)
        rows.append(
            (
                record.message.id,
                record.message.claimed_at,
                status,
                record.provider_sid,
                record.error_code,
                record.error_message[:255],
                attempts,
                send_after,
                record.outcome == SendOutcome.UNKNOWN,
            )
        )
    with transaction.atomic():
        _update_messages(rows, now)
        failed_ids = [row[0] for row in rows if row[2] == Message.Status.FAILED]
        if failed_ids:
            apply_failure_rules_on_commit(messages=Message.objects.filter(pk__in=failed_ids))
        transaction.on_commit(lambda: apply_early_statuses(provider_sids=accepted_sids))
        Attempt.objects.bulk_create(
            [
                Attempt(
                    message_id=record.message.id,
                    started_at=attempt.started_at,
                    duration_ms=attempt.duration_ms,
                    outcome=attempt.outcome,
                    http_status=attempt.http_status,
                    error_code=attempt.error_code,
                    error_message=attempt.error_message[:255],
                )
                for record in records
                for attempt in record.attempts
            ]
        )


def _next_status(record: SendRecord, attempts: int, now: datetime) -> tuple[str, datetime | None]:
    if record.outcome == SendOutcome.ACCEPTED:
        return Message.Status.ACCEPTED, None
    if record.outcome == SendOutcome.FAILED:
        return Message.Status.FAILED, None
    if record.outcome == SendOutcome.SKIPPED:
        return Message.Status.CANCELED, None
    if record.outcome == SendOutcome.RELEASED:
        # Due again at once, or after the back-off of this round's tries if it made any.
        return Message.Status.PENDING, now + retry_delay(attempts) if record.attempts else None
    if record.outcome == SendOutcome.RETRY and attempts >= settings.SMS_MAX_ATTEMPTS:
        return Message.Status.FAILED, None
    # RETRY, or UNKNOWN (the provider may have it; reconcile first): never given up on
    # while unknown, or a text could be lost without anyone knowing.
    return Message.Status.PENDING, now + retry_delay(attempts)


def _update_messages(rows: list[tuple], now: datetime) -> None:
    # Timestamps per outcome are set in SQL from the new status.
    assignments = """
        status = v.status,
        provider_sid = COALESCE(v.sid, m.provider_sid),
        error_code = v.code,
        error_message = v.error,
        attempts = v.attempts,
        send_after = v.send_after,
        must_reconcile = v.must_reconcile,
        claimed_at = CASE WHEN v.status = 'pending' THEN NULL ELSE m.claimed_at END,
        accepted_at = CASE WHEN v.status = 'accepted' THEN %s ELSE m.accepted_at END,
        failed_at = CASE WHEN v.status = 'failed' THEN %s ELSE m.failed_at END,
        canceled_at = CASE WHEN v.status = 'canceled' THEN %s ELSE m.canceled_at END,
        status_updated_at = %s
    """
    if connection.vendor == "postgresql":
        values = ", ".join(
            [
                "(%s::bigint, %s::timestamptz, %s, %s, %s::integer, %s, %s::smallint, "
                "%s::timestamptz, %s::boolean)"
            ]
            * len(rows)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE delivery_message AS m SET {assignments}
                FROM (VALUES {values})
                    AS v(id, claimed_at, status, sid, code, error, attempts, send_after,
                         must_reconcile)
                WHERE m.id = v.id AND m.status = 'sending' AND m.claimed_at = v.claimed_at
                """,  # noqa: S608 - the SQL is ours; values are parameters
                [now, now, now, now, *[value for row in rows for value in row]],
            )
        return
    with connection.cursor() as cursor:
        for row in rows:
            cursor.execute(
                f"""
                UPDATE delivery_message AS m SET {assignments.replace("v.", "v_")}
                FROM (SELECT %s AS v_id, %s AS v_claimed_at, %s AS v_status, %s AS v_sid,
                             %s AS v_code, %s AS v_error, %s AS v_attempts,
                             %s AS v_send_after, %s AS v_must_reconcile)
                WHERE m.id = v_id AND m.status = 'sending' AND m.claimed_at = v_claimed_at
                """,  # noqa: S608
                [now, now, now, now, *row],
            )
