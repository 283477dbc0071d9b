"""What staff and beat do to campaigns: launch, schedule, cancel, retry, test, and the
approval that may have to come first (submit, approve, send back).

Launching claims the campaign row with ``select_for_update(skip_locked=True)``, so two
beats or two workers never launch one campaign twice; the fan-out happens in the same
transaction, and the sending is enqueued only once it commits.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.audience import eligible_members, exclusion_counts
from campaigns.fanout import fan_out
from campaigns.merge_fields import merge_values
from campaigns.models import Campaign
from campaigns.templating import parse_template
from delivery.dispatch import dispatch_batch
from delivery.errors import PROVIDER_ERRORS, ErrorKind
from delivery.models import Batch, Message
from delivery.segments import analyze
from members.models import OptOut, Suppression
from members.roles import ADMIN

logger = logging.getLogger(__name__)
State = Campaign.State


Approval = Campaign.ApprovalStatus
APPROVE_PERMISSION = "campaigns.approve_campaign"
CHANGED_MEANWHILE = "The campaign changed meanwhile; reload and try again."


class CampaignActionError(Exception):
    """A refused action, with a message staff can read."""


def launch_campaign(*, campaign_id: int, by: Any = None) -> bool:
    """Launch a draft or scheduled campaign now; False if it was not launchable or taken."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True)
            .filter(pk=campaign_id, state__in=Campaign.LAUNCHABLE_STATES)
            .first()
        )
        if campaign is None:
            return False
        refusal = campaign.approval_refusal()
        if refusal:
            raise CampaignActionError(refusal)
        now = timezone.now()
        window = campaign.sending_window()
        batch = Batch.objects.create(
            kind=Batch.Kind.CAMPAIGN,
            label=f"Campaign: {campaign.name}"[:200],
            sender=campaign.sender,
            quiet_hours_start=window[0] if window else None,
            quiet_hours_end=window[1] if window else None,
        )
        excluded = exclusion_counts(campaign)
        created = fan_out(campaign=campaign, batch=batch)
        campaign.batch = batch
        campaign.launched_at = now
        campaign.recipients_count = created
        campaign.excluded_opted_out = excluded.opted_out
        campaign.excluded_suppressed = excluded.suppressed
        campaign.excluded_duplicates = excluded.duplicate_phones
        campaign.excluded_no_phone = excluded.no_phone
        if created:
            campaign.state = State.SENDING
            dispatch_batch(batch_id=batch.pk)
        else:
            campaign.state = State.DONE
            campaign.finished_at = now
        campaign.save()
    logger.info("Launched campaign %s to %s recipients", campaign_id, created)
    return True


def launch_due_campaigns() -> list[int]:
    """Launch every scheduled campaign whose time has come (beat, every ~15 s)."""
    launched = []
    for campaign_id in Campaign.objects.due().values_list("pk", flat=True):
        try:
            if launch_campaign(campaign_id=campaign_id):
                launched.append(campaign_id)
        except CampaignActionError as error:
            # Scheduled before approval was required: it waits for an Admin.
            logger.warning("Scheduled campaign %s not launched: %s", campaign_id, error)
    return launched


def schedule_campaign(*, campaign: Campaign, send_at: datetime, by: Any = None) -> None:
    if campaign.state not in Campaign.EDITABLE_STATES:
        raise CampaignActionError(
            f"A {campaign.get_state_display().lower()} campaign cannot be scheduled."
        )
    refusal = campaign.approval_refusal()
    if refusal:
        raise CampaignActionError(refusal)
    if send_at <= timezone.now():
        raise CampaignActionError("The send time must be in the future.")
    still_as_checked = Campaign.objects.filter(pk=campaign.pk, state__in=Campaign.EDITABLE_STATES)
    if settings.CAMPAIGN_APPROVAL_REQUIRED:
        still_as_checked = still_as_checked.filter(approval_status=Approval.APPROVED)
    changed = still_as_checked.update(
        state=State.SCHEDULED, send_at=send_at, updated_at=timezone.now()
    )
    if not changed:
        raise CampaignActionError(CHANGED_MEANWHILE)
    campaign.refresh_from_db()


