"""Twilio's wire formats, as the fake Twilio writes them.

Shapes follow what api.twilio.com returns for the 2010-04-01 Messages resource: JSON
keys in Twilio's order, dates in RFC 2822 with ``+0000``, counts as strings, error
bodies ``{"code", "message", "more_info", "status"}``, and webhooks signed with
HMAC-SHA1 of the URL plus the sorted parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

API_VERSION = "2010-04-01"

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
SHORT_CODE = re.compile(r"[0-9]{3,6}")
ALPHANUMERIC_SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")
MAX_BODY_CHARACTERS = 1600

# The sentences Twilio uses for the errors the fake produces; any other injected code
# gets a generic sentence.
ERROR_MESSAGES = {
    20001: "Invalid parameter",
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, "
    "or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by "
    "the 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid StatusCallback url: {url}",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' "
    "phone number: {from_} via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21701: "The Messaging Service Sid {messaging_service_sid} is invalid.",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}


def error_message(code: int, **details: object) -> str:
    template = ERROR_MESSAGES.get(code, f"Error {code}")
    try:
        return template.format(**details)
    except (KeyError, IndexError):
        return template


def error_body(status: int, code: int, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_last_formatted: tuple[int, str] = (-1, "")


def rfc2822(timestamp: float | None) -> str | None:
    """``Thu, 24 Aug 2023 05:01:45 +0000``, as Twilio writes dates (never localised)."""
    global _last_formatted  # most dates in a burst fall in the same second
    if timestamp is None:
        return None
    second = int(timestamp)
    cached = _last_formatted
    if cached[0] != second:
        t = time.gmtime(second)
        text = (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
        )
        cached = _last_formatted = (second, text)
    return cached[1]


def dlr_done_date(timestamp: float) -> str:
    """The carrier's delivery-report time, ``YYMMDDhhmm`` in UTC (``RawDlrDoneDate``)."""
    return time.strftime("%y%m%d%H%M", time.gmtime(timestamp))


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL and the sorted name+value pairs."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(slots=True)
class FakeMessage:
    """A message as the fake Twilio holds it; ``to_json()`` is Twilio's representation."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status: str
    segments: int
    num_media: int
    status_callback: str | None
    date_created: float
    date_updated: float
    date_sent: float | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, object]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(self.num_media),
            # Twilio reports 0 until a Messaging Service has picked the sender.
            "num_segments": "0" if self.status == "accepted" else str(self.segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
                "/Media.json",
            },
            "to": self.to,
            "uri": self.uri,
        }

    def callback_fields(self) -> dict[str, str]:
        """The form fields of a status callback for the message's current status."""
        fields = {
            "SmsSid": self.sid,
            "SmsStatus": self.status,
            "MessageStatus": self.status,
            "To": self.to,
            "MessageSid": self.sid,
            "AccountSid": self.account_sid,
            "From": self.from_ or "",
            "ApiVersion": API_VERSION,
        }
        if self.messaging_service_sid:
            fields["MessagingServiceSid"] = self.messaging_service_sid
        if self.error_code is not None:
            fields["ErrorCode"] = str(self.error_code)
        if self.status in {"delivered", "undelivered"}:
            fields["RawDlrDoneDate"] = dlr_done_date(self.date_updated)
        return fields
