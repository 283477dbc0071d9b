"""The compose form. The template and audience rules live in ``Campaign.clean()``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign, default_sender


def sender_choices() -> list[tuple[str, str]]:
    # Read when the form is drawn, so that the setting is the one source of senders.
    return [(sender, sender) for sender in settings.SMS_SENDERS]


class CampaignForm(forms.ModelForm):
    sender = forms.ChoiceField(
        choices=sender_choices,
        initial=default_sender,
        help_text="The Twilio phone number or Messaging Service the texts come from.",
    )

    class Meta:
        model = Campaign
        fields = ("name", "audience", "event", "sender", "body", "send_at", "respect_quiet_hours")
        widgets = {"body": forms.Textarea(attrs={"rows": 6, "cols": 80})}

    def clean_send_at(self) -> Any:
        send_at = self.cleaned_data.get("send_at")
        if send_at is not None and "send_at" in self.changed_data and send_at <= timezone.now():
            raise forms.ValidationError("Pick a time in the future.", code="send_at_past")
        return send_at

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        # The event select is hidden unless the audience is an event: a value left in it
        # from an earlier choice is not what staff see, so drop it.
        if cleaned_data.get("audience") != Campaign.Audience.EVENT:
            cleaned_data["event"] = None
        return cleaned_data