def submit_campaign_for_approval(*, campaign: Campaign, by: Any) -> None:
    """A draft goes to the Admins for approval."""
    if not settings.CAMPAIGN_APPROVAL_REQUIRED:
        raise CampaignActionError("Campaigns need no approval here: send or schedule it.")
    if not campaign.can_submit:
        raise CampaignActionError(_cannot("submitted for approval", campaign))
    now = timezone.now()
    changed = Campaign.objects.filter(
        pk=campaign.pk,
        state=State.DRAFT,
        approval_status__in=Campaign.SUBMITTABLE_APPROVAL_STATUSES,
    ).update(
        approval_status=Approval.SUBMITTED,
        submitted_by=by,
        submitted_at=now,
        reviewed_by=None,
        reviewed_at=None,
        review_comment="",
        updated_at=now,
    )
    if not changed:
        raise CampaignActionError(CHANGED_MEANWHILE)
    campaign.refresh_from_db()


def approve_campaign(*, campaign: Campaign, by: Any) -> None:
    """An Admin approves a submitted campaign: it may then be sent or scheduled.

    Four eyes: its author (who created or submitted it) may approve it only when no other
    active Admin could.
    """
    _check_may_review(campaign, by)
    authors = {campaign.created_by_id, campaign.submitted_by_id} - {None}
    if by.pk in authors and _other_active_admins(by).exists():
        raise CampaignActionError(
            "You wrote or submitted this campaign: another Admin must approve it."
        )
    _review(campaign, by, status=Approval.APPROVED, comment="")


def send_back_campaign(*, campaign: Campaign, by: Any, comment: str) -> None:
    """An Admin sends a submitted campaign back to its author, saying what to change."""
    comment = comment.strip()
    if not comment:
        raise CampaignActionError(
            "Say what should change: a comment is required to send a campaign back."
        )
    _check_may_review(campaign, by)
    _review(campaign, by, status=Approval.CHANGES_REQUESTED, comment=comment)


def _check_may_review(campaign: Campaign, by: Any) -> None:
    if not by.has_perm(APPROVE_PERMISSION):
        raise CampaignActionError("Only an Admin may approve a campaign or send it back.")
    if not campaign.can_review:
        raise CampaignActionError(_cannot("reviewed", campaign, "only a submitted draft can be"))


def _review(campaign: Campaign, by: Any, *, status: str, comment: str) -> None:
    now = timezone.now()
    changed = Campaign.objects.filter(
        pk=campaign.pk, state=State.DRAFT, approval_status=Approval.SUBMITTED
    ).update(
        approval_status=status,
        reviewed_by=by,
        reviewed_at=now,
        review_comment=comment,
        updated_at=now,
    )
    if not changed:
        raise CampaignActionError(CHANGED_MEANWHILE)
    campaign.refresh_from_db()


def _other_active_admins(user: Any) -> Any:
    return get_user_model().objects.filter(groups__name=ADMIN, is_active=True).exclude(pk=user.pk)


def _cannot(what: str, campaign: Campaign, rule: str = "") -> str:
    state = campaign.get_state_display().lower()
    status = campaign.get_approval_status_display().lower()
    sentence = f"A {state} campaign that is {status} cannot be {what}"
    return f"{sentence}: {rule}." if rule else f"{sentence}."


