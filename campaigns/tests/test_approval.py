"""Approval before sending: Social managers submit, an Admin approves or sends back."""

# A curly quote is the point of the GSM look-alike test.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign
from campaigns.services import CampaignActionError
from campaigns.tests.factories import CampaignFactory
from delivery.models import Batch, Message
from members.roles import ADMIN, SOCIAL_MANAGER
from members.tests.factories import MemberFactory, admin_user, social_manager

pytestmark = pytest.mark.django_db

SENDER = "+15005550006"
Approval = Campaign.ApprovalStatus
NEEDS_APPROVAL = (
    "This campaign needs an Admin's approval before it can be sent or scheduled: "
    "submit it for approval."
)


@pytest.fixture(autouse=True)
def approval_required(settings):
    settings.CAMPAIGN_APPROVAL_REQUIRED = True
    settings.SMS_SENDERS = [SENDER]
    settings.SMS_DEFAULT_SENDER = SENDER


@pytest.fixture
def author():
    return social_manager()


@pytest.fixture
def reviewer():
    return admin_user()


def change_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def button_url(campaign: Campaign, button: str) -> str:
    return reverse(f"admin:campaigns_campaign_{button}", args=[campaign.pk])


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def snapshot(campaign: Campaign) -> dict:
    """Everything a refused action must leave as it was."""
    campaign.refresh_from_db()
    return {
        "campaign": {
            field.name: getattr(campaign, field.attname) for field in Campaign._meta.fields
        },
        "batches": Batch.objects.count(),
        "messages": Message.objects.count(),
    }


def submitted(campaign: Campaign, by) -> Campaign:
    services.submit_campaign_for_approval(campaign=campaign, by=by)
    return campaign


def approved(campaign: Campaign, by) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(
        approval_status=Approval.APPROVED, reviewed_by=by, reviewed_at=timezone.now()
    )
    campaign.refresh_from_db()
    return campaign


def compose_data(campaign: Campaign, **overrides: str) -> dict[str, str]:
    return {
        "name": campaign.name,
        "audience": campaign.audience,
        "event": "",
        "sender": campaign.sender,
        "body": campaign.body,
        "send_at_0": "",
        "send_at_1": "",
        "respect_quiet_hours": "on",
        **overrides,
    }


# --- Sending needs an approval ------------------------------------------------------------


def test_an_unapproved_campaign_is_neither_sent_nor_scheduled_by_the_services(author):
    MemberFactory()
    campaign = CampaignFactory(created_by=author, send_at=timezone.now() + timedelta(days=1))
    before = snapshot(campaign)

    with pytest.raises(CampaignActionError, match="needs an Admin's approval") as launching:
        services.launch_campaign(campaign_id=campaign.pk, by=author)
    with pytest.raises(CampaignActionError) as scheduling:
        services.schedule_campaign(campaign=campaign, send_at=campaign.send_at, by=author)

    assert str(launching.value) == str(scheduling.value) == NEEDS_APPROVAL
    assert snapshot(campaign) == before


def test_a_submitted_campaign_is_refused_until_approved(author):
    campaign = submitted(CampaignFactory(created_by=author), author)

    with pytest.raises(CampaignActionError, match="awaits an Admin's approval"):
        services.launch_campaign(campaign_id=campaign.pk, by=author)


def test_beat_leaves_an_unapproved_scheduled_campaign_waiting():
    # Scheduled while approval was not required yet.
    campaign = CampaignFactory(state="scheduled", send_at=timezone.now() - timedelta(minutes=1))

    assert services.launch_due_campaigns() == []

    campaign.refresh_from_db()
    assert (campaign.state, campaign.batch_id) == ("scheduled", None)


def test_send_now_and_schedule_buttons_refuse_an_unapproved_campaign(client, author):
    client.force_login(author)
    MemberFactory()
    campaign = CampaignFactory(created_by=author, send_at=timezone.now() + timedelta(days=1))
    before = snapshot(campaign)

    page = client.get(change_url(campaign))
    send_now = client.post(button_url(campaign, "send_now"), follow=True)
    schedule = client.post(button_url(campaign, "schedule"), follow=True)

    assert "Submit for approval" in page.text
    assert NEEDS_APPROVAL.replace("'", "&#x27;") in page.text
    assert "Send now</button>" not in page.text
    assert "Schedule</button>" not in page.text
    assert shown_messages(send_now) == shown_messages(schedule) == [NEEDS_APPROVAL]
    assert snapshot(campaign) == before


# --- Submit, approve, send back -----------------------------------------------------------


