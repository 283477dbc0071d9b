"""The daily positive message: one text per date, where it came from, and how it was made."""

from __future__ import annotations

from datetime import date as Date

from django.conf import settings
from django.db import models
from django.utils import timezone

from delivery.models import Batch
from members.models import staff_reference


class DailyMessage(models.Model):
    """The text every subscriber gets on one local date.

    ``attempts`` is the history of how it was made: every text the AI offered (with the
    check that rejected it, if any) and every API failure, then the fallback when it was
    needed. Subscribers on ``date`` in their own time zone get ``text`` through
    ``batch``, which is created when the first of them is due; from then on the text is
    fixed, so everyone gets the same words.
    """

    class Source(models.TextChoices):
        AI = "ai", "Written by AI"
        FALLBACK = "fallback", "Fallback library"
        STAFF = "staff", "Written by staff"

    date = models.DateField(unique=True)
    text = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices)
    model = models.CharField(
        max_length=100, blank=True, help_text="The AI model that wrote it, if any."
    )
    attempts = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    edited_at = models.DateTimeField(null=True, blank=True, editable=False)
    edited_by = staff_reference()
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    approved_by = staff_reference()
    batch = models.OneToOneField(
        Batch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="daily_message",
        editable=False,
    )

    class Meta:
        ordering = ["-date"]
        permissions = [("approve_dailymessage", "Can approve a daily message for sending")]

    def __str__(self) -> str:
        return f"Daily message for {self.date:%Y-%m-%d}"

    @property
    def is_approved(self) -> bool:
        return self.approved_at is not None

    @property
    def may_be_sent(self) -> bool:
        """Whether subscribers may get it: approved, or no approval is required."""
        return self.is_approved or not settings.DAILY_MESSAGE_REQUIRE_APPROVAL

    @property
    def has_gone_out(self) -> bool:
        """Whether any subscriber was given it: its text can no longer change."""
        return self.batch_id is not None and self.batch.messages.exists()


def texts_near(day: Date, *, days: int) -> list[str]:
    """The daily texts of the ``days`` dates either side of ``day`` (not its own), nearest
    first. Later dates count too: tomorrow's may be written before today's."""
    nearby = DailyMessage.objects.filter(
        date__gte=Date.fromordinal(day.toordinal() - days),
        date__lte=Date.fromordinal(day.toordinal() + days),
    ).exclude(date=day)
    rows = nearby.values_list("date", "text")
    return [
        text for _, text in sorted(rows, key=lambda row: abs(row[0].toordinal() - day.toordinal()))
    ]
