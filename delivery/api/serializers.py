"""What the API takes and gives, with the checks that make bad input a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

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
            errors = {str(name)[:100]: ["Unknown field."] for name in set(data) - set(self.fields)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            errors.update(error.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class PhoneNumberField(serializers.CharField):
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
    body = serializers.CharField(max_length=BODY_MAX_LENGTH, trim_whitespace=False)
    sender = serializers.CharField(
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
        if "\x00" in value:
            raise serializers.ValidationError("The body may not contain NUL characters.")
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
        encoded = json.dumps(value, ensure_ascii=False)
        if len(encoded.encode()) > METADATA_MAX_BYTES or "\\u0000" in encoded:
            raise serializers.ValidationError(
                f"At most {METADATA_MAX_BYTES} bytes of JSON, without NUL characters."
            )
        return value


class MessageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Where this message's status is read.")
    to = serializers.CharField(source="phone")
    send_at = serializers.DateTimeField(source="send_after", allow_null=True)
    error_reason = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = (
            "id",
            "url",
            "to",
            "sender",
            "body",
            "status",
            "encoding",
            "segments",
            "error_code",
            "error_reason",
            "metadata",
            "send_at",
            "created_at",
            "accepted_at",
            "sent_at",
            "delivered_at",
            "failed_at",
            "canceled_at",
        )
        read_only_fields = fields

    def get_url(self, message: Message) -> str:
        path = reverse("api-message", args=[message.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_error_reason(self, message: Message) -> str | None:
        if message.error_code is None:
            return message.error_message or None
        return describe_error(message.error_code)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable code: opted_out, not_found, throttled...")
    message = serializers.CharField(help_text="A sentence for people.")


class ValidationErrorSerializer(ErrorSerializer):
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="The messages for each field that did not validate.",
    )
