"""What every SMS backend offers: send one text, and find one it may have sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class NotFoundAtProvider(Exception):
    """The provider has no message with this SID."""


class ProviderUnavailable(Exception):
    """The provider could not be asked: unreachable, timed out, or it answered with an error."""


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    message_id: int
    to: str
    sender: str
    body: str


class SendOutcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took it; provider_sid is set
    RETRY = "retry"  # not taken, and trying again may work (429, 5xx, connection refused)
    UNKNOWN = "unknown"  # may or may not have been taken (timeout): reconcile before retrying
    FAILED = "failed"  # refused for good (4xx with an error code)
    SKIPPED = "skipped"  # never sent: the phone opted out or was suppressed meanwhile
    RELEASED = "released"  # never sent: its claim grew too old; pending again, due now


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    duration_ms: int
    provider_sid: str | None = None
    http_status: int | None = None
    error_code: int | None = None
    error_message: str = ""


class SmsBackend(Protocol):
    """An async SMS provider client. One instance serves one event loop, many requests."""

    async def send(self, sms: OutgoingSms) -> SendResult: ...

    async def find_sent(self, *, to: str, sender: str, body: str, since: datetime) -> str | None:
        """The provider SID of a message with this recipient, sender and body created at or
        after ``since``, or None. Used to reconcile after a crash or a timeout."""
        ...

    async def fetch_status(self, provider_sid: str) -> tuple[str, int | None]:
        """The provider's status and error code of one message. Raises
        :class:`NotFoundAtProvider` or :class:`ProviderUnavailable`."""
        ...

    async def aclose(self) -> None: ...
