"""The campaign admin: compose, preview, read-only once launched, progress, and buttons."""

# Curly quotes, dashes and × are the point of these tests.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.tests.factories import CampaignFactory
from delivery.models import Batch, Message
from members.models import StaffProfile
from members.tests.factories import (
    EventFactory,
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    UserFactory,
    admin_user,
    social_manager,
)

pytestmark = pytest.mark.django_db

SENDER = "+15005550006"
OTHER_SENDER = "MG0123456789abcdef0123456789abcdef"
ADD_URL = "/admin/campaigns/campaign/add/"
BUTTONS = ("send_test", "send_now", "schedule", "cancel", "retry_failed", "use_gsm_characters")


@pytest.fixture(autouse=True)
def senders(settings):
    settings.SMS_SENDERS = [SENDER, OTHER_SENDER]
    settings.SMS_DEFAULT_SENDER = SENDER


@pytest.fixture
def manager(client):
    user = social_manager()
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    """Staff who may look at campaigns but not change them."""
    user = UserFactory()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="campaigns", codename="view_campaign")
    )
    client.force_login(user)
    return user


def change_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def button_url(campaign: Campaign, button: str) -> str:
    return reverse(f"admin:campaigns_campaign_{button}", args=[campaign.pk])


def compose_data(**overrides: str) -> dict[str, str]:
    return {
        "name": "Garden opening",
        "audience": "community",
        "event": "",
        "sender": SENDER,
        "body": "Hi {first_name|friend}, the garden opens Saturday at 10.",
        "send_at_0": "",
        "send_at_1": "",
        "respect_quiet_hours": "on",
        **overrides,
    }


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def snapshot(campaign: Campaign) -> dict:
    """Everything a refused button must leave as it was."""
    campaign.refresh_from_db()
    return {
        "campaign": {
            field.name: getattr(campaign, field.attname) for field in Campaign._meta.fields
        },
        "batches": Batch.objects.count(),
        "messages": list(Message.objects.values_list("pk", "status").order_by("pk")),
    }


def make_messages(batch: Batch, *statuses_and_codes: tuple[str, int | None]) -> None:
    for index, (status, code) in enumerate(statuses_and_codes):
        Message.objects.create(
            batch=batch,
            kind=Batch.Kind.CAMPAIGN,
            phone=f"+1415555{index:04d}",
            sender=SENDER,
            body="Hi",
            status=status,
            error_code=code,
        )


def launched(campaign: Campaign, state: str = Campaign.State.SENDING) -> Campaign:
    batch = Batch.objects.create(kind=Batch.Kind.CAMPAIGN, label=campaign.name, sender=SENDER)
    Campaign.objects.filter(pk=campaign.pk).update(
        state=state, batch=batch, launched_at=timezone.now(), recipients_count=4
    )
    campaign.refresh_from_db()
    return campaign


# --- Composing ----------------------------------------------------------------------------


def test_social_manager_composes_a_draft_campaign(client, manager):
    response = client.post(ADD_URL, compose_data(sender=OTHER_SENDER))

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (
        campaign.name,
        campaign.audience,
        campaign.event,
        campaign.sender,
        campaign.body,
        campaign.send_at,
        campaign.respect_quiet_hours,
        campaign.state,
        campaign.created_by,
        campaign.batch,
    ) == (
        "Garden opening",
        "community",
        None,
        OTHER_SENDER,
        "Hi {first_name|friend}, the garden opens Saturday at 10.",
        None,
        True,
        "draft",
        manager,
        None,
    )


def test_compose_page_offers_the_configured_senders_with_the_default_chosen(client, manager):
    response = client.get(ADD_URL)

    sender_field = response.context["adminform"].form["sender"]
    assert list(sender_field.field.choices) == [(SENDER, SENDER), (OTHER_SENDER, OTHER_SENDER)]
    assert sender_field.value() == SENDER
    assert 'id="campaign-urls"' in response.text
    assert reverse("admin:campaigns_campaign_segments") in response.text


