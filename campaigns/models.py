"""What we send: a campaign is one body template texted to one audience, once."""

from __future__ import annotations

import datetime
import difflib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from campaigns.templating import MEMBER_COLUMNS, TemplateError, parse_template
from delivery.quiet_hours import default_window, parse_window
from delivery.segments import gsm_replacement
from members.models import staff_reference


def default_sender() -> str:
    # A callable, not the value: changing the setting must not need a migration.
    return settings.SMS_DEFAULT_SENDER


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def due(self, now: datetime.datetime | None = None) -> CampaignQuerySet:
        """Scheduled campaigns whose send time has come (``now`` defaults to the clock)."""
        return self.filter(state=Campaign.State.SCHEDULED, send_at__lte=now or timezone.now())

    def in_progress(self) -> CampaignQuerySet:
        return self.filter(state=Campaign.State.SENDING)


class Campaign(models.Model):
    """One body template texted to one audience: the community pool or one event's registrants.

    State machine (only the services in ``campaigns.services`` move a campaign)::

        draft ───────send now───────▶ sending ──▶ done
          │                            ▲   └────▶ failed
          └─schedule─▶ scheduled ──────┘  (send now, or beat once send_at is reached)

        draft | scheduled | sending ──cancel──▶ canceled

    Approval, when ``CAMPAIGN_APPROVAL_REQUIRED`` is on, happens while it is a draft::

        not submitted ──submit──▶ submitted ──approve──▶ approved
              ▲                       └──send back──▶ changes requested ──submit──┘
              └── an edit of what was reviewed (body, audience, event, sender)

    Only an approved campaign may be sent now or scheduled. An edit of what was reviewed
    takes the approval back (and a scheduled campaign back to draft), so what goes out
    is always what an Admin read. ``reviewed_by``/``reviewed_at`` are the Admin who
    approved it or sent it back, ``review_comment`` what they asked for.

    ``draft``: being written. ``scheduled``: waits for ``send_at``; beat launches it
    when due. Both stay editable. ``sending``: launched: the audience was fanned out into
    the ``batch``'s messages (the recipient counters are recorded then) and workers are
    sending them; the campaign is read-only from here on. ``done``: every message reached
    a final status. ``failed``: launching or sending stopped for good
    (``failure_reason`` says why). ``canceled``: staff canceled it; messages not yet
    handed to the provider are canceled with it. ``done``, ``failed`` and ``canceled``
    are final.

    The ``can_*`` properties are the state checks the services and the admin share.
    """

    class Audience(models.TextChoices):
        COMMUNITY = "community", "Community members"
        EVENT = "event", "Registrants of one event"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        CANCELED = "canceled", "Canceled"
        FAILED = "failed", "Failed"

    class ApprovalStatus(models.TextChoices):
        NOT_SUBMITTED = "not_submitted", "Not submitted"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    EDITABLE_STATES = (State.DRAFT, State.SCHEDULED)
    LAUNCHABLE_STATES = (State.DRAFT, State.SCHEDULED)
    CANCELABLE_STATES = (State.DRAFT, State.SCHEDULED, State.SENDING)
    FINAL_STATES = (State.DONE, State.CANCELED, State.FAILED)
    SUBMITTABLE_APPROVAL_STATUSES = (ApprovalStatus.NOT_SUBMITTED, ApprovalStatus.CHANGES_REQUESTED)
    # What an Admin approves: changing one of these takes the approval back.
    REVIEWED_FIELDS = ("audience", "event", "sender", "body")

    name = models.CharField(max_length=200)
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.COMMUNITY)
    event = models.ForeignKey(
        "members.Event",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Whose registrants get the campaign (event audience only).",
    )
    body = models.TextField(
        help_text="Merge fields: {first_name}, {first_name|friend} (with a fallback), any "
        "imported column such as {neighborhood}. Write {{ and }} for literal braces."
    )
    # Choices come from settings.SMS_SENDERS in the form, so that changing them needs no
    # migration.
    sender = models.CharField(
        max_length=64,
        default=default_sender,
        help_text="The Twilio phone number or Messaging Service the texts come from.",
    )
    send_at = models.DateTimeField(
        "send time", null=True, blank=True, help_text="When to send it once scheduled."
    )
    respect_quiet_hours = models.BooleanField(
        default=True, help_text="Hold texts for a member until their quiet hours end."
    )
    quiet_hours_window = models.CharField(
        "sending window",
        max_length=11,
        blank=True,
        help_text=(
            "Local hours when members may get this campaign, e.g. 10:00-18:00. "
            "Blank: the organisation's default."
        ),
    )
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.DRAFT, db_index=True
    )
    batch = models.OneToOneField(
        "delivery.Batch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaign",
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    canceled_at = models.DateTimeField(null=True, blank=True, editable=False)
    failure_reason = models.TextField(blank=True, editable=False)

    approval_status = models.CharField(
        "approval",
        max_length=20,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.NOT_SUBMITTED,
        db_index=True,
        editable=False,
    )
    submitted_by = staff_reference()
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    reviewed_by = staff_reference()
    reviewed_at = models.DateTimeField(null=True, blank=True, editable=False)
    review_comment = models.TextField(blank=True, editable=False)

    # Set once, at fan-out: who got a message and who was left out, and why.
    recipients_count = models.PositiveIntegerField("recipients", default=0, editable=False)
    excluded_opted_out = models.PositiveIntegerField("opted out", default=0, editable=False)
    excluded_suppressed = models.PositiveIntegerField("suppressed", default=0, editable=False)
    excluded_duplicates = models.PositiveIntegerField("duplicate phones", default=0, editable=False)
    excluded_no_phone = models.PositiveIntegerField("no phone", default=0, editable=False)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_campaign", "Can approve a campaign for sending")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(audience="event") & Q(event__isnull=False))
                | (~Q(audience="event") & Q(event__isnull=True)),
                name="campaign_event_iff_event_audience",
                violation_error_message="An event audience needs an event; "
                "other audiences have none.",
            )
        ]
        indexes = [
            # What beat looks for every minute: scheduled campaigns by send time.
            models.Index(
                fields=["send_at"], condition=Q(state="scheduled"), name="campaign_due_idx"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def can_edit(self) -> bool:
        return self.state in self.EDITABLE_STATES

    @property
    def can_launch(self) -> bool:
        return self.state in self.LAUNCHABLE_STATES

    @property
    def can_cancel(self) -> bool:
        return self.state in self.CANCELABLE_STATES

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def can_submit(self) -> bool:
        return (
            settings.CAMPAIGN_APPROVAL_REQUIRED
            and self.state == self.State.DRAFT
            and self.approval_status in self.SUBMITTABLE_APPROVAL_STATUSES
        )

    @property
    def can_review(self) -> bool:
        return (
            self.state == self.State.DRAFT and self.approval_status == self.ApprovalStatus.SUBMITTED
        )

    @property
    def is_cleared_to_send(self) -> bool:
        """Approved, or no approval is required."""
        return (
            not settings.CAMPAIGN_APPROVAL_REQUIRED
            or self.approval_status == self.ApprovalStatus.APPROVED
        )

    def approval_refusal(self) -> str:
        """Why it may not be sent or scheduled yet, or "" when it may."""
        if self.is_cleared_to_send:
            return ""
        if self.approval_status == self.ApprovalStatus.SUBMITTED:
            return "This campaign awaits an Admin's approval: it cannot be sent or scheduled yet."
        if self.approval_status == self.ApprovalStatus.CHANGES_REQUESTED:
            return (
                "An Admin sent this campaign back for changes: edit it and submit it for "
                "approval again before sending or scheduling it."
            )
        return (
            "This campaign needs an Admin's approval before it can be sent or scheduled: "
            "submit it for approval."
        )

    def withdraw_approval(self) -> bool:
        """After an edit of a reviewed field: submitted or approved goes back to not
        submitted, and, when approval is required, a scheduled campaign back to draft.
        True if the approval status changed."""
        values: dict[str, object] = {
            "approval_status": self.ApprovalStatus.NOT_SUBMITTED,
            "reviewed_by": None,
            "reviewed_at": None,
            "updated_at": timezone.now(),
        }
        if settings.CAMPAIGN_APPROVAL_REQUIRED:
            values["state"] = Case(
                When(state=self.State.SCHEDULED, then=Value(self.State.DRAFT)),
                default=F("state"),
            )
        changed = Campaign.objects.filter(
            pk=self.pk,
            state__in=self.EDITABLE_STATES,
            approval_status__in=[self.ApprovalStatus.SUBMITTED, self.ApprovalStatus.APPROVED],
        ).update(**values)
        if changed:
            self.refresh_from_db()
        return bool(changed)

    def use_gsm_characters(self) -> bool:
        """Replace the body's characters that have a GSM-7 look-alike (curly quotes, dashes...)
        so that it is sent as GSM-7; only while editable. True if the body changed."""
        replaced = gsm_replacement(self.body)
        if replaced == self.body or not self.can_edit:
            return False
        changed = Campaign.objects.filter(pk=self.pk, state__in=self.EDITABLE_STATES).update(
            body=replaced, updated_at=timezone.now()
        )
        if changed:
            self.body = replaced
            self.withdraw_approval()  # the body an Admin read is not the one that would go
        return bool(changed)

    def clean(self) -> None:
        """The event matches the audience, and the body is a template every recipient fits.

        A merge field must be a member column or a key some member of this audience has
        in ``fields``: a typo would otherwise text everyone the fallback.
        """
        errors: dict[str, str] = {}
        if self.audience == self.Audience.EVENT and self.event_id is None:
            errors["event"] = "Pick the event whose registrants get this campaign."
        elif self.audience != self.Audience.EVENT and self.event_id is not None:
            errors["event"] = "Only an event audience has an event: clear it."
        if self.quiet_hours_window:
            try:
                parse_window(self.quiet_hours_window)
            except ValueError as error:
                errors["quiet_hours_window"] = str(error)
        try:
            template = parse_template(self.body or "")
        except TemplateError as error:
            errors["body"] = str(error)
        else:
            if "event" not in errors:
                unknown_message = self._unknown_fields_message(template.fields)
                if unknown_message:
                    errors["body"] = unknown_message
        if errors:
            raise ValidationError(errors)

    def sending_window(self) -> tuple[datetime.time, datetime.time] | None:
        """The local-time window its texts must fall in, or None when it sends at once."""
        if not self.respect_quiet_hours:
            return None
        return (
            parse_window(self.quiet_hours_window) if self.quiet_hours_window else default_window()
        )

    def _unknown_fields_message(self, fields: tuple[str, ...]) -> str:
        # audience imports this module (for the Audience choices): import it when used.
        from campaigns.audience import audience_pool
        from campaigns.merge_fields import known_merge_fields

        if all(name in MEMBER_COLUMNS for name in fields):
            return ""  # no need to scan the audience's imported columns
        known = known_merge_fields(audience_pool(self))
        unknown = [name for name in fields if name not in known]
        if not unknown:
            return ""
        described = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            described.append(f"{{{name}}}{hint}")
        noun, pronoun = ("field", "it") if len(unknown) == 1 else ("fields", "them")
        return (
            f"Unknown merge {noun} {', '.join(described)}: no member of this audience has "
            f"{pronoun}. Known fields: {', '.join(sorted(known))}."
        )
