"""Twilio error codes in plain language, and what each says about the recipient.

One table, so the campaign page, the suppression rules and the metrics agree. What the
rules do with each kind is in ``delivery.suppression.RULES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    OPTED_OUT = "opted_out"  # the recipient opted out at the carrier
    PERMANENT = "permanent"  # the number cannot get texts: stop at once
    SOFT = "soft"  # blocked: stop after a few failures
    TRANSIENT = "transient"  # may work next time
    SENDER = "sender"  # our fault (content, registration, account): never the recipient's
    OTHER = "other"


@dataclass(frozen=True)
class ProviderError:
    code: int
    reason: str
    kind: ErrorKind
    # What the failure tells us about the number, as a ``Suppression.Reason`` value; blank
    # when it tells us nothing (our side, or a hiccup such as a rate limit).
    suppress_as: str = ""


_ERRORS = [
    ProviderError(20003, "Twilio refused our credentials", ErrorKind.SENDER),
    ProviderError(20429, "Too many requests to Twilio", ErrorKind.TRANSIENT),
    ProviderError(21211, "Not a valid phone number", ErrorKind.PERMANENT, "invalid"),
    ProviderError(21408, "Sending to this region is not enabled on our account", ErrorKind.SENDER),
    ProviderError(21602, "The message body is empty", ErrorKind.SENDER),
    ProviderError(21610, "The recipient replied STOP to this sender", ErrorKind.OPTED_OUT),
    ProviderError(21612, "This sender cannot reach this number", ErrorKind.SENDER),
    ProviderError(21614, "Not a mobile number", ErrorKind.PERMANENT, "landline"),
    ProviderError(21617, "The message is too long", ErrorKind.SENDER),
    ProviderError(30002, "Our Twilio account is suspended", ErrorKind.SENDER),
    ProviderError(30003, "The phone is off or out of coverage", ErrorKind.TRANSIENT, "unreachable"),
    ProviderError(
        30004, "The recipient or their carrier blocked the message", ErrorKind.SOFT, "blocked"
    ),
    ProviderError(
        30005, "The number is unknown or no longer exists", ErrorKind.PERMANENT, "invalid"
    ),
    ProviderError(
        30006,
        "A landline, or a carrier that cannot take texts",
        ErrorKind.PERMANENT,
        "landline",
    ),
    ProviderError(30007, "The carrier filtered the message as spam", ErrorKind.SENDER),
    ProviderError(30008, "Unknown delivery error", ErrorKind.TRANSIENT, "unreachable"),
    ProviderError(30032, "Our toll-free number is not verified", ErrorKind.SENDER),
    ProviderError(30034, "Our sender is not registered for A2P 10DLC", ErrorKind.SENDER),
]
PROVIDER_ERRORS: dict[int, ProviderError] = {error.code: error for error in _ERRORS}


def describe_error(code: int | None) -> str:
    """A sentence staff can act on, for any code (unknown ones say so)."""
    if code is None:
        return "No error code"
    known = PROVIDER_ERRORS.get(code)
    return known.reason if known else f"Twilio error {code}"


def error_kind(code: int | None) -> ErrorKind:
    known = PROVIDER_ERRORS.get(code) if code is not None else None
    return known.kind if known else ErrorKind.OTHER
