"""The campaign page's buttons and JSON endpoints (mounted by ``CampaignAdmin.get_urls``).

Every button is a POST that needs ``campaigns.change_campaign`` (Approve and Send back
also ``campaigns.approve_campaign``), calls one service and comes back to the change
page with what happened, or why it was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize

from campaigns import services
from campaigns.models import Campaign
from campaigns.templating import TemplateError, parse_template
from delivery.models import Message
from delivery.segments import analyze
from delivery.selectors import batch_progress
from delivery.suppression import resume_batch
from members.models import StaffProfile

if TYPE_CHECKING:
    from campaigns.admin import CampaignAdmin

CHANGE_PERMISSION = "campaigns.change_campaign"
APPROVE_PERMISSION = services.APPROVE_PERMISSION
NO_STAFF_PHONE_MESSAGE = (
    "You have no phone number for test messages yet: set it under “My profile” at the "
    "top of the page, then send the test again."
)


@dataclass(frozen=True)
class Outcome:
    message: str
    level: int = messages.SUCCESS


@dataclass(frozen=True)
class CampaignAction:
    slug: str
    url_name: str
    perform: Callable[[HttpRequest, Campaign], Outcome]
    permissions: tuple[str, ...] = (CHANGE_PERMISSION,)


def _send_test(request: HttpRequest, campaign: Campaign) -> Outcome:
    phone = StaffProfile.objects.filter(user=request.user).values_list("phone", flat=True).first()
    if not phone:
        return Outcome(NO_STAFF_PHONE_MESSAGE, messages.ERROR)
    message = services.send_test_message(campaign=campaign, to_phone=phone, by=request.user)
    return Outcome(f"Test message sent to {message.phone}: “{message.body}”")


def _send_now(request: HttpRequest, campaign: Campaign) -> Outcome:
    if not services.launch_campaign(campaign_id=campaign.pk, by=request.user):
        return Outcome(
            "The campaign was not launched: it is already being launched, sending or finished.",
            messages.WARNING,
        )
    campaign.refresh_from_db()
    return Outcome(f"Sending started: {campaign.recipients_count:,} recipients.")


def _schedule(request: HttpRequest, campaign: Campaign) -> Outcome:
    if campaign.send_at is None:
        return Outcome("Set a send time and save the campaign, then schedule it.", messages.ERROR)
    services.schedule_campaign(campaign=campaign, send_at=campaign.send_at, by=request.user)
    return Outcome(f"Scheduled for {localize(timezone.localtime(campaign.send_at))}.")


def _cancel(request: HttpRequest, campaign: Campaign) -> Outcome:
    canceled = services.cancel_campaign(campaign=campaign, by=request.user)
    if not canceled:
        return Outcome("Campaign canceled.")
    return Outcome(f"Campaign canceled, and {canceled:,} messages not yet sent with it.")


def _retry_failed(request: HttpRequest, campaign: Campaign) -> Outcome:
    retried = services.retry_failed_messages(campaign=campaign, by=request.user)
    if not retried:
        return Outcome("No message failed for a transient reason: nothing to retry.", messages.INFO)
    return Outcome(f"Sending {retried:,} messages that failed for a transient reason again.")


def _resume_sending(request: HttpRequest, campaign: Campaign) -> Outcome:
    if (
        campaign.state != Campaign.State.SENDING
        or not campaign.batch
        or not campaign.batch.is_paused
    ):
        return Outcome("This campaign is not paused.", messages.INFO)
    resume_batch(batch=campaign.batch, by=request.user)
    return Outcome("Sending resumed.")


def _submit_for_approval(request: HttpRequest, campaign: Campaign) -> Outcome:
    services.submit_campaign_for_approval(campaign=campaign, by=request.user)
    return Outcome("Submitted for approval: an Admin will approve it or send it back.")


def _approve(request: HttpRequest, campaign: Campaign) -> Outcome:
    services.approve_campaign(campaign=campaign, by=request.user)
    return Outcome("Approved: it may now be sent or scheduled.")


def _send_back(request: HttpRequest, campaign: Campaign) -> Outcome:
    services.send_back_campaign(
        campaign=campaign, by=request.user, comment=request.POST.get("comment", "")
    )
    return Outcome("Sent back to its author with your comment.")


def _use_gsm_characters(request: HttpRequest, campaign: Campaign) -> Outcome:
    if not campaign.can_edit:
        return Outcome("Only a draft or scheduled campaign can be changed.", messages.ERROR)
    if not campaign.use_gsm_characters():
        return Outcome("No character in the body has a GSM look-alike.", messages.INFO)
    return Outcome("Replaced the characters that have GSM look-alikes; check the new preview.")


ACTIONS = (
    CampaignAction("send-test", "send_test", _send_test),
    CampaignAction("send-now", "send_now", _send_now),
    CampaignAction("schedule", "schedule", _schedule),
    CampaignAction("cancel", "cancel", _cancel),
    CampaignAction("retry-failed", "retry_failed", _retry_failed),
    CampaignAction("resume-sending", "resume_sending", _resume_sending),
    CampaignAction("use-gsm-characters", "use_gsm_characters", _use_gsm_characters),
    CampaignAction("submit-for-approval", "submit_for_approval", _submit_for_approval),
    CampaignAction("approve", "approve", _approve, (CHANGE_PERMISSION, APPROVE_PERMISSION)),
    CampaignAction("send-back", "send_back", _send_back, (CHANGE_PERMISSION, APPROVE_PERMISSION)),
)


def action_view(action: CampaignAction) -> Callable[..., HttpResponse]:
    def view(model_admin: CampaignAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perms(action.permissions):
            raise PermissionDenied
        campaign = _campaign(model_admin, request, object_id)
        try:
            outcome = action.perform(request, campaign)
        except services.CampaignActionError as error:
            outcome = Outcome(str(error), messages.ERROR)
        model_admin.message_user(request, outcome.message, outcome.level)
        return redirect(_change_url(campaign))

    return view


def segments(model_admin: CampaignAdmin, request: HttpRequest) -> HttpResponse:
    """The live counter under the body: encoding and segments of the template's fixed
    text (merge fields replaced by their fallbacks, or nothing)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not (model_admin.has_add_permission(request) or model_admin.has_change_permission(request)):
        raise PermissionDenied
    body = request.POST.get("body", "")
    try:
        text = parse_template(body).render({}).text
        template_error = None
    except TemplateError as error:
        text, template_error = body, error.message
    info = analyze(text)
    return JsonResponse(
        {
            "characters": len(text),
            "encoding": info.encoding,
            "units": info.units,
            "segments": info.segments,
            "per_part_limit": info.per_part_limit,
            "non_gsm_characters": [list(pair) for pair in info.non_gsm_characters],
            "template_error": template_error,
        }
    )


def progress_context(campaign: Campaign) -> dict[str, Any]:
    """What the progress panel shows: the batch's progress and a row per message status."""
    if campaign.batch_id is None:
        return {"progress": None, "status_rows": []}
    progress = batch_progress(campaign.batch_id)
    return {
        "progress": progress,
        "status_rows": [
            (label, progress.counts.get(status, 0)) for status, label in Message.Status.choices
        ],
    }


def progress(model_admin: CampaignAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The progress panel, drawn again for the page's polling."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    campaign = _campaign(model_admin, request, object_id)
    html = render_to_string(
        "admin/campaigns/campaign/progress_panel.html",
        {"campaign": campaign, **progress_context(campaign)},
        request=request,
    )
    return JsonResponse(
        {
            "html": html,
            "state": campaign.state,
            "is_sending": campaign.state == Campaign.State.SENDING,
        }
    )


def _campaign(model_admin: CampaignAdmin, request: HttpRequest, object_id: str) -> Campaign:
    campaign = model_admin.get_object(request, unquote(object_id))
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def _change_url(campaign: Campaign) -> str:
    opts = campaign._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[campaign.pk])