def test_sender_that_is_not_configured_is_refused(client, manager):
    response = client.post(ADD_URL, compose_data(sender="+15551234567"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "sender": ["Select a valid choice. +15551234567 is not one of the available choices."]
    }
    assert not Campaign.objects.exists()


def test_compose_with_an_unknown_merge_field_is_refused_naming_it(client, manager):
    MemberFactory(fields={"neighborhood": "Mission"})

    response = client.post(ADD_URL, compose_data(body="Hi {frist_name}, see you in {hood}"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "body": [
            "Unknown merge fields {frist_name} (did you mean {first_name}?), {hood}: no "
            "member of this audience has them. Known fields: email, first_name, last_name, "
            "neighborhood, phone."
        ]
    }
    assert not Campaign.objects.exists()


def test_imported_column_counts_only_if_a_member_of_the_audience_has_it(client, manager):
    MemberFactory(fields={"neighborhood": "Mission"})
    MemberFactory(is_community=False, fields={"locker": "12"})

    accepted = client.post(ADD_URL, compose_data(name="Known", body="In {neighborhood}"))
    refused = client.post(ADD_URL, compose_data(name="Unknown", body="Locker {locker}"))

    assert accepted.status_code == 302
    assert refused.context["adminform"].form.errors == {
        "body": [
            "Unknown merge field {locker}: no member of this audience has it. Known fields: "
            "email, first_name, last_name, neighborhood, phone."
        ]
    }
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Known"]


def test_event_audience_knows_the_fields_of_its_registrants(client, manager):
    event = EventFactory()
    EventRegistrationFactory(event=event, member=MemberFactory(fields={"table": "7"}))
    MemberFactory(fields={"locker": "12"})

    response = client.post(
        ADD_URL, compose_data(audience="event", event=str(event.pk), body="Table {table}")
    )

    assert response.status_code == 302
    assert Campaign.objects.get().event == event


def test_compose_with_unbalanced_braces_is_refused_with_where(client, manager):
    response = client.post(ADD_URL, compose_data(body="Hi {first_name, welcome"))

    assert response.context["adminform"].form.errors == {
        "body": [
            'Unclosed "{" at character 4 ("{first_name, welcome"): end the merge field '
            'with "}", or write "{{" for a literal "{".'
        ]
    }
    assert not Campaign.objects.exists()


def test_event_audience_needs_an_event(client, manager):
    response = client.post(ADD_URL, compose_data(audience="event"))

    assert response.context["adminform"].form.errors == {
        "event": ["Pick the event whose registrants get this campaign."]
    }
    assert not Campaign.objects.exists()


def test_an_event_left_in_the_hidden_select_is_dropped_for_the_community(client, manager):
    event = EventFactory()

    response = client.post(ADD_URL, compose_data(audience="community", event=str(event.pk)))

    assert response.status_code == 302
    assert Campaign.objects.get().event is None


def test_send_time_in_the_past_is_refused(client, manager):
    past = timezone.localtime() - timedelta(hours=1)

    response = client.post(
        ADD_URL,
        compose_data(send_at_0=past.strftime("%Y-%m-%d"), send_at_1=past.strftime("%H:%M:%S")),
    )

    assert response.context["adminform"].form.errors == {"send_at": ["Pick a time in the future."]}
    assert not Campaign.objects.exists()


def test_live_counter_endpoint_analyzes_the_fixed_text(client, manager):
    url = reverse("admin:campaigns_campaign_segments")

    response = client.post(url, {"body": "Don’t {first_name|miss} it"})

    assert response.json() == {
        "characters": len("Don’t miss it"),
        "encoding": "UCS-2",
        "units": 13,
        "segments": 1,
        "per_part_limit": 70,
        "non_gsm_characters": [["’", "'"]],
        "template_error": None,
    }
    assert client.post(url, {"body": "Hi {"}).json()["template_error"] == (
        'Unclosed "{" at character 4 ("{"): end the merge field with "}", or write "{{" for '
        'a literal "{".'
    )


# --- Editable only as a draft or scheduled -------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "scheduled"])
def test_draft_and_scheduled_campaigns_can_be_edited(client, manager, state):
    campaign = CampaignFactory(state=state)

    response = client.post(change_url(campaign), compose_data(name="Renamed"))

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"


@pytest.mark.parametrize("state", ["sending", "done", "canceled", "failed"])
def test_launched_or_finished_campaign_is_read_only(client, manager, state):
    campaign = CampaignFactory(state=state, name="Sent already")
    before = snapshot(campaign)

    page = client.get(change_url(campaign))
    post = client.post(change_url(campaign), compose_data(name="Renamed"))

    assert page.status_code == 200
    assert 'name="name"' not in page.text
    assert 'name="_save"' not in page.text
    assert post.status_code == 403
    assert snapshot(campaign) == before


# --- Preview and progress panels ----------------------------------------------------------


def test_change_page_of_a_draft_shows_the_preview(client, manager):
    MemberFactory(first_name="Ada")
    MemberFactory(first_name="")
    OptOutFactory(phone=MemberFactory(first_name="Opted").phone)
    campaign = CampaignFactory(body="Hi {first_name|friend}, don’t miss https://bit.ly/x")

    response = client.get(change_url(campaign))

    preview = response.context["preview"]
    assert preview.counts.recipients == 2
    html = response.text
    assert "<strong>2 recipients</strong> of 3 in the pool." in html
    assert "Left out: 1 opted out, 0 suppressed," in html
    assert "Hi Ada, don’t miss https://bit.ly/x" in html
    assert "Hi friend, don’t miss https://bit.ly/x" in html
    assert "{first_name} is empty for 1 of 2 recipients: they get “friend” instead." in html
    assert "’ (right single quotation mark) → &#x27;" in html
    assert "The body has a link (https://bit.ly/x)." in html
    assert "Replace with GSM characters" in html
    assert "Estimated total: <strong>2 segments, about 0.02 USD</strong>" in html
    assert 'id="campaign-progress"' not in html


def test_launched_campaign_shows_progress_and_failures_instead_of_the_preview(client, manager):
    campaign = launched(CampaignFactory())
    make_messages(
        campaign.batch,
        ("delivered", None),
        ("pending", None),
        ("failed", 30006),
        ("undelivered", 30006),
    )

    response = client.get(change_url(campaign))

    assert response.context["preview"] is None
    progress = response.context["progress"]
    assert (progress.total, progress.finished, progress.percent) == (4, 3, 75)
    html = response.text
    assert 'data-sending="true"' in html
    assert "3 of 4 messages finished (75%)" in html
    assert "Delivery rate: 33.3%" in html
    assert "<td>30006</td><td>A landline, or a carrier that cannot take texts</td><td>2</td>" in (
        html
    )
    assert "<td>Pending</td><td>1</td>" in html
    assert 'id="campaign-preview"' not in html
    assert "Retry failed (transient)" in html
    assert "Cancel campaign" in html
    assert "Send now" not in html


def test_retry_button_is_offered_only_when_messages_failed(client, manager):
    campaign = launched(CampaignFactory(), state=Campaign.State.DONE)
    make_messages(campaign.batch, ("delivered", None))

    html = client.get(change_url(campaign)).text

    assert "Retry failed (transient)" not in html
    assert "Cancel campaign" not in html


def test_progress_endpoint_returns_the_panel_and_whether_still_sending(client, manager):
    campaign = launched(CampaignFactory(), state=Campaign.State.DONE)
    make_messages(campaign.batch, ("delivered", None))

    response = client.get(button_url(campaign, "progress"))

    payload = response.json()
    assert (payload["state"], payload["is_sending"]) == ("done", False)
    assert "1 of 1 messages finished (100%)" in payload["html"]


def test_list_shows_audience_state_recipients_and_progress(client, manager):
    event = EventFactory(name="Picnic")
    CampaignFactory(name="Draft one")
    sending = launched(CampaignFactory(name="Sending one", audience="event", event=event))
    make_messages(sending.batch, ("delivered", None), ("pending", None))

    response = client.get(reverse("admin:campaigns_campaign_changelist"))

    html = response.text
    assert "Draft one" in html
    assert "Registrants of Picnic" in html
    assert '<td class="field-progress">50%</td>' in html
    assert '<td class="field-recipients">4</td>' in html
    searched = client.get(reverse("admin:campaigns_campaign_changelist"), {"q": "Draft"})
    assert [c.name for c in searched.context["cl"].result_list] == ["Draft one"]
    filtered = client.get(reverse("admin:campaigns_campaign_changelist"), {"state": "sending"})
    assert [c.name for c in filtered.context["cl"].result_list] == ["Sending one"]


# --- Buttons ------------------------------------------------------------------------------


@pytest.mark.parametrize("button", BUTTONS)
def test_buttons_are_refused_without_the_change_permission(client, viewer, button):
    MemberFactory()
    campaign = CampaignFactory(body="Don’t miss it", send_at=timezone.now() + timedelta(days=1))
    StaffProfile.objects.create(user=viewer, phone="+14155550100")
    before = snapshot(campaign)

    response = client.post(button_url(campaign, button))

    assert response.status_code == 403
    assert snapshot(campaign) == before


def test_viewer_sees_no_buttons(client, viewer):
    campaign = CampaignFactory()

    response = client.get(change_url(campaign))

    assert "You may look at this campaign, but not send or change it." in response.text
    assert "Send now" not in response.text


@pytest.mark.parametrize("button", BUTTONS)
def test_buttons_answer_only_post(client, manager, button):
    campaign = CampaignFactory()
    before = snapshot(campaign)

    assert client.get(button_url(campaign, button)).status_code == 405
    assert snapshot(campaign) == before


def test_send_test_without_a_staff_phone_says_where_to_set_it(client, manager):
    campaign = CampaignFactory()
    before = snapshot(campaign)

    response = client.post(button_url(campaign, "send_test"), follow=True)

    assert shown_messages(response) == [
        "You have no phone number for test messages yet: set it under “My profile” at the "
        "top of the page, then send the test again."
    ]
    assert snapshot(campaign) == before


def test_send_test_texts_the_staff_members_own_phone(
    client, manager, django_capture_on_commit_callbacks
):
    MemberFactory(first_name="Ada")
    StaffProfile.objects.create(user=manager, phone="+14155550100")
    campaign = CampaignFactory(body="Hi {first_name|friend}!")

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(button_url(campaign, "send_test"), follow=True)

    message = Message.objects.get()
    assert (message.phone, message.body, message.kind) == ("+14155550100", "Hi Ada!", "test")
    assert shown_messages(response) == ["Test message sent to +14155550100: “Hi Ada!”"]
    assert len(callbacks) >= 1  # sending is enqueued once the transaction commits
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


@pytest.mark.parametrize("role", [social_manager, admin_user])
def test_send_now_launches_the_campaign(client, role):
    client.force_login(role())
    MemberFactory.create_batch(2)
    OptOutFactory(phone=MemberFactory().phone)
    campaign = CampaignFactory(body="Garden opens Saturday.")

    response = client.post(button_url(campaign, "send_now"), follow=True)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENDING
    assert (campaign.recipients_count, campaign.excluded_opted_out) == (2, 1)
    assert Message.objects.filter(batch=campaign.batch).count() == 2
    assert shown_messages(response) == ["Sending started: 2 recipients."]


def test_schedule_uses_the_saved_send_time(client, manager):
    send_at = timezone.now() + timedelta(days=1)
    campaign = CampaignFactory(send_at=send_at)

    response = client.post(button_url(campaign, "schedule"), follow=True)

    campaign.refresh_from_db()
    assert (campaign.state, campaign.send_at) == ("scheduled", send_at)
    assert len(shown_messages(response)) == 1
    assert shown_messages(response)[0].startswith("Scheduled for ")


def test_schedule_without_a_send_time_is_refused(client, manager):
    campaign = CampaignFactory(send_at=None)
    before = snapshot(campaign)

    response = client.post(button_url(campaign, "schedule"), follow=True)

    assert shown_messages(response) == ["Set a send time and save the campaign, then schedule it."]
    assert snapshot(campaign) == before


def test_schedule_with_a_past_send_time_shows_the_services_refusal(client, manager):
    campaign = CampaignFactory(send_at=timezone.now() - timedelta(minutes=5))
    before = snapshot(campaign)

    response = client.post(button_url(campaign, "schedule"), follow=True)

    assert shown_messages(response) == ["The send time must be in the future."]
    assert snapshot(campaign) == before


@pytest.mark.parametrize("role", [social_manager, admin_user])
def test_cancel_cancels_the_campaign(client, role):
    client.force_login(role())
    campaign = CampaignFactory(state=Campaign.State.SCHEDULED)

    response = client.post(button_url(campaign, "cancel"), follow=True)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELED
    assert shown_messages(response) == ["Campaign canceled."]


def test_cancel_of_a_finished_campaign_is_refused_with_the_services_message(client, manager):
    campaign = CampaignFactory(state=Campaign.State.DONE)
    before = snapshot(campaign)

    response = client.post(button_url(campaign, "cancel"), follow=True)

    assert shown_messages(response) == ["A done campaign cannot be canceled."]
    assert snapshot(campaign) == before


def test_retry_failed_sends_transient_failures_again(client, manager):
    campaign = launched(CampaignFactory(), state=Campaign.State.DONE)
    make_messages(campaign.batch, ("failed", 30003), ("failed", 30006), ("delivered", None))

    response = client.post(button_url(campaign, "retry_failed"), follow=True)

    assert list(
        Message.objects.filter(batch=campaign.batch).order_by("pk").values_list("status", flat=True)
    ) == ["pending", "failed", "delivered"]
    assert shown_messages(response) == [
        "Sending 1 messages that failed for a transient reason again."
    ]


def test_replace_with_gsm_characters_rewrites_the_body(client, manager):
    campaign = CampaignFactory(body="Don’t miss it — “{first_name|friend}”…")

    response = client.post(button_url(campaign, "use_gsm_characters"), follow=True)

    campaign.refresh_from_db()
    assert campaign.body == 'Don\'t miss it - "{first_name|friend}"...'
    assert shown_messages(response) == [
        "Replaced the characters that have GSM look-alikes; check the new preview."
    ]


def test_replace_with_gsm_characters_leaves_a_sent_campaign_alone(client, manager):
    campaign = CampaignFactory(body="Don’t", state=Campaign.State.SENDING)
    before = snapshot(campaign)

    response = client.post(button_url(campaign, "use_gsm_characters"), follow=True)

    assert shown_messages(response) == ["Only a draft or scheduled campaign can be changed."]
    assert snapshot(campaign) == before
