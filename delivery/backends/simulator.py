"""The local demo's provider: takes every text; the status ticker then reports it delivered,
or failed with a real Twilio error code for a few numbers, through the status-callback path.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from delivery.backends.base import OutgoingSms, SendOutcome, SendResult

SIMULATED_SID_PREFIX = "SMsim"
# Roughly 1 number in 25 fails, always the same ones, with these codes.
_FAILURES = ((30003, "undelivered"), (30006, "failed"), (30005, "failed"), (30004, "undelivered"))


class SimulatorBackend:
    async def send(self, sms: OutgoingSms) -> SendResult:
        return SendResult(
            outcome=SendOutcome.ACCEPTED,
            duration_ms=0,
            provider_sid=f"{SIMULATED_SID_PREFIX}{uuid.uuid4().hex[:29]}",
            http_status=201,
        )

    async def find_sent(self, *, to: str, sender: str, body: str, since: datetime) -> str | None:
        return None  # the simulator keeps nothing: a crashed send is sent again

    async def fetch_status(self, provider_sid: str) -> tuple[str, int | None]:
        return "delivered", None

    async def aclose(self) -> None:
        return None


def simulated_outcome(phone: str) -> tuple[str, int | None]:
    """The final status and error code the simulator reports for a phone (stable per phone)."""
    bucket = int(hashlib.sha256(phone.encode()).hexdigest()[:8], 16) % 100
    if bucket < len(_FAILURES):
        code, status = _FAILURES[bucket]
        return status, code
    return "delivered", None
