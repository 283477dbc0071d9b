"""What staff do with a daily message before it goes out: edit it, replace it, approve it."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from positivity.checks import check_message
from positivity.models import DailyMessage
from positivity.writer import compose


class AlreadySent(Exception):
    """The message went out to someone: its text can no longer change."""


def text_problem(text: str) -> str | None:
    """Why staff's ``text`` cannot be a daily message (GSM-7, length, links, phone
    numbers), or None. Similarity is left to staff: they may mean to repeat one."""
    rejection = check_message(
        text,
        recent=(),
        max_segments=settings.DAILY_MESSAGE_MAX_SEGMENTS,
        allow_unicode=settings.DAILY_MESSAGE_ALLOW_UNICODE,
    )
    return rejection.reason if rejection else None


def change_text(*, message_id: int, text: str, by: Any) -> DailyMessage:
    """Replace the message's text with staff's; it then needs approval again."""
    return _replace(message_id, by=by, text=text.strip(), source=DailyMessage.Source.STAFF)


def write_again(*, message_id: int, by: Any) -> DailyMessage:
    """Replace the message with a fresh one (AI, else fallback) unlike the current text."""
    current = DailyMessage.objects.get(pk=message_id)
    if current.has_gone_out:
        raise AlreadySent(f"The message of {current.date} has gone out; it cannot change.")
    draft = compose(current.date, avoid=(current.text,))
    return _replace(
        message_id,
        by=by,
        text=draft.text,
        source=draft.source,
        model=draft.model,
        attempts=draft.attempts,
    )


def create_for_day(*, day: date, text: str, by: Any) -> DailyMessage:
    """Staff write a future day's message themselves."""
    now = timezone.now()
    return DailyMessage.objects.create(
        date=day,
        text=text.strip(),
        source=DailyMessage.Source.STAFF,
        attempts=[_staff_note(text.strip(), by, now)],
        edited_at=now,
        edited_by=by,
    )


def approve(*, message_ids: list[int], by: Any) -> int:
    """Approve these messages for sending; returns how many were not approved yet."""
    return DailyMessage.objects.filter(pk__in=message_ids, approved_at__isnull=True).update(
        approved_at=timezone.now(), approved_by=by
    )


def _replace(
    message_id: int,
    *,
    by: Any,
    text: str,
    source: str,
    model: str = "",
    attempts: list[dict[str, Any]] | None = None,
) -> DailyMessage:
    now = timezone.now()
    with transaction.atomic():
        # The same lock the sender takes before it reads the text for a batch.
        message = DailyMessage.objects.select_for_update().get(pk=message_id)
        if message.has_gone_out:
            raise AlreadySent(f"The message of {message.date} has gone out; it cannot change.")
        message.text, message.source, message.model = text, source, model
        message.attempts = [*message.attempts, *(attempts or [_staff_note(text, by, now)])]
        message.edited_at, message.edited_by = now, by
        message.approved_at, message.approved_by = None, None
        message.save()
    return message


def _staff_note(text: str, by: Any, now: Any) -> dict[str, Any]:
    return {"at": now.isoformat(), "source": "staff", "text": text, "by": str(by or "")}
