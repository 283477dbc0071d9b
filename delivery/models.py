"""How a text gets there: batches of messages, one row per recipient, and every attempt.

``delivery`` sends and tracks messages without knowing who asked for them: a campaign,
the daily message, the API or a staff reply each own a :class:`Batch`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Batch(models.Model):
    """Messages sent together for one purpose. Pausing a batch stops its sending."""

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        DAILY = "daily", "Daily message"
        API = "api", "API"
        REPLY = "reply", "Reply"
        TEST = "test", "Test message"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=200)
    sender = models.CharField(
        max_length=64, help_text="A Twilio phone number or Messaging Service SID."
    )
    is_paused = models.BooleanField(default=False)
    pause_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker last claimed messages of this batch: the sweeper re-dispatches a batch
    # with due messages that nobody has touched for a while (a lost task is only a delay).
    last_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.label


# Kinds of batch in which a phone may get at most one message (fan-out is idempotent).
ONE_PER_PHONE_KINDS = (Batch.Kind.CAMPAIGN, Batch.Kind.DAILY)


class Message(models.Model):
    """One outbound text to one phone.

    Status lifecycle (it only ever moves forward)::

        pending ──▶ sending ──▶ accepted ──▶ sent ──▶ delivered
           │           │            │          └────▶ undelivered | failed
           │           │            └───────────────▶ undelivered | failed
           │           ├──▶ failed      (the provider refused it for good: 4xx with a code)
           │           └──▶ pending     (transient error: retried later, bounded)
           └──▶ canceled  (batch canceled, or the phone opted out / was suppressed before
                          it was handed to the provider)

    ``pending``: waiting to be sent, not before ``send_after`` when set. ``sending``: a
    worker claimed it and may have handed it to the provider; a row left here by a dead
    worker is reconciled against the provider, never blindly resent. ``accepted``: the
    provider took it (Twilio ``queued``/``accepted``). ``sent``/``delivered``/
    ``undelivered``/``failed`` come from the provider's status callbacks, applied only
    when they move the message forward.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        ACCEPTED = "accepted", "Accepted by provider"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    batch = models.ForeignKey(
        Batch,
        on_delete=models.PROTECT,
        related_name="messages",
        # No database-level constraint: a million-row fan-out would queue a deferred
        # check per row. Batches are never deleted while they have messages (PROTECT).
        db_constraint=False,
    )
    kind = models.CharField(max_length=16, choices=Batch.Kind.choices)
    phone = models.CharField(max_length=16)
    sender = models.CharField(max_length=64)
    body = models.TextField()
    encoding = models.CharField(max_length=8, default="GSM-7")
    segments = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    provider_sid = models.CharField(max_length=40, null=True, blank=True, unique=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A try may have reached the provider without our hearing back (timeout, 5xx, crash):
    # ask the provider before any new try, so it is never sent twice.
    must_reconcile = models.BooleanField(default=False)
    send_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    status_updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "phone"],
                condition=Q(kind__in=ONE_PER_PHONE_KINDS),
                name="one_message_per_phone_per_batch",
            )
        ]
        indexes = [
            models.Index(fields=["batch", "status"], name="message_batch_status_idx"),
            models.Index(fields=["phone", "-id"], name="message_phone_idx"),
            models.Index(
                fields=["batch", "id"],
                condition=Q(status="pending"),
                name="message_pending_idx",
            ),
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="sending"),
                name="message_sending_idx",
            ),
            models.Index(fields=["status", "-id"], name="message_status_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} to {self.phone} ({self.status})"


class Attempt(models.Model):
    """One try at handing a message to the provider: when, how it went, how long it took."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        RETRY = "retry", "Transient error, retried"
        UNKNOWN = "unknown", "No clear answer; to be checked with the provider"
        FAILED = "failed", "Refused for good"
        RECONCILED = "reconciled", "Found at the provider after a crash"

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="attempt_set", db_constraint=False
    )
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["message", "-started_at"], name="attempt_message_idx")]

    def __str__(self) -> str:
        return f"{self.outcome} for message #{self.message_id}"
