"""End to end: a campaign through a real Celery worker and the real twilio SDK to the fake
Twilio, with status callbacks back through the webhook. The fake's log is the proof."""

from __future__ import annotations

from collections import Counter

import pytest

from campaigns.fanout import fan_out
from campaigns.models import Campaign
from campaigns.services import finish_sent_campaigns, launch_campaign
from campaigns.tests.factories import CampaignFactory
from delivery.models import Message
from delivery.tasks import sweep
from members.models import Member, OptOut, Suppression
from members.tests.factories import us_mobile
from smsadmin.testing.celery_worker import running_worker
from smsadmin.testing.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
Status = Message.Status


def audience(size: int, *, opted_out: int, suppressed: int, outside: int) -> dict[str, list[str]]:
    """Members in the community pool, some opted out or suppressed, some outside it."""
    phones = [us_mobile(index) for index in range(size + outside)]
    Member.objects.bulk_create(
        Member(phone=phone, first_name=f"Member{index}", is_community=index < size)
        for index, phone in enumerate(phones)
    )
    stopped = phones[:opted_out]
    blocked = phones[opted_out : opted_out + suppressed]
    OptOut.objects.bulk_create(
        OptOut(phone=phone, source="keyword", reason="STOP") for phone in stopped
    )
    Suppression.objects.bulk_create(
        Suppression(phone=phone, reason="landline", error_codes=[30006]) for phone in blocked
    )
    return {
        "eligible": phones[opted_out + suppressed : size],
        "excluded": stopped + blocked,
        "outside": phones[size:],
    }


@pytest.fixture
def worker_environment(fake_twilio, live_server, settings):
    """Settings for the worker process: the fake Twilio, callbacks to the live server.

    The lease and idle times are short so that recovery after a kill takes seconds; the
    test process runs the beat job (``sweep``) itself, with the same values.
    """
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SMS_SENDING_LEASE_SECONDS = 3
    settings.SMS_IDLE_BATCH_SECONDS = 2
    fake_twilio.set_rules(callbacks=True, status_delay_ms=10)
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "PUBLIC_BASE_URL": live_server.url,
        "SMS_RATE_LIMIT_PER_SECOND": "5000",
        "SMS_SENDING_LEASE_SECONDS": "3",
        "SMS_IDLE_BATCH_SECONDS": "2",
    }


def sent_per_phone(fake) -> Counter[str]:
    return Counter(
        request.form["To"]
        for request in fake.requests
        if request.method == "POST" and request.status == 201
    )


def nothing_left_to_send() -> bool:
    return not Message.objects.filter(status__in=[Status.PENDING, Status.SENDING]).exists()


def test_a_campaign_reaches_every_eligible_recipient_exactly_once(
    worker_environment, fake_twilio, tmp_path
):
    people = audience(1000, opted_out=20, suppressed=10, outside=15)
    # Quiet hours have tests of their own; here every member may be texted at any hour.
    campaign = CampaignFactory(
        body="Hi {first_name|friend}, the garden opens Saturday.", respect_quiet_hours=False
    )

    with running_worker(tmp_path, extra_environment=worker_environment):
        assert launch_campaign(campaign_id=campaign.pk)
        assert not launch_campaign(campaign_id=campaign.pk)  # a second launch adds nothing
        wait_until(nothing_left_to_send, timeout=120, what="the campaign to be sent")

    sent = sent_per_phone(fake_twilio)
    assert sent == Counter(people["eligible"])
    assert not set(sent) & set(people["excluded"] + people["outside"])
    campaign.refresh_from_db()
    assert fan_out(campaign=campaign, batch=campaign.batch) == 0  # a re-run adds nothing
    assert (campaign.recipients_count, campaign.excluded_opted_out) == (970, 20)
    assert campaign.excluded_suppressed == 10
    assert Message.objects.filter(body="Hi Member40, the garden opens Saturday.").count() == 1

    assert fake_twilio.wait_for_deliveries(timeout=60)

    def all_delivered() -> bool:
        sweep()  # as beat does: applies reports that came before their SID was stored
        return Message.objects.filter(status=Status.DELIVERED).count() == 970

    wait_until(all_delivered, timeout=60, what="delivery callbacks")
    assert finish_sent_campaigns() == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DONE


def test_killing_the_worker_mid_campaign_neither_loses_nor_duplicates(
    worker_environment, fake_twilio, tmp_path
):
    people = audience(1000, opted_out=0, suppressed=0, outside=0)
    fake_twilio.set_rules(latency_ms=20)
    worker_environment["SMS_RATE_LIMIT_PER_SECOND"] = "200"
    campaign = CampaignFactory(respect_quiet_hours=False)

    with running_worker(tmp_path, extra_environment=worker_environment) as first:
        assert launch_campaign(campaign_id=campaign.pk)
        wait_until(lambda: len(fake_twilio.messages) >= 250, timeout=60, what="sending to start")
        first.kill()

    with running_worker(tmp_path, extra_environment=worker_environment):
        # The beat job: reconcile what the dead worker held, re-dispatch the idle batch.
        def swept_and_done() -> bool:
            sweep()
            return nothing_left_to_send()

        wait_until(swept_and_done, timeout=120, what="recovery after the kill")

    assert sent_per_phone(fake_twilio) == Counter(people["eligible"])
    statuses = set(Message.objects.values_list("status", flat=True))
    assert statuses <= {Status.ACCEPTED, Status.SENT, Status.DELIVERED}


def test_429_bursts_and_5xx_are_retried_and_permanent_errors_fail_with_their_code(
    worker_environment, fake_twilio, tmp_path
):
    people = audience(200, opted_out=0, suppressed=0, outside=0)
    invalid = people["eligible"][:2]
    fake_twilio.fail_numbers(*invalid, status=400, code=21211)
    fake_twilio.rate_limit_next(15)
    fake_twilio.set_rules(server_error_fraction=0.1)
    campaign = CampaignFactory(respect_quiet_hours=False)

    with running_worker(tmp_path, extra_environment=worker_environment):
        assert launch_campaign(campaign_id=campaign.pk)

        def retried_and_done() -> bool:
            # Messages put back after their in-round tries come due again: as beat does.
            Message.objects.filter(status=Status.PENDING).update(send_after=None)
            sweep()
            return nothing_left_to_send()

        wait_until(retried_and_done, timeout=120, what="retries to finish")

    accepted = sent_per_phone(fake_twilio)
    assert accepted == Counter(people["eligible"][2:])
    failed = Message.objects.filter(status=Status.FAILED)
    assert sorted(failed.values_list("phone", flat=True)) == sorted(invalid)
    assert set(failed.values_list("error_code", flat=True)) == {21211}
    assert Message.objects.filter(attempt_set__http_status=429).exists()