def test_submitted_then_approved_campaign_is_sent(client, author, reviewer):
    MemberFactory.create_batch(2)
    campaign = CampaignFactory(created_by=author, body="Garden opens Saturday.")
    CampaignFactory(name="Someone else's draft")

    client.force_login(author)
    response = client.post(button_url(campaign, "submit_for_approval"), follow=True)
    assert shown_messages(response) == [
        "Submitted for approval: an Admin will approve it or send it back."
    ]
    campaign.refresh_from_db()
    assert (campaign.state, campaign.approval_status) == ("draft", Approval.SUBMITTED)
    assert (campaign.submitted_by, campaign.submitted_at is not None) == (author, True)

    client.force_login(reviewer)
    changelist = reverse("admin:campaigns_campaign_changelist")
    awaiting = client.get(changelist, {"approval_status": "submitted"})
    assert [c.name for c in awaiting.context["cl"].result_list] == [campaign.name]
    assert '<td class="field-approval">Submitted</td>' in awaiting.text
    page = client.get(change_url(campaign))
    assert "Approve</button>" in page.text
    assert "Send back</button>" in page.text
    response = client.post(button_url(campaign, "approve"), follow=True)
    assert shown_messages(response) == ["Approved: it may now be sent or scheduled."]
    campaign.refresh_from_db()
    assert (campaign.approval_status, campaign.reviewed_by) == (Approval.APPROVED, reviewer)

    client.force_login(author)
    page = client.get(change_url(campaign))
    assert f"approved by {reviewer.username}" in page.text
    response = client.post(button_url(campaign, "send_now"), follow=True)
    assert shown_messages(response) == ["Sending started: 2 recipients."]
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING
    assert Message.objects.filter(batch=campaign.batch).count() == 2


def test_an_approved_campaign_can_be_scheduled(author, reviewer):
    send_at = timezone.now() + timedelta(days=1)
    campaign = approved(CampaignFactory(created_by=author, send_at=send_at), reviewer)

    services.schedule_campaign(campaign=campaign, send_at=send_at, by=author)

    assert (campaign.state, campaign.send_at) == ("scheduled", send_at)


def test_send_back_needs_a_comment(client, author, reviewer):
    campaign = submitted(CampaignFactory(created_by=author), author)
    before = snapshot(campaign)
    client.force_login(reviewer)

    response = client.post(button_url(campaign, "send_back"), {"comment": "  "}, follow=True)

    assert shown_messages(response) == [
        "Say what should change: a comment is required to send a campaign back."
    ]
    assert snapshot(campaign) == before


def test_sent_back_campaign_shows_the_comment_and_can_be_submitted_again(client, author, reviewer):
    campaign = submitted(CampaignFactory(created_by=author), author)
    client.force_login(reviewer)

    response = client.post(
        button_url(campaign, "send_back"), {"comment": "Say which Saturday."}, follow=True
    )

    assert shown_messages(response) == ["Sent back to its author with your comment."]
    campaign.refresh_from_db()
    assert (campaign.approval_status, campaign.review_comment, campaign.reviewed_by) == (
        Approval.CHANGES_REQUESTED,
        "Say which Saturday.",
        reviewer,
    )
    client.force_login(author)
    page = client.get(change_url(campaign))
    assert "Changes requested" in page.text
    assert "Changes asked for: Say which Saturday." in page.text
    assert "Submit for approval" in page.text
    with pytest.raises(CampaignActionError, match="sent this campaign back for changes"):
        services.launch_campaign(campaign_id=campaign.pk, by=author)
    services.submit_campaign_for_approval(campaign=campaign, by=author)
    assert (campaign.approval_status, campaign.review_comment) == (Approval.SUBMITTED, "")


def test_an_approved_campaign_cannot_be_submitted_or_approved_again(author, reviewer):
    campaign = approved(CampaignFactory(created_by=author), reviewer)

    with pytest.raises(CampaignActionError, match="cannot be submitted for approval"):
        services.submit_campaign_for_approval(campaign=campaign, by=author)
    with pytest.raises(CampaignActionError, match="only a submitted draft can be"):
        services.approve_campaign(campaign=campaign, by=reviewer)


# --- Four eyes ----------------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_campaign(client, reviewer):
    admin_user()  # another active Admin, who could approve it
    campaign = submitted(CampaignFactory(created_by=reviewer), reviewer)
    before = snapshot(campaign)
    client.force_login(reviewer)

    response = client.post(button_url(campaign, "approve"), follow=True)

    assert shown_messages(response) == [
        "You wrote or submitted this campaign: another Admin must approve it."
    ]
    assert snapshot(campaign) == before


def test_who_submitted_a_campaign_cannot_approve_it_either(author, reviewer):
    admin_user()
    campaign = submitted(CampaignFactory(created_by=author), reviewer)

    with pytest.raises(CampaignActionError, match="another Admin must approve it"):
        services.approve_campaign(campaign=campaign, by=reviewer)


