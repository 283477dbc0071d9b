"""What the API takes and gives, with the checks that make bad input a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from delivery.api.parsers import unstorable_text
from delivery.errors import describe_error
from delivery.models import Message
from members.phones import InvalidPhoneNumber, normalize_phone

BODY_MAX_LENGTH = 1600  # Twilio refuses longer bodies (error 21617)
METADATA_MAX_BYTES = 4096


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a typo must not be silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        errors: dict[str, Any] = {}
        if isinstance(data, dict):
            errors = {
                _printable_name(name): ["Unknown field."] for name in set(data) - set(self.fields)
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            errors.update(error.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


def _printable_name(name: Any) -> str:
    """A field name safe to echo back: at most 100 characters, valid UTF-8."""
    return str(name)[:100].encode("utf-8", "replace").decode("utf-8")


class StorableCharField(serializers.CharField):
    """Text PostgreSQL can store: DRF already refuses NUL; this refuses unpaired
    surrogates (JSON's "\\ud800"), which are no UTF-8 at all."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        problem = unstorable_text(value)
        if problem:
            raise serializers.ValidationError(problem, code="unstorable")
        return value


class PhoneNumberField(StorableCharField):
    """A phone number in any common format, given back in E.164."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        raw = super().to_internal_value(data)
        try:
            return normalize_phone(raw, region=settings.DEFAULT_PHONE_REGION)
        except InvalidPhoneNumber as error:
            raise serializers.ValidationError(error.message, code=error.code) from None


class SendMessageSerializer(StrictSerializer):
    to = PhoneNumberField(help_text="The recipient, E.164 or national format.")
    body = StorableCharField(max_length=BODY_MAX_LENGTH, trim_whitespace=False)
    sender = StorableCharField(
        required=False,
        max_length=64,
        help_text="One of the configured senders; default: the default sender.",
    )
    send_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Send at this moment (ISO 8601); default: now."
    )
    metadata = serializers.DictField(
        required=False, allow_null=True, help_text="Your own data, given back with the message."
    )

    def validate_body(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The body is empty.")
        return value

    def validate_sender(self, value: str) -> str:
        if value not in settings.SMS_SENDERS:
            raise serializers.ValidationError(
                f"Not one of our senders; use one of: {', '.join(settings.SMS_SENDERS)}."
            )
        return value

    def validate_metadata(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        problem = unstorable_text(value)
        if problem:
            raise serializers.ValidationError(problem, code="unstorable")
        if len(json.dumps(value, ensure_ascii=False).encode()) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(f"At most {METADATA_MAX_BYTES} bytes of JSON.")
        return value


class MessageSerializer(serializers.Serializer):
    """A message as the API shows it. The fields describe it in the schema; the
    representation is built directly, which the busiest answer of the API (every 202)
    needs: DRF's field-by-field walk cost more than the rest of the request."""

    id = serializers.IntegerField()
    url = serializers.URLField(help_text="Where this message's status is read.")
    to = serializers.CharField(help_text="The recipient, E.164.")
    sender = serializers.CharField()
    body = serializers.CharField()
    status = serializers.ChoiceField(choices=Message.Status.choices)
    encoding = serializers.CharField(help_text="GSM-7 or UCS-2.")
    segments = serializers.IntegerField(help_text="Parts the provider bills.")
    error_code = serializers.IntegerField(allow_null=True)
    error_reason = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(allow_null=True)
    send_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, message: Message) -> dict[str, Any]:
        path = reverse("api-message", args=[message.pk])
        request = self.context.get("request")
        if message.error_code is not None:
            error_reason: str | None = describe_error(message.error_code)
        else:
            error_reason = message.error_message or None
        return {
            "id": message.pk,
            "url": request.build_absolute_uri(path) if request is not None else path,
            "to": message.phone,
            "sender": message.sender,
            "body": message.body,
            "status": message.status,
            "encoding": message.encoding,
            "segments": message.segments,
            "error_code": message.error_code,
            "error_reason": error_reason,
            "metadata": message.metadata,
            "send_at": _moment(message.send_after),
            "created_at": _moment(message.created_at),
            "accepted_at": _moment(message.accepted_at),
            "sent_at": _moment(message.sent_at),
            "delivered_at": _moment(message.delivered_at),
            "failed_at": _moment(message.failed_at),
            "canceled_at": _moment(message.canceled_at),
        }


_DATETIME = serializers.DateTimeField()


def _moment(value: Any) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable code: opted_out, not_found, throttled...")
    message = serializers.CharField(help_text="A sentence for people.")


class ValidationErrorSerializer(ErrorSerializer):
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,  # absent when the body was not even JSON (error "parse_error")
        help_text="The messages for each field that did not validate.",
    )
