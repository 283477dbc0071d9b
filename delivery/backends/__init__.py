"""Pick the SMS backend from settings: ``twilio``, or the ``simulator`` of the local demo."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from delivery.backends.base import (
    NotFoundAtProvider,
    OutgoingSms,
    ProviderUnavailable,
    SendOutcome,
    SendResult,
    SmsBackend,
)

__all__ = [
    "NotFoundAtProvider",
    "OutgoingSms",
    "ProviderUnavailable",
    "SendOutcome",
    "SendResult",
    "SmsBackend",
    "create_backend",
]


def status_callback_url() -> str:
    return settings.PUBLIC_BASE_URL + reverse("delivery:twilio-status")


def create_backend() -> SmsBackend:
    """A new backend; call it inside the event loop that will use it."""
    if settings.SMS_BACKEND == "twilio":
        from delivery.backends.twilio import TwilioBackend

        return TwilioBackend(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            status_callback_url=status_callback_url(),
            timeout=settings.SMS_PROVIDER_TIMEOUT,
            base_url=settings.TWILIO_API_BASE_URL,
        )
    from delivery.backends.simulator import SimulatorBackend

    return SimulatorBackend()