def test_the_only_active_admin_may_approve_their_own_campaign(reviewer):
    admin_user(is_active=False)  # a former Admin does not count
    campaign = submitted(CampaignFactory(created_by=reviewer), reviewer)

    services.approve_campaign(campaign=campaign, by=reviewer)

    assert campaign.approval_status == Approval.APPROVED


# --- Edits take the approval back ---------------------------------------------------------


def test_editing_the_body_after_approval_takes_the_approval_back(client, author, reviewer):
    campaign = approved(submitted(CampaignFactory(created_by=author), author), reviewer)
    client.force_login(author)

    response = client.post(
        change_url(campaign), compose_data(campaign, body="Garden opens Sunday."), follow=True
    )

    assert shown_messages(response)[0] == (
        "The body, audience or sender changed, so its approval was taken back: "
        "submit it for approval again."
    )
    campaign.refresh_from_db()
    assert (campaign.approval_status, campaign.reviewed_by) == (Approval.NOT_SUBMITTED, None)
    with pytest.raises(CampaignActionError, match="needs an Admin's approval"):
        services.launch_campaign(campaign_id=campaign.pk, by=author)


def test_editing_a_scheduled_campaign_makes_it_a_draft_again(client, author, reviewer):
    send_at = timezone.now() + timedelta(days=1)
    campaign = approved(CampaignFactory(created_by=author, send_at=send_at), reviewer)
    services.schedule_campaign(campaign=campaign, send_at=send_at, by=author)
    client.force_login(author)

    data = compose_data(
        campaign,
        body="Garden opens Sunday.",
        send_at_0=timezone.localtime(send_at).strftime("%Y-%m-%d"),
        send_at_1=timezone.localtime(send_at).strftime("%H:%M:%S"),
    )
    client.post(change_url(campaign), data)

    campaign.refresh_from_db()
    assert (campaign.state, campaign.approval_status) == ("draft", Approval.NOT_SUBMITTED)


def test_renaming_an_approved_campaign_keeps_its_approval(client, author, reviewer):
    campaign = approved(CampaignFactory(created_by=author), reviewer)
    client.force_login(author)

    client.post(change_url(campaign), compose_data(campaign, name="Renamed"))

    campaign.refresh_from_db()
    assert (campaign.name, campaign.approval_status) == ("Renamed", Approval.APPROVED)


def test_replacing_characters_with_gsm_look_alikes_takes_the_approval_back(author, reviewer):
    campaign = approved(CampaignFactory(created_by=author, body="Don’t miss it"), reviewer)

    assert campaign.use_gsm_characters()

    campaign.refresh_from_db()
    assert (campaign.body, campaign.approval_status) == ("Don't miss it", Approval.NOT_SUBMITTED)


# --- Only Admins approve ------------------------------------------------------------------


def test_only_the_admin_role_has_the_approve_permission(author, reviewer):
    assert reviewer.has_perm("campaigns.approve_campaign")
    assert not author.has_perm("campaigns.approve_campaign")
    assert Group.objects.get(name=ADMIN).permissions.filter(codename="approve_campaign").exists()
    assert (
        not Group.objects.get(name=SOCIAL_MANAGER)
        .permissions.filter(codename="approve_campaign")
        .exists()
    )


@pytest.mark.parametrize("button", ["approve", "send_back"])
def test_social_managers_cannot_approve_or_send_back(client, button):
    writer = social_manager()
    campaign = submitted(CampaignFactory(created_by=writer), writer)
    before = snapshot(campaign)
    client.force_login(social_manager())

    page = client.get(change_url(campaign))
    response = client.post(button_url(campaign, button), {"comment": "Fine by me."})

    assert "Approve</button>" not in page.text
    assert response.status_code == 403
    assert snapshot(campaign) == before


def test_the_approve_service_refuses_a_social_manager():
    writer = social_manager()
    campaign = submitted(CampaignFactory(created_by=writer), writer)

    with pytest.raises(CampaignActionError, match="Only an Admin may approve"):
        services.approve_campaign(campaign=campaign, by=social_manager())

    campaign.refresh_from_db()
    assert campaign.approval_status == Approval.SUBMITTED


# --- Approval off -------------------------------------------------------------------------


def test_without_required_approval_a_draft_is_sent_as_before(client, settings, author):
    settings.CAMPAIGN_APPROVAL_REQUIRED = False
    MemberFactory()
    campaign = CampaignFactory(created_by=author)
    client.force_login(author)

    page = client.get(change_url(campaign))
    changelist = client.get(reverse("admin:campaigns_campaign_changelist"))
    response = client.post(button_url(campaign, "send_now"), follow=True)

    assert "Submit for approval" not in page.text
    assert "Approval:" not in page.text
    assert "field-approval" not in changelist.text
    assert shown_messages(response) == ["Sending started: 1 recipients."]
    with pytest.raises(CampaignActionError, match="need no approval"):
        services.submit_campaign_for_approval(campaign=CampaignFactory(), by=author)
