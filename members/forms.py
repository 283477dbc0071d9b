"""Admin forms: every phone typed by staff goes through the one normaliser."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf import settings

from members.models import Member, OptOut, Suppression
from members.phones import InvalidPhoneNumber, NormalizedPhone, normalize

PHONE_HELP_TEXT = (
    "Any common format: (415) 555-2671, 415.555.2671, +44 7911 123456. A number without a "
    "+ country code is read as a {region} number. Saved in international form (+14155552671)."
)


class PhoneField(forms.CharField):
    """A phone in any common format in, the normalised number out (``NormalizedPhone``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 40)  # room for spaces, dashes and brackets
        kwargs.setdefault("help_text", PHONE_HELP_TEXT.format(region=settings.DEFAULT_PHONE_REGION))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> NormalizedPhone | None:  # type: ignore[override]
        text = super().clean(value)  # the typed text: required, length
        if not text:
            return None
        try:
            return normalize(text, region=settings.DEFAULT_PHONE_REGION)
        except InvalidPhoneNumber as error:
            raise forms.ValidationError(
                f"{error.message} Please check the number.", code=error.code
            ) from None

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, NormalizedPhone):
            return value.e164
        return value


class MemberAdminForm(forms.ModelForm):
    phone = PhoneField()

    class Meta:
        model = Member
        fields = (
            "phone",
            "first_name",
            "last_name",
            "email",
            "is_community",
            "is_daily_subscriber",
            "daily_send_time",
            "timezone",
            "fields",
        )
        labels = {"fields": "Edit as JSON"}
        widgets = {"fields": forms.Textarea(attrs={"rows": 4, "cols": 60})}

    def clean_phone(self) -> str:
        normalized: NormalizedPhone = self.cleaned_data["phone"]
        # The zones travel with the number; they are not a form field of their own.
        self.instance.number_timezones = list(normalized.timezones)
        return normalized.e164

    def clean_fields(self) -> dict[str, Any]:
        merge_fields = self.cleaned_data.get("fields") or {}
        if not isinstance(merge_fields, dict):
            raise forms.ValidationError(
                "Merge fields must be a JSON object of names and values, e.g. "
                '{"neighborhood": "Mission"}.',
                code="not_an_object",
            )
        nested = sorted(
            name for name, value in merge_fields.items() if isinstance(value, dict | list)
        )
        if nested:
            raise forms.ValidationError(
                "Merge field values must be text or numbers, not lists or objects: "
                + ", ".join(nested),
                code="nested_value",
            )
        return merge_fields

    def clean_timezone(self) -> str:
        zone = self.cleaned_data.get("timezone", "").strip()
        if zone and zone not in zoneinfo.available_timezones():
            raise forms.ValidationError(
                f"{zone!r} is not a time zone name; use one like America/New_York, or leave "
                "it blank to use the number's.",
                code="unknown_timezone",
            )
        return zone


class ContactBlockAddForm(forms.ModelForm):
    """Adding an opt-out or a suppression by hand: one number, refused if already blocked."""

    phone = PhoneField()
    already_blocked_message = "This number is already blocked."

    def clean_phone(self) -> str:
        e164 = self.cleaned_data["phone"].e164
        if self._meta.model.objects.active().filter(phone=e164).exists():
            raise forms.ValidationError(self.already_blocked_message, code="already_blocked")
        return e164


class OptOutAddForm(ContactBlockAddForm):
    already_blocked_message = "This number is already opted out."

    class Meta:
        model = OptOut
        fields = ("phone", "reason")


class SuppressionAddForm(ContactBlockAddForm):
    already_blocked_message = "This number is already suppressed."

    class Meta:
        model = Suppression
        fields = ("phone", "reason", "detail")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].initial = Suppression.Reason.STAFF
