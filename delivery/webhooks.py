"""Twilio's webhooks: only a valid ``X-Twilio-Signature`` opens them."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator, compare

from delivery.inbound import IncomingText, receive_text
from delivery.status import record_provider_status
from smsadmin.metrics.recording import counted_webhook

logger = logging.getLogger(__name__)


def signature_is_valid(request: HttpRequest) -> bool:
    """Twilio signs the public URL it called plus the form fields, with our auth token."""
    return signature_matches(
        request.POST.dict(),
        signature=request.headers.get("X-Twilio-Signature", ""),
        full_path=request.get_full_path(),
        host=request.headers.get("Host", ""),
    )


def signature_matches(
    fields: Mapping[str, str], *, signature: str, full_path: str, host: str
) -> bool:
    """``signature`` is Twilio's for PUBLIC_BASE_URL + ``full_path`` and these fields.

    ``host`` (the Host header as the proxy passed it) only explains a refusal in the log.
    """
    if not signature or not settings.TWILIO_AUTH_TOKEN:
        return False
    url = settings.PUBLIC_BASE_URL + full_path
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    # The URL as it is first: the signature Twilio sends for it. ``validate`` also tries
    # the URL with its default port added or removed, two more HMACs per callback, which
    # only a refused one needs.
    if compare(validator.compute_signature(url, fields), signature) or validator.validate(
        url, fields, signature
    ):
        return True
    # A mismatch of hosts usually means PUBLIC_BASE_URL is not the address Twilio calls,
    # so every callback fails until it is fixed.
    request_host = host.lower()
    public_host = urlsplit(settings.PUBLIC_BASE_URL).netloc.lower()
    if request_host and request_host != public_host:
        logger.warning(
            "Rejected a Twilio webhook: the request came to host %r but PUBLIC_BASE_URL "
            "names host %r (Twilio signs the address it calls; is PUBLIC_BASE_URL right?)",
            request_host,
            public_host,
        )
    else:
        logger.warning(
            "Rejected a Twilio webhook: the signature does not match %s "
            "(is PUBLIC_BASE_URL the address Twilio calls?)",
            url,
        )
    return False


# ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and numbers too
# big for an integer column. Twilio's codes have five digits.
_SMALL_NUMBER = re.compile(r"[0-9]{1,9}")
# Twilio's SIDs have 34 characters; our columns hold 40.
SID_MAX_LENGTH = 40


def _number(raw: str) -> int | None:
    return int(raw) if _SMALL_NUMBER.fullmatch(raw) else None


def _invalid_fields(sid: str, values: Iterable[str]) -> HttpResponse | None:
    """A 400 for what Twilio never sends and PostgreSQL could not store, else None."""
    if len(sid) > SID_MAX_LENGTH:
        return HttpResponse(
            f"MessageSid is longer than {SID_MAX_LENGTH} characters",
            status=400,
            content_type="text/plain",
        )
    if any("\x00" in value for value in values):
        return HttpResponse(
            "Fields may not contain NUL characters", status=400, content_type="text/plain"
        )
    return None


def _error_code(raw: str) -> int | None:
    return _number(raw)


def _posted_values(request: HttpRequest) -> list[str]:
    return [value for _, values in request.POST.lists() for value in values]


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Status callback: moves a message forward; unknown SIDs change no message.

    A form POST from a WSGI server is answered by :mod:`delivery.status_lane` before it
    gets here; this view answers the rest (Django's test client, other content types)."""
    return answer_status_callback(
        request.POST.dict(),
        values=_posted_values(request),
        signature=request.headers.get("X-Twilio-Signature", ""),
        full_path=request.get_full_path(),
        host=request.headers.get("Host", ""),
    )


@counted_webhook("status")
def answer_status_callback(
    fields: Mapping[str, str],
    *,
    values: Iterable[str],
    signature: str,
    full_path: str,
    host: str,
) -> HttpResponse:
    """The answer to a status callback of these form fields (the last value of each
    name; ``values`` all of them) and this signature, sent to ``full_path``."""
    if not signature_matches(fields, signature=signature, full_path=full_path, host=host):
        return HttpResponse("Invalid signature", status=403, content_type="text/plain")
    sid = fields.get("MessageSid", "") or fields.get("SmsSid", "")
    status = fields.get("MessageStatus", "") or fields.get("SmsStatus", "")
    if not sid or not status:
        return HttpResponse(
            "MessageSid and MessageStatus are required", status=400, content_type="text/plain"
        )
    if invalid := _invalid_fields(sid, values):
        return invalid
    record_provider_status(
        provider_sid=sid,
        provider_status=status,
        error_code=_error_code(fields.get("ErrorCode", "")),
        error_message=fields.get("ErrorMessage", ""),
    )
    return HttpResponse(status=200)


def _media_count(raw: str) -> int:
    return _number(raw) or 0


# We answer through our own sending pipeline, never inline, so the answer is always empty.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@csrf_exempt
@require_POST
@counted_webhook("inbound")
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """A text to one of our numbers: recorded once per MessageSid, keywords acted on."""
    if not signature_is_valid(request):
        return HttpResponse("Invalid signature", status=403, content_type="text/plain")
    sid = request.POST.get("MessageSid", "") or request.POST.get("SmsSid", "")
    sender = request.POST.get("From", "")
    if not sid or not sender:
        return HttpResponse(
            "MessageSid and From are required", status=400, content_type="text/plain"
        )
    if invalid := _invalid_fields(sid, _posted_values(request)):
        return invalid
    receive_text(
        text=IncomingText(
            message_sid=sid,
            from_raw=sender,
            to=request.POST.get("To", ""),
            body=request.POST.get("Body", ""),
            num_media=_media_count(request.POST.get("NumMedia", "")),
            opt_out_type=request.POST.get("OptOutType", ""),
        )
    )
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
