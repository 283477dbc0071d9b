"""How a text gets there: batches of messages, one row per recipient, and every attempt.

``delivery`` sends and tracks messages without knowing who asked for them: a campaign,
the daily message, the API or a staff reply each own a :class:`Batch`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from members.fields import PhoneField


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
    # The local-time window its messages must be sent in (quiet hours); none: any time.
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
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
        # The indexes below that start with the batch serve every lookup by batch.
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=Batch.Kind.choices)
    phone = PhoneField()
    sender = models.CharField(max_length=64)
    body = models.TextField()
    encoding = models.CharField(max_length=8, default="GSM-7")
    segments = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    # NULL, not "", until the provider names it: unique where set (a constraint below),
    # so the fan-out of pending rows pays nothing for an index of empty SIDs.
    provider_sid = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A try may have reached the provider without our hearing back (timeout, 5xx, crash):
    # ask the provider before any new try, so it is never sent twice.
    must_reconcile = models.BooleanField(default=False, db_default=False)
    # The answer to a STOP or HELP the phone just texted: it goes out even though the
    # phone is opted out (the claim-time opt-out check skips it; suppression still holds).
    is_compliance_reply = models.BooleanField(default=False, db_default=False)
    send_after = models.DateTimeField(null=True, blank=True)
    # What an API caller attached to the message (its own ids...), given back as sent.
    metadata = models.JSONField(null=True, blank=True)
    # The recipient's time zones, kept when the batch has quiet hours: a message that
    # comes due outside the window (a long campaign running into the evening) waits.
    recipient_timezones = models.JSONField(null=True, blank=True)
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
            ),
            models.UniqueConstraint(
                fields=["provider_sid"],
                condition=Q(provider_sid__isnull=False),
                name="message_provider_sid_unique",
            ),
        ]
        # Every index ends in ascending ``id`` (scanned backwards for newest first): new
        # rows then land at the right end of their key instead of splitting pages on the
        # left, which made a descending index the dearest part of a fan-out.
        # A fan-out inserts only pending rows: the indexes by status leave pending out
        # (``message_pending_idx`` holds those), so it writes four indexes, not six.
        # Count a batch's messages per status with ``selectors.status_counts``.
        indexes = [
            models.Index(
                fields=["batch", "status"],
                condition=~Q(status="pending"),
                name="message_batch_status_idx",
            ),
            models.Index(fields=["phone", "id"], name="message_phone_idx"),
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
            models.Index(
                fields=["status", "id"], condition=~Q(status="pending"), name="message_status_idx"
            ),
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


class EarlyStatus(models.Model):
    """A status callback that came before we stored the message's SID.

    The provider can call back within milliseconds of accepting a message, before the
    worker has written the SID down. Such a report waits here and is applied as soon as
    the SID is known, instead of being lost.
    """

    provider_sid = models.CharField(max_length=40, db_index=True)
    provider_status = models.CharField(max_length=20)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "early statuses"

    def __str__(self) -> str:
        return f"{self.provider_status} for {self.provider_sid}"


class InboundMessage(models.Model):
    """A text someone sent us, and what we did about it. ``message_sid`` is Twilio's id:
    a retried webhook finds its row and changes nothing more.

    ``action`` is what the text caused: an opt-out, an opt-in, the help text, a join to
    the daily message, a flag for staff (a stop request in words), or nothing.
    ``is_handled`` says no one needs to look at it any more: keyword texts are handled on
    arrival, the rest by staff.
    """

    class Action(models.TextChoices):
        OPTED_OUT = "opted_out", "Opted out"
        OPTED_IN = "opted_in", "Opted back in"
        HELP_SENT = "help_sent", "Help sent"
        JOINED = "joined", "Joined the daily message"
        FLAGGED = "flagged", "Flagged for staff"
        NONE = "none", "None"

    message_sid = models.CharField(max_length=40, unique=True)
    from_phone = PhoneField("from", blank=True, help_text="The sender, normalised (E.164).")
    from_raw = models.CharField("from (as received)", max_length=64, blank=True)
    to = models.CharField(max_length=64, help_text="Our number that received it.")
    body = models.TextField(blank=True)
    num_media = models.PositiveSmallIntegerField("media", default=0)
    received_at = models.DateTimeField(default=timezone.now)
    member = models.ForeignKey(
        "members.Member",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
        db_constraint=False,
    )
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.NONE)
    keyword = models.CharField(max_length=16, blank=True, help_text="The keyword it matched.")
    is_flagged = models.BooleanField(
        "flagged", default=False, help_text="Asks to stop in words, not with a keyword."
    )
    is_handled = models.BooleanField("handled", default=False)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reply = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "inbound text"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["-received_at", "-id"], name="inbound_received_idx"),
            models.Index(fields=["from_phone", "-received_at"], name="inbound_phone_idx"),
            models.Index(
                fields=["-received_at"],
                condition=Q(is_handled=False),
                name="inbound_unhandled_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"From {self.from_phone or self.from_raw} at {self.received_at:%Y-%m-%d %H:%M}"


# The API's models live with the API; imported here so that Django finds them.
from delivery.api.models import ApiKey, IdempotentRequest  # noqa: E402

__all__ = [
    "ApiKey",
    "Attempt",
    "Batch",
    "EarlyStatus",
    "IdempotentRequest",
    "InboundMessage",
    "Message",
]
