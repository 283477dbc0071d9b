"""Daily messages in the admin: upcoming and past, how each was written, edits and
replacements before it goes out, approval by Admins only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.tests.factories import BatchFactory, MessageFactory
from members.tests.factories import admin_user, social_manager
from positivity.models import DailyMessage

pytestmark = pytest.mark.django_db
LIST_URL = "/admin/positivity/dailymessage/"
ORIGINAL = "Small steps still move you forward. Be proud of how far you have come."
EDITED = "Be gentle with yourself today. You are doing better than you think."
Source = DailyMessage.Source


def change_url(message: DailyMessage) -> str:
    return f"{LIST_URL}{message.pk}/change/"


@pytest.fixture
def today_message() -> DailyMessage:
    return DailyMessage.objects.create(
        date=timezone.localdate(),
        text=ORIGINAL,
        source=Source.AI,
        model="gpt-4.1-mini",
        attempts=[
            {
                "at": "2026-12-02T00:05:00",
                "source": "ai",
                "text": "Visit www.joy.com",
                "rejection": "link",
                "reason": "The message contains a link: 'www.joy.com'.",
            },
            {"at": "2026-12-02T00:05:01", "source": "ai", "text": ORIGINAL},
        ],
    )


def gone_out(message: DailyMessage) -> None:
    message.batch = BatchFactory(kind="daily", label="Daily message")
    message.save()
    MessageFactory(batch=message.batch, body=message.text)


def test_the_list_shows_upcoming_and_past_messages_with_their_state(client, today_message):
    client.force_login(social_manager())
    DailyMessage.objects.create(
        date=today_message.date + timedelta(days=1), text=EDITED, source=Source.FALLBACK
    )

    page = client.get(LIST_URL).content.decode()

    assert ORIGINAL in page
    assert EDITED in page
    assert "Fallback library" in page
    assert page.count("Waiting for send time") == 2


def test_the_change_page_shows_each_attempt_and_why_it_was_rejected(client, today_message):
    client.force_login(social_manager())

    page = client.get(change_url(today_message)).content.decode()

    assert "Visit www.joy.com" in page
    assert "The message contains a link" in page
    assert "Not sent to anyone yet." in page


def test_staff_edit_today_s_message_before_it_goes_out(client, today_message):
    user = social_manager()
    client.force_login(user)

    response = client.post(change_url(today_message), {"text": EDITED})

    assert response.status_code == 302
    today_message.refresh_from_db()
    assert (today_message.text, today_message.source) == (EDITED, Source.STAFF)
    assert today_message.edited_by == user
    assert today_message.attempts[-1]["source"] == "staff"
    assert today_message.attempts[-1]["text"] == EDITED


def test_an_edit_that_fails_the_checks_is_refused_with_the_reason(client, today_message):
    client.force_login(social_manager())

    response = client.post(change_url(today_message), {"text": "See https://example.org now"})

    assert response.status_code == 200
    assert "The message contains a link" in response.content.decode()
    today_message.refresh_from_db()
    assert today_message.text == ORIGINAL


def test_a_message_that_went_out_can_no_longer_change(client, today_message):
    client.force_login(social_manager())
    gone_out(today_message)

    page = client.get(change_url(today_message)).content.decode()
    client.post(change_url(today_message), {"text": EDITED})

    assert 'name="text"' not in page
    today_message.refresh_from_db()
    assert today_message.text == ORIGINAL


def test_write_again_replaces_the_text_with_a_different_one(client, today_message, settings):
    settings.OPENAI_API_KEY = ""
    client.force_login(social_manager())

    client.post(
        LIST_URL, {"action": "write_messages_again", "_selected_action": [today_message.pk]}
    )

    today_message.refresh_from_db()
    assert today_message.source == Source.FALLBACK
    assert today_message.text != ORIGINAL
    assert today_message.attempts[-1]["source"] == "fallback"


def test_admins_approve_messages_and_social_managers_cannot(client, today_message):
    client.force_login(social_manager())
    client.post(LIST_URL, {"action": "approve_messages", "_selected_action": [today_message.pk]})
    today_message.refresh_from_db()
    assert today_message.approved_at is None

    approver = admin_user()
    client.force_login(approver)
    client.post(LIST_URL, {"action": "approve_messages", "_selected_action": [today_message.pk]})
    today_message.refresh_from_db()
    assert today_message.approved_by == approver


def test_editing_an_approved_message_needs_approval_again(client, today_message, settings):
    settings.DAILY_MESSAGE_REQUIRE_APPROVAL = True
    DailyMessage.objects.filter(pk=today_message.pk).update(approved_at=timezone.now())
    client.force_login(admin_user())

    client.post(change_url(today_message), {"text": EDITED})

    today_message.refresh_from_db()
    assert today_message.approved_at is None
    assert not today_message.may_be_sent


def test_staff_write_a_future_day_s_message_themselves(client):
    client.force_login(social_manager())
    day = timezone.localdate() + timedelta(days=3)

    client.post(f"{LIST_URL}add/", {"date": day.isoformat(), "text": EDITED})

    message = DailyMessage.objects.get(date=day)
    assert (message.text, message.source) == (EDITED, Source.STAFF)


def test_nobody_deletes_a_day_s_message(client, today_message):
    client.force_login(admin_user())

    response = client.post(f"{change_url(today_message)[:-7]}delete/", {"post": "yes"})

    assert response.status_code == 403
    assert DailyMessage.objects.filter(pk=today_message.pk).exists()