def cancel_campaign(*, campaign: Campaign, by: Any = None) -> int:
    """Cancel a campaign; messages not yet handed to the provider are canceled with it."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state not in Campaign.CANCELABLE_STATES:
            raise CampaignActionError(
                f"A {locked.get_state_display().lower()} campaign cannot be canceled."
            )
        now = timezone.now()
        canceled = 0
        if locked.batch_id:
            canceled = Message.objects.filter(
                batch_id=locked.batch_id, status=Message.Status.PENDING
            ).update(
                status=Message.Status.CANCELED,
                canceled_at=now,
                status_updated_at=now,
                error_message="Campaign canceled",
            )
        locked.state = State.CANCELED
        locked.canceled_at = now
        locked.save(update_fields=["state", "canceled_at", "updated_at"])
    campaign.refresh_from_db()
    return canceled


def _transient_failures(batch_id: int) -> Any:
    transient_codes = [
        error.code for error in PROVIDER_ERRORS.values() if error.kind == ErrorKind.TRANSIENT
    ]
    # No code: our own retries ran out on timeouts, 429s or 5xx.
    return Message.objects.filter(
        Q(error_code__in=transient_codes) | Q(error_code__isnull=True),
        batch_id=batch_id,
        status__in=[Message.Status.FAILED, Message.Status.UNDELIVERED],
    )


def retry_failed_messages(*, campaign: Campaign, by: Any = None) -> int:
    """Send again the messages whose failure was transient; return how many."""
    if not campaign.batch_id or campaign.state not in (State.SENDING, State.DONE):
        raise CampaignActionError("Only a sending or finished campaign has messages to retry.")
    now = timezone.now()
    with transaction.atomic():
        retried = (
            _transient_failures(campaign.batch_id)
            .exclude(phone__in=OptOut.objects.active().values("phone"))
            .exclude(phone__in=Suppression.objects.active().values("phone"))
            .update(
                status=Message.Status.PENDING,
                provider_sid=None,
                error_code=None,
                error_message="",
                send_after=None,
                claimed_at=None,
                failed_at=None,
                status_updated_at=now,
            )
        )
        if retried:
            Campaign.objects.filter(pk=campaign.pk).update(
                state=State.SENDING, finished_at=None, updated_at=now
            )
            dispatch_batch(batch_id=campaign.batch_id)
    campaign.refresh_from_db()
    return retried


def send_test_message(*, campaign: Campaign, to_phone: str, by: Any = None) -> Message:
    """Send the campaign's message, rendered for a sample recipient, to one staff phone."""
    if not to_phone:
        raise CampaignActionError("Set your phone number in your staff profile first.")
    if OptOut.objects.active().filter(phone=to_phone).exists():
        raise CampaignActionError(f"{to_phone} has opted out; it cannot get a test.")
    template = parse_template(campaign.body)
    sample = eligible_members(campaign).order_by("pk").first()
    body = template.render(merge_values(sample) if sample else {}).text
    if not body.strip():
        raise CampaignActionError("The message is empty.")
    shape = analyze(body)
    with transaction.atomic():
        batch = Batch.objects.create(
            kind=Batch.Kind.TEST,
            label=f"Test of campaign: {campaign.name}"[:200],
            sender=campaign.sender,
        )
        message = Message.objects.create(
            batch=batch,
            kind=Batch.Kind.TEST,
            phone=to_phone,
            sender=campaign.sender,
            body=body,
            encoding=shape.encoding,
            segments=shape.segments,
        )
        dispatch_batch(batch_id=batch.pk, chains=1)
    return message


def finish_sent_campaigns() -> list[int]:
    """Mark done the sending campaigns with nothing left to hand to the provider."""
    # One EXISTS per status: each probes its partial index (message_pending_idx,
    # message_sending_idx). With "status IN (pending, sending)" the
    # planner scanned the whole message table once per campaign in progress.
    pending, sending = (
        Exists(Message.objects.filter(batch_id=OuterRef("batch_id"), status=status))
        for status in (Message.Status.PENDING, Message.Status.SENDING)
    )
    finished = list(
        Campaign.objects.in_progress()
        .exclude(pending)
        .exclude(sending)
        .values_list("pk", flat=True)
    )
    if finished:
        Campaign.objects.filter(pk__in=finished, state=State.SENDING).update(
            state=State.DONE, finished_at=timezone.now()
        )
    return finished
