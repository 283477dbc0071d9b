"""Writing a day's message: ask OpenAI, check what it wrote, else take the fallback library.

Each date gets one :class:`DailyMessage`, written once: a second call for the same date
returns the existing one and asks nobody anything. Two writers racing for one date are
kept apart by a lock, and the unique date decides should the lock ever expire.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import timedelta
from typing import Any

import openai
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from positivity.checks import check_message
from positivity.fallback import load_fallback_library
from positivity.models import DailyMessage, texts_near
from smsadmin.locks import held

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "You write the daily text message of {organization}, a community organisation. "
    "Write ONE short, warm, positive message for the people who subscribed to it: "
    "encouraging, kind and calm, for anyone, without religion, politics or advice on "
    "health or money. Plain text only: at most {characters} characters, no emoji, no "
    "hashtags, no links, no phone numbers, no quotation marks around it, no greeting "
    "with a name, no sign-off. Reply with the message and nothing else."
)
RECENT_IN_PROMPT = 30  # recent messages shown to the model (all of the window are checked)
_QUOTES = "\"'\u201c\u201d\u2018\u2019"
_MAX_OUTPUT_TOKENS = 200
_WAIT_STEP_SECONDS = 0.25


@dataclass(slots=True)
class Draft:
    """What the writing of one date produced, before it is stored."""

    text: str = ""
    source: str = ""
    model: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)


def write_daily_message(day: Date, *, wait_seconds: float = 0) -> DailyMessage | None:
    """The daily message of ``day``, written now if it does not exist yet.

    When another process is writing it at this moment, wait up to ``wait_seconds`` for
    that one; None when it is still being written by then.
    """
    existing = DailyMessage.objects.filter(date=day).first()
    if existing is not None:
        return existing
    with held(f"daily-message:{day.isoformat()}", timeout=_writing_timeout()) as acquired:
        if not acquired:
            logger.info("The daily message of %s is being written by another process", day)
            return _written_elsewhere(day, wait_seconds)
        existing = DailyMessage.objects.filter(date=day).first()
        if existing is not None:
            return existing
        draft = compose(day)
        try:
            with transaction.atomic():
                return DailyMessage.objects.create(
                    date=day,
                    text=draft.text,
                    source=draft.source,
                    model=draft.model,
                    attempts=draft.attempts,
                )
        except IntegrityError:
            return DailyMessage.objects.get(date=day)


def _written_elsewhere(day: Date, wait_seconds: float) -> DailyMessage | None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        time.sleep(_WAIT_STEP_SECONDS)
        written = DailyMessage.objects.filter(date=day).first()
        if written is not None:
            return written
    return None


def compose(day: Date, *, avoid: tuple[str, ...] = ()) -> Draft:
    """Write a message for ``day``: the AI's when one passes the checks, else the fallback.

    ``avoid`` holds texts that must not come back (the one staff asked to replace).
    """
    recent = [*avoid, *texts_near(day, days=settings.DAILY_MESSAGE_REPEAT_WINDOW_DAYS)]
    draft = Draft()
    if settings.OPENAI_API_KEY:
        _ask_ai(day, recent, draft)
    else:
        draft.attempts.append(_note("ai", error="No OPENAI_API_KEY is set."))
    if not draft.text:
        _take_fallback(day, recent, draft)
    return draft


def _ask_ai(day: Date, recent: list[str], draft: Draft) -> None:
    client = openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT,
        max_retries=settings.OPENAI_MAX_RETRIES,
    )
    feedback = ""
    try:
        for _ in range(settings.DAILY_MESSAGE_MAX_ATTEMPTS):
            try:
                response = client.responses.create(
                    model=settings.OPENAI_MODEL,
                    instructions=_instructions(),
                    input=_prompt(day, recent, feedback),
                    max_output_tokens=_MAX_OUTPUT_TOKENS,
                )
            except openai.OpenAIError as error:
                draft.attempts.append(_note("ai", error=_describe(error)))
                logger.warning("OpenAI failed for the daily message of %s: %s", day, error)
                return
            refusal = _refusal(response)
            if refusal is not None:
                draft.attempts.append(_note("ai", error=f"The model refused: {refusal}"))
                return
            text = _clean(response.output_text)
            rejection = check_message(
                text,
                recent=recent,
                max_segments=settings.DAILY_MESSAGE_MAX_SEGMENTS,
                allow_unicode=settings.DAILY_MESSAGE_ALLOW_UNICODE,
            )
            if rejection is None:
                draft.text, draft.source, draft.model = text, DailyMessage.Source.AI, response.model
                draft.attempts.append(_note("ai", text=text))
                return
            draft.attempts.append(
                _note("ai", text=text, rejection=rejection.code, reason=rejection.reason)
            )
            feedback = f"Your last message was rejected: {rejection.reason} Write a new one."
    finally:
        client.close()


def _take_fallback(day: Date, recent: list[str], draft: Draft) -> None:
    """The library's next message for ``day`` that was not used within one library length.

    The library is walked in order from a place fixed by the date, so consecutive
    fallback days take consecutive messages; a message used (as a fallback or by chance
    by the AI) within ``len(library)`` days of ``day`` is skipped, as is one too much
    like a recent message. Should every message be too alike, the check is dropped;
    should every one have been used, the one used longest ago is taken.
    """
    library = load_fallback_library()
    size = len(library)
    used = _last_used(day, size)
    start = day.toordinal() % size
    in_order = [library[(start + offset) % size] for offset in range(size)]
    unused = [text for text in in_order if text not in used]
    chosen = next(
        (
            text
            for text in unused
            if check_message(
                text,
                recent=recent,
                max_segments=settings.DAILY_MESSAGE_MAX_SEGMENTS,
                allow_unicode=settings.DAILY_MESSAGE_ALLOW_UNICODE,
            )
            is None
        ),
        None,
    )
    if chosen is None:
        chosen = unused[0] if unused else min(in_order, key=lambda text: -used[text])
    draft.text, draft.source, draft.model = chosen, DailyMessage.Source.FALLBACK, ""
    draft.attempts.append(_note("fallback", text=chosen, index=library.index(chosen)))


def _last_used(day: Date, window_days: int) -> dict[str, int]:
    """Library texts used within ``window_days`` of ``day``: text → days away from it."""
    rows = DailyMessage.objects.filter(
        date__gt=day - timedelta(days=window_days), date__lt=day + timedelta(days=window_days)
    ).values_list("date", "text")
    used: dict[str, int] = {}
    for used_on, text in rows:
        distance = abs((used_on - day).days)
        used[text] = min(distance, used.get(text, distance))
    return used


def _instructions() -> str:
    characters = 160 if settings.DAILY_MESSAGE_MAX_SEGMENTS == 1 else 300
    return INSTRUCTIONS.format(organization=settings.ORGANIZATION_NAME, characters=characters)


def _prompt(day: Date, recent: list[str], feedback: str) -> str:
    lines = [f"Write the message for {day:%A %d %B %Y}."]
    if recent:
        lines.append("It must not repeat or resemble these recent messages:")
        lines.extend(f"- {text}" for text in recent[:RECENT_IN_PROMPT])
    if feedback:
        lines.append(feedback)
    return "\n".join(lines)


def _refusal(response: Any) -> str | None:
    for item in response.output or ():
        for content in getattr(item, "content", None) or ():
            if getattr(content, "type", "") == "refusal":
                return str(content.refusal)
    return None


def _clean(text: str) -> str:
    """The model's text without surrounding spaces or quotation marks."""
    text = " ".join(text.split())
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _describe(error: openai.OpenAIError) -> str:
    if isinstance(error, openai.APITimeoutError):
        return f"OpenAI did not answer within {settings.OPENAI_TIMEOUT:g} s."
    if isinstance(error, openai.APIStatusError):
        return f"OpenAI answered {error.status_code}: {error.message}"
    return f"OpenAI could not be reached: {error}"


def _note(source: str, **details: Any) -> dict[str, Any]:
    return {"at": timezone.now().isoformat(), "source": source, **details}


def _writing_timeout() -> float:
    """Longer than the slowest writing: every attempt timing out on every retry."""
    tries = settings.DAILY_MESSAGE_MAX_ATTEMPTS * (settings.OPENAI_MAX_RETRIES + 1)
    return tries * (settings.OPENAI_TIMEOUT + 10) + 60
