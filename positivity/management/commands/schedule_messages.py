"""``manage.py schedule_messages [--date YYYY-MM-DD]``: write a day's message now."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from positivity.models import DailyMessage
from positivity.tasks import days_to_write
from positivity.writer import write_daily_message


class Command(BaseCommand):
    help = (
        "Write the daily message of today and tomorrow (the organisation's dates), or of "
        "--date, unless it exists: asks OpenAI when a key is set, else (or when every "
        "attempt fails) takes the fallback library. Prints what was written and why."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--date", type=_day, metavar="YYYY-MM-DD", help="write only this date's message"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = [options["date"]] if options["date"] else days_to_write()
        for day in days:
            existed = DailyMessage.objects.filter(date=day).exists()
            message = write_daily_message(day)
            if message is None:
                self.stdout.write(f"{day}: being written by another process right now.")
                continue
            self.stdout.write(self.style.SUCCESS(describe(message, existed=existed)))
            if not existed:
                for attempt in message.attempts:
                    self.stdout.write(f"  - {describe_attempt(attempt)}")


def describe(message: DailyMessage, *, existed: bool) -> str:
    how = "already written" if existed else "written"
    origin = _ORIGIN[message.source]
    model = f" ({message.model})" if message.model else ""
    return f"{message.date}: {how} {origin}{model}: {message.text}"


_ORIGIN = {
    DailyMessage.Source.AI: "by AI",
    DailyMessage.Source.FALLBACK: "from the fallback library",
    DailyMessage.Source.STAFF: "by staff",
}


def describe_attempt(attempt: dict[str, Any]) -> str:
    """One line of a message's history: what was tried and what became of it."""
    source = "fallback library" if attempt.get("source") == "fallback" else attempt.get("source")
    if attempt.get("error"):
        return f"{source}: {attempt['error']}"
    if attempt.get("rejection"):
        reason = attempt.get("reason", attempt["rejection"])
        return f"{source}: rejected ({reason}): {attempt.get('text', '')}"
    return f"{source}: accepted: {attempt.get('text', '')}"


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--date must look like 2026-12-24, not {value!r}.") from error
