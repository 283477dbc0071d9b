"""The simulator's status reports, through the same path as Twilio's callbacks."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from delivery.backends.simulator import SIMULATED_SID_PREFIX, simulated_outcome
from delivery.models import Message
from delivery.status import apply_provider_status

# The simulated handset takes a moment, so the admin shows messages on their way.
DELIVERY_DELAY = timedelta(seconds=2)


def report_simulated_statuses(*, limit: int = 5_000) -> int:
    """Report ``sent`` then the final status for accepted simulated messages; return count."""
    due = Message.objects.filter(
        status=Message.Status.ACCEPTED,
        provider_sid__startswith=SIMULATED_SID_PREFIX,
        accepted_at__lte=timezone.now() - DELIVERY_DELAY,
    ).values_list("provider_sid", "phone")[:limit]
    reported = 0
    for sid, phone in due:
        status, code = simulated_outcome(phone)
        apply_provider_status(provider_sid=sid, provider_status="sent")
        reported += apply_provider_status(provider_sid=sid, provider_status=status, error_code=code)
    return reported
