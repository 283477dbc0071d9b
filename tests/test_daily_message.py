"""End to end: the daily message written by the real openai SDK against the fake OpenAI
and sent by a real Celery worker through the real twilio SDK to the fake Twilio, to
subscribers in four zones far apart; and a JOIN texted in, answered by the worker."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from twilio.request_validator import RequestValidator

from delivery.models import Message
from members.models import Member, OptOut
from members.tests.factories import MemberFactory, us_mobile
from positivity.models import DailyMessage
from positivity.tasks import deliver_daily_messages, write_daily_messages
from smsadmin.testing.celery_worker import running_worker
from smsadmin.testing.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PUBLIC = "https://sms.example.org"
INBOUND_PATH = "/webhooks/twilio/inbound"
FOUR_ZONES = ("Pacific/Auckland", "Asia/Tokyo", "Europe/London", "America/Los_Angeles")
AI_TEXTS = (
    "Small steps still move you forward. Be proud of how far you have come.",
    "Rest is not a reward, it is part of the work. Be gentle with yourself.",
    "You have made it through every hard day so far. Today is no different.",
    "A kind word costs nothing and can change a whole afternoon. Share one.",
)


@pytest.fixture
def worker_environment(fake_twilio, fake_openai, settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.ORGANIZATION_NAME = "Garden Club"
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "SMS_RATE_LIMIT_PER_SECOND": "100",
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_TIMEOUT": "5",
        "OPENAI_MAX_RETRIES": "0",
    }


def sent_bodies(fake_twilio) -> dict[str, list[str]]:
    bodies: dict[str, list[str]] = {}
    for request in fake_twilio.requests:
        if request.method == "POST" and request.status == 201:
            bodies.setdefault(request.form["To"], []).append(request.form["Body"])
    return bodies


def nothing_left_to_send() -> bool:
    return not Message.objects.filter(status__in=["pending", "sending"]).exists()


def test_each_subscriber_gets_the_ai_message_of_their_local_date_once(
    worker_environment, fake_twilio, fake_openai, tmp_path
):
    fake_openai.queue_replies(*AI_TEXTS)
    now = datetime.now(UTC)
    subscribers = {}
    for index, zone in enumerate(FOUR_ZONES):
        # Their send time came five minutes ago, on their own clock.
        local_send_time = (now - timedelta(minutes=5)).astimezone(ZoneInfo(zone)).time()
        subscribers[zone] = MemberFactory(
            phone=us_mobile(index),
            timezone=zone,
            is_daily_subscriber=True,
            daily_confirmed_at=now - timedelta(days=30),
            daily_send_time=local_send_time.replace(second=0, microsecond=0),
        )
    stopped = MemberFactory(
        phone=us_mobile(10),
        timezone="Europe/London",
        is_daily_subscriber=True,
        daily_confirmed_at=now - timedelta(days=30),
    )
    OptOut.objects.create(phone=stopped.phone, source="keyword", reason="STOP")
    MemberFactory(phone=us_mobile(11), timezone="Europe/London", is_daily_subscriber=False)

    with running_worker(tmp_path, extra_environment=worker_environment):
        write_daily_messages.delay()
        # Overlapping runs: the second finds the first's lock, or nothing left to add.
        deliver_daily_messages.delay()
        deliver_daily_messages.delay()
        wait_until(
            lambda: Message.objects.count() == 4 and nothing_left_to_send(),
            timeout=90,
            what="the daily message to be sent",
        )
        deliver_daily_messages.apply()  # once more, in this process: adds nothing

    bodies = sent_bodies(fake_twilio)
    assert Counter({phone: len(texts) for phone, texts in bodies.items()}) == Counter(
        {member.phone: 1 for member in subscribers.values()}
    )
    for zone, member in subscribers.items():
        local_date = (now - timedelta(minutes=5)).astimezone(ZoneInfo(zone)).date()
        daily = DailyMessage.objects.get(date=local_date)
        assert daily.source == DailyMessage.Source.AI, zone
        assert bodies[member.phone] == [daily.text], zone
    # One request to the AI per date written, each with the program's instructions.
    assert len(fake_openai.requests) == DailyMessage.objects.count()
    assert all("positive message" in request.instructions for request in fake_openai.requests)


def test_a_join_texted_in_is_confirmed_by_the_worker(
    worker_environment, fake_twilio, client, tmp_path, settings
):
    phone = us_mobile(42)
    fields = {
        "MessageSid": "SM" + "4" * 32,
        "AccountSid": fake_twilio.account_sid,
        "From": phone,
        "To": settings.SMS_DEFAULT_SENDER,
        "Body": "Join",
        "NumMedia": "0",
    }
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        PUBLIC + INBOUND_PATH, fields
    )

    with running_worker(tmp_path, extra_environment=worker_environment):
        for _ in range(2):  # Twilio retries a webhook: one confirmation all the same
            response = client.post(INBOUND_PATH, fields, headers={"X-Twilio-Signature": signature})
            assert response.status_code == 200
        wait_until(
            lambda: len(fake_twilio.requests_to(phone)) == 1 and nothing_left_to_send(),
            timeout=60,
            what="the confirmation to be sent",
        )

    member = Member.objects.get(phone=phone)
    assert (member.is_daily_subscriber, member.is_community) == (True, False)
    assert member.daily_confirmed_at is not None
    assert sent_bodies(fake_twilio) == {phone: [settings.DAILY_MESSAGE_CONFIRMATION]}
