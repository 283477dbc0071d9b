"""Twilio's webhooks: only a valid ``X-Twilio-Signature`` opens them."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from delivery.status import apply_provider_status

logger = logging.getLogger(__name__)


def signature_is_valid(request: HttpRequest) -> bool:
    """Twilio signs the public URL it called plus the form fields, with our auth token."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not settings.TWILIO_AUTH_TOKEN:
        return False
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    if validator.validate(url, request.POST.dict(), signature):
        return True
    logger.warning(
        "Rejected a Twilio webhook: the signature does not match %s "
        "(is PUBLIC_BASE_URL the address Twilio calls?)",
        url,
    )
    return False


def _error_code(raw: str) -> int | None:
    return int(raw) if raw.isdigit() else None


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Status callback: moves a message forward; unknown SIDs change nothing."""
    if not signature_is_valid(request):
        return HttpResponse("Invalid signature", status=403, content_type="text/plain")
    sid = request.POST.get("MessageSid", "") or request.POST.get("SmsSid", "")
    status = request.POST.get("MessageStatus", "") or request.POST.get("SmsStatus", "")
    if not sid or not status:
        return HttpResponse(
            "MessageSid and MessageStatus are required", status=400, content_type="text/plain"
        )
    apply_provider_status(
        provider_sid=sid,
        provider_status=status,
        error_code=_error_code(request.POST.get("ErrorCode", "")),
        error_message=request.POST.get("ErrorMessage", ""),
    )
    return HttpResponse(status=200)
