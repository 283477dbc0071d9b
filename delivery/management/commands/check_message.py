"""``manage.py check_message SID [SID ...]``.

Asks the provider for the status of messages we sent and applies it as a status
callback would: forward only, and a failure feeds the suppression rules.
"""

from __future__ import annotations

import asyncio
from argparse import ArgumentParser
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from delivery.backends import NotFoundAtProvider, ProviderUnavailable, create_backend
from delivery.models import Message
from delivery.status import record_provider_status

LOOKUPS_IN_FLIGHT = 8


@dataclass(frozen=True)
class _Answer:
    """What the provider said about one SID: a status, or why there is none."""

    status: str = ""
    error_code: int | None = None
    is_unknown: bool = False  # the provider has no message with this SID
    failure: str = ""  # the provider could not be asked

    def __str__(self) -> str:
        if self.error_code is None:
            return self.status
        return f"{self.status}, error code {self.error_code}"


class Command(BaseCommand):
    help = (
        "Fetch messages' status from the SMS provider by SID and update ours, by the same "
        "forward-only rules as status callbacks."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("sids", nargs="+", metavar="SID", help="a provider message SID (SM...)")

    def handle(self, *args: Any, **options: Any) -> None:
        sids = list(dict.fromkeys(sid.strip() for sid in options["sids"]))
        messages = {m.provider_sid: m for m in Message.objects.filter(provider_sid__in=sids)}
        missing = [sid for sid in sids if sid not in messages]
        if missing:
            raise CommandError(f"No message with SID {', '.join(missing)}.")
        answers = asyncio.run(_fetch(sids))
        provider = "Twilio" if settings.SMS_BACKEND == "twilio" else "the simulator"
        problems = 0
        for sid in sids:
            message, answer = messages[sid], answers[sid]
            who = f"{sid}: message #{message.pk} to {message.phone}"
            if answer.is_unknown:
                problems += 1
                self.stderr.write(
                    f"{who}: {provider} has no message with this SID; nothing changed."
                )
                continue
            if answer.failure:
                problems += 1
                self.stderr.write(
                    f"{who}: could not ask {provider} ({answer.failure}); nothing changed."
                )
                continue
            self.stdout.write(f"{who}: {self._apply(message, answer)}; {provider} says {answer}")
        if problems:
            raise CommandError(f"{problems} of {len(sids)} messages could not be checked.")

    def _apply(self, message: Message, answer: _Answer) -> str:
        before = message.status
        changed = record_provider_status(
            provider_sid=message.provider_sid or "",
            provider_status=answer.status,
            error_code=answer.error_code,
        )
        message.refresh_from_db(fields=["status"])
        return f"{before} → {message.status}" + ("" if changed else " (unchanged)")


async def _fetch(sids: list[str]) -> dict[str, _Answer]:
    backend = create_backend()
    in_flight = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

    async def fetch(sid: str) -> tuple[str, _Answer]:
        async with in_flight:
            try:
                status, error_code = await backend.fetch_status(sid)
            except NotFoundAtProvider:
                return sid, _Answer(is_unknown=True)
            except ProviderUnavailable as error:
                return sid, _Answer(failure=str(error))
            return sid, _Answer(status=status, error_code=error_code)

    try:
        return dict(await asyncio.gather(*(fetch(sid) for sid in sids)))
    finally:
        await backend.aclose()
