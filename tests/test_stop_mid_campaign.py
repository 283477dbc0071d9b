"""End to end: a member texts STOP while their campaign is still sending. A real Celery
worker sends through the real twilio SDK to the fake Twilio, whose request log is the
proof: after the STOP, that phone gets our one confirmation and nothing else."""

from __future__ import annotations

from collections import Counter

import pytest
from twilio.request_validator import RequestValidator

from campaigns.services import launch_campaign
from campaigns.tests.factories import CampaignFactory
from delivery.models import Batch, InboundMessage, Message
from members.models import Member, OptOut
from members.tests.factories import us_mobile
from smsadmin.testing.celery_worker import running_worker
from smsadmin.testing.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = Message.Status
PUBLIC = "https://sms.example.org"
INBOUND_PATH = "/webhooks/twilio/inbound"
RATE_PER_SECOND = 4  # slow enough that the campaign is still sending when STOP comes
MEMBERS = 24
CAMPAIGN_BODY = "The community garden opens Saturday at 10."
STOP_CONFIRMATION = (
    "You're unsubscribed from Garden Club. No more messages. Reply START to resubscribe."
)


@pytest.fixture
def worker_environment(fake_twilio, settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.ORGANIZATION_NAME = "Garden Club"
    settings.TWILIO_ADVANCED_OPT_OUT = False
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "SMS_RATE_LIMIT_PER_SECOND": str(RATE_PER_SECOND),
        # A worker claims a few chunks ahead of what it sends; small chunks keep the last
        # member's message unclaimed ("pending") when the STOP arrives.
        "SMS_SEND_CHUNK_SIZE": "2",
        "SMS_SEND_CONCURRENCY": "2",
    }


def text_us(client, fake_twilio, fields: dict[str, str]) -> None:
    """Twilio's inbound webhook, signed with the account's auth token."""
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(
        PUBLIC + INBOUND_PATH, fields
    )
    response = client.post(INBOUND_PATH, fields, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def bodies_sent_to(fake_twilio, phone: str) -> list[str]:
    return [
        request.form["Body"]
        for request in fake_twilio.requests_to(phone)
        if request.method == "POST" and request.status == 201
    ]


def nothing_left_to_send() -> bool:
    return not Message.objects.filter(status__in=[Status.PENDING, Status.SENDING]).exists()


def test_stop_mid_campaign_stops_every_further_message_to_that_phone(
    worker_environment, fake_twilio, client, tmp_path
):
    phones = [us_mobile(index) for index in range(MEMBERS)]
    Member.objects.bulk_create(
        Member(phone=phone, first_name=f"Member{index}") for index, phone in enumerate(phones)
    )
    # Messages are claimed in id order: the last member's is sent last.
    stopper = phones[-1]
    campaign = CampaignFactory(body=CAMPAIGN_BODY, respect_quiet_hours=False)

    with running_worker(tmp_path, extra_environment=worker_environment):
        assert launch_campaign(campaign_id=campaign.pk)
        wait_until(lambda: len(fake_twilio.requests) >= 4, timeout=60, what="sending to start")
        campaign.refresh_from_db()
        stoppers_message = Message.objects.get(batch_id=campaign.batch_id, phone=stopper)
        assert stoppers_message.status == Status.PENDING, "the campaign went too fast"

        stop = {"MessageSid": "SM" + "5" * 32, "From": stopper, "To": campaign.sender}
        text_us(client, fake_twilio, {**stop, "Body": "Stop", "NumMedia": "0"})
        sent_when_stop_was_processed = len(fake_twilio.requests)
        # Twilio retries when it does not hear back in time: still one effect.
        text_us(client, fake_twilio, {**stop, "Body": "Stop", "NumMedia": "0"})

        wait_until(nothing_left_to_send, timeout=90, what="the campaign and the reply")

    assert bodies_sent_to(fake_twilio, stopper) == [STOP_CONFIRMATION]
    stoppers_message.refresh_from_db()
    assert (stoppers_message.status, stoppers_message.provider_sid) == (Status.CANCELED, None)
    campaign_sends = Counter(
        request.form["To"]
        for request in fake_twilio.requests
        if request.method == "POST"
        and request.status == 201
        and request.form["Body"] == CAMPAIGN_BODY
    )
    assert campaign_sends == Counter(phones[:-1])
    assert sent_when_stop_was_processed < MEMBERS - 1  # the campaign went on sending after it
    assert list(OptOut.objects.active().values_list("phone", "source", "reason")) == [
        (stopper, "keyword", "STOP")
    ]
    inbound = InboundMessage.objects.get()
    assert (inbound.action, inbound.reply.status) == (
        InboundMessage.Action.OPTED_OUT,
        Status.ACCEPTED,
    )
    assert Message.objects.filter(batch__kind=Batch.Kind.REPLY).count() == 1
