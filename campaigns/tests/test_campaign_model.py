"""The Campaign model: its audience rule, state checks and querysets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.tests.factories import CampaignFactory
from members.tests.factories import EventFactory, MemberFactory

pytestmark = pytest.mark.django_db
State = Campaign.State


def test_new_campaign_is_a_community_draft_from_the_default_sender(settings):
    settings.SMS_DEFAULT_SENDER = "MG0123456789abcdef0123456789abcdef"

    campaign = Campaign(name="Hello", body="Hi")

    assert (campaign.state, campaign.audience, campaign.sender, campaign.respect_quiet_hours) == (
        "draft",
        "community",
        "MG0123456789abcdef0123456789abcdef",
        True,
    )


@pytest.mark.parametrize(("audience", "with_event"), [("event", False), ("community", True)])
def test_database_refuses_an_event_that_does_not_match_the_audience(audience, with_event):
    event = EventFactory() if with_event else None

    with pytest.raises(IntegrityError, match="campaign_event_iff_event_audience"):
        Campaign.objects.create(name="x", body="Hi", audience=audience, event=event)


def test_clean_explains_an_event_that_does_not_match_the_audience():
    with pytest.raises(ValidationError) as missing:
        Campaign(name="x", body="Hi", audience="event").full_clean()
    with pytest.raises(ValidationError) as extra:
        Campaign(name="x", body="Hi", audience="community", event=EventFactory()).full_clean()

    assert missing.value.message_dict == {
        "event": ["Pick the event whose registrants get this campaign."]
    }
    assert extra.value.message_dict == {"event": ["Only an event audience has an event: clear it."]}


def test_clean_refuses_a_template_error_and_an_unknown_field():
    MemberFactory(fields={"neighborhood": "Mission"})

    with pytest.raises(ValidationError) as broken:
        Campaign(name="x", body="{first_name.upper}").full_clean()
    with pytest.raises(ValidationError) as unknown:
        Campaign(name="x", body="{neighbourhood}").full_clean()
    Campaign(name="x", body="{neighborhood} {first_name}").full_clean()

    assert broken.value.message_dict == {
        "body": [
            'Merge field "{first_name.upper}" at character 1 uses ".": merge fields are plain '
            "names, like {first_name}, without attributes."
        ]
    }
    assert unknown.value.message_dict == {
        "body": [
            "Unknown merge field {neighbourhood} (did you mean {neighborhood}?): no member of "
            "this audience has it. Known fields: email, first_name, last_name, neighborhood, "
            "phone."
        ]
    }


def test_member_columns_need_no_scan_of_the_audience(django_assert_num_queries):
    campaign = Campaign(name="x", body="{first_name} {last_name} {email} {phone}")

    with django_assert_num_queries(0):
        campaign.clean()


@pytest.mark.parametrize(
    ("state", "can_edit", "can_launch", "can_cancel"),
    [
        (State.DRAFT, True, True, True),
        (State.SCHEDULED, True, True, True),
        (State.SENDING, False, False, True),
        (State.DONE, False, False, False),
        (State.CANCELED, False, False, False),
        (State.FAILED, False, False, False),
    ],
)
def test_state_checks(state, can_edit, can_launch, can_cancel):
    campaign = Campaign(state=state)

    assert (campaign.can_edit, campaign.can_launch, campaign.can_cancel) == (
        can_edit,
        can_launch,
        can_cancel,
    )


def test_due_is_the_scheduled_campaigns_whose_time_has_come():
    now = timezone.now()
    due = CampaignFactory(state=State.SCHEDULED, send_at=now - timedelta(minutes=1))
    due_now = CampaignFactory(state=State.SCHEDULED, send_at=now)
    CampaignFactory(state=State.SCHEDULED, send_at=now + timedelta(minutes=1))
    CampaignFactory(state=State.DRAFT, send_at=now - timedelta(minutes=1))
    CampaignFactory(state=State.CANCELED, send_at=now - timedelta(minutes=1))

    assert set(Campaign.objects.due(now)) == {due, due_now}


def test_in_progress_is_the_sending_campaigns():
    sending = CampaignFactory(state=State.SENDING)
    CampaignFactory(state=State.DONE)
    CampaignFactory(state=State.DRAFT)

    assert list(Campaign.objects.in_progress()) == [sending]


def test_use_gsm_characters_replaces_look_alikes_only_while_editable():
    draft = CampaignFactory(body="Don\u2019t \u2014 {first_name|friend}\u2026")
    sending = CampaignFactory(body="Don\u2019t", state=State.SENDING)

    assert draft.use_gsm_characters() is True
    assert sending.use_gsm_characters() is False
    assert draft.use_gsm_characters() is False  # nothing left to replace

    draft.refresh_from_db()
    sending.refresh_from_db()
    assert draft.body == "Don't - {first_name|friend}..."
    assert sending.body == "Don\u2019t"
