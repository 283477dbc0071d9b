"""schedule_messages and process_messages: what they do and the summary they print."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from members.tests.factories import MemberFactory
from positivity.models import DailyMessage

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 2, 8, 5, tzinfo=UTC)
GOOD = "Small steps still move you forward. Be proud of how far you have come."


def run(*args: str) -> str:
    output = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command(*args, stdout=output)
    return output.getvalue()


def test_schedule_messages_writes_today_and_tomorrow_and_prints_each_attempt(fake_openai):
    fake_openai.queue_replies("Visit www.joy.com for more joy", GOOD)

    output = run("schedule_messages")

    today, tomorrow = DailyMessage.objects.order_by("date")
    assert (today.date, tomorrow.date) == (date(2026, 12, 2), date(2026, 12, 3))
    assert output.splitlines()[:3] == [
        f"2026-12-02: written by AI (gpt-4.1-mini): {GOOD}",
        "  - ai: rejected (The message contains a link: 'www.joy.com'.): "
        "Visit www.joy.com for more joy",
        f"  - ai: accepted: {GOOD}",
    ]
    assert "2026-12-03: written" in output


def test_schedule_messages_a_second_time_says_it_already_exists(settings):
    settings.OPENAI_API_KEY = ""
    run("schedule_messages", "--date", "2026-12-24")

    output = run("schedule_messages", "--date", "2026-12-24")

    assert output.startswith("2026-12-24: already written from the fallback library: ")
    assert DailyMessage.objects.count() == 1


def test_schedule_messages_refuses_a_date_it_cannot_read():
    with pytest.raises(CommandError, match="--date must look like 2026-12-24"):
        call_command("schedule_messages", "--date", "24/12/2026")


def test_process_messages_queues_due_subscribers_and_says_how_many(settings):
    settings.OPENAI_API_KEY = ""
    MemberFactory(
        timezone="Europe/London", is_daily_subscriber=True, daily_confirmed_at=NOW.replace(month=1)
    )

    output = run("process_messages")

    assert "2026-12-02: daily message queued for 1 subscriber." in output
    assert "0 new-subscriber confirmations queued." in output


def test_process_messages_with_nobody_due_says_so(settings):
    settings.OPENAI_API_KEY = ""

    output = run("process_messages")

    assert output.splitlines()[0] == "No subscriber is due for a daily message now."
    assert DailyMessage.objects.count() == 0


def test_process_messages_names_a_day_that_awaits_approval(settings):
    settings.OPENAI_API_KEY = ""
    settings.DAILY_MESSAGE_REQUIRE_APPROVAL = True
    MemberFactory(
        timezone="Europe/London", is_daily_subscriber=True, daily_confirmed_at=NOW.replace(month=1)
    )

    output = run("process_messages")

    assert "2026-12-02: subscribers are due, but the message awaits approval" in output
