"""Launch, schedule, cancel, retry and test messages: what each does and refuses."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import (
    CampaignActionError,
    cancel_campaign,
    finish_sent_campaigns,
    launch_campaign,
    launch_due_campaigns,
    retry_failed_messages,
    schedule_campaign,
    send_test_message,
)
from campaigns.tests.factories import CampaignFactory
from delivery.models import Batch, Message
from members.tests.factories import MemberFactory, OptOutFactory

pytestmark = pytest.mark.django_db
State = Campaign.State
Status = Message.Status


def test_launch_fans_out_records_counts_and_enqueues_after_commit(
    django_capture_on_commit_callbacks, enqueued
):
    MemberFactory.create_batch(3)
    stopped = MemberFactory()
    OptOutFactory(phone=stopped.phone)
    campaign = CampaignFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert launch_campaign(campaign_id=campaign.pk)
    assert enqueued == []  # nothing before the commit
    for callback in callbacks:
        callback()

    campaign.refresh_from_db()
    assert campaign.state == State.SENDING
    assert (campaign.recipients_count, campaign.excluded_opted_out) == (3, 1)
    assert campaign.batch.kind == Batch.Kind.CAMPAIGN
    assert enqueued == [campaign.batch_id] * 2
    assert Message.objects.filter(batch=campaign.batch).count() == 3


def test_a_second_launch_does_nothing(enqueued):
    MemberFactory.create_batch(2)
    campaign = CampaignFactory()
    assert launch_campaign(campaign_id=campaign.pk)
    assert not launch_campaign(campaign_id=campaign.pk)
    assert Message.objects.count() == 2
    assert Batch.objects.count() == 1


def test_a_campaign_with_nobody_to_text_is_done_at_once(enqueued):
    campaign = CampaignFactory()
    assert launch_campaign(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert (campaign.state, campaign.recipients_count) == (State.DONE, 0)


@pytest.mark.django_db(transaction=True)
def test_two_beats_launching_at_once_launch_a_campaign_once(enqueued):
    MemberFactory.create_batch(5)
    campaign = CampaignFactory(state=State.SCHEDULED, send_at=timezone.now())
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def beat() -> None:
        barrier.wait()
        try:
            results.append(launch_due_campaigns())
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [[], [campaign.pk]]
    assert Batch.objects.count() == 1
    assert Message.objects.count() == 5


def test_due_campaigns_launch_and_future_ones_wait(enqueued):
    due = CampaignFactory(state=State.SCHEDULED, send_at=timezone.now() - timedelta(seconds=1))
    later = CampaignFactory(state=State.SCHEDULED, send_at=timezone.now() + timedelta(hours=1))
    assert launch_due_campaigns() == [due.pk]
    later.refresh_from_db()
    assert later.state == State.SCHEDULED


def test_schedule_needs_a_future_time():
    campaign = CampaignFactory()
    with pytest.raises(CampaignActionError, match="future"):
        schedule_campaign(campaign=campaign, send_at=timezone.now() - timedelta(minutes=1))
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    at = timezone.now() + timedelta(days=1)
    schedule_campaign(campaign=campaign, send_at=at)
    assert (campaign.state, campaign.send_at) == (State.SCHEDULED, at)


def test_cancel_cancels_pending_messages_only(enqueued):
    MemberFactory.create_batch(3)
    campaign = CampaignFactory()
    launch_campaign(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    first = Message.objects.order_by("pk").first()
    Message.objects.filter(pk=first.pk).update(status=Status.ACCEPTED, provider_sid="SM1")

    assert cancel_campaign(campaign=campaign) == 2

    assert campaign.state == State.CANCELED
    assert Message.objects.filter(status=Status.CANCELED).count() == 2
    assert Message.objects.get(pk=first.pk).status == Status.ACCEPTED
    with pytest.raises(CampaignActionError):
        cancel_campaign(campaign=campaign)


def test_retry_resends_only_transient_failures(enqueued):
    MemberFactory.create_batch(4)
    campaign = CampaignFactory()
    launch_campaign(campaign_id=campaign.pk)
    unreachable, landline, exhausted, delivered = Message.objects.order_by("pk")
    Message.objects.filter(pk=unreachable.pk).update(status=Status.UNDELIVERED, error_code=30003)
    Message.objects.filter(pk=landline.pk).update(status=Status.FAILED, error_code=30006)
    Message.objects.filter(pk=exhausted.pk).update(status=Status.FAILED, error_code=None)
    Message.objects.filter(pk=delivered.pk).update(status=Status.DELIVERED)
    Campaign.objects.filter(pk=campaign.pk).update(state=State.DONE)
    campaign.refresh_from_db()

    assert retry_failed_messages(campaign=campaign) == 2

    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses == {
        unreachable.pk: Status.PENDING,
        landline.pk: Status.FAILED,
        exhausted.pk: Status.PENDING,
        delivered.pk: Status.DELIVERED,
    }
    assert campaign.state == State.SENDING


def test_a_test_message_goes_to_the_staff_phone_in_a_batch_of_its_own(enqueued):
    MemberFactory(first_name="Ada")
    campaign = CampaignFactory(body="Hi {first_name|friend}!")
    message = send_test_message(campaign=campaign, to_phone="+14155550000")
    assert (message.phone, message.body, message.kind) == ("+14155550000", "Hi Ada!", "test")
    assert message.batch.kind == Batch.Kind.TEST
    assert campaign.batch is None


def test_a_test_message_to_an_opted_out_phone_is_refused():
    OptOutFactory(phone="+14155550000")
    with pytest.raises(CampaignActionError, match="opted out"):
        send_test_message(campaign=CampaignFactory(), to_phone="+14155550000")
    assert Message.objects.count() == 0


def test_finished_campaigns_are_marked_done_and_others_keep_sending(enqueued):
    MemberFactory.create_batch(2)
    finished, pending, claimed = CampaignFactory(), CampaignFactory(), CampaignFactory()
    for campaign in (finished, pending, claimed):
        launch_campaign(campaign_id=campaign.pk)
        campaign.refresh_from_db()
    Message.objects.filter(batch=finished.batch).update(status=Status.DELIVERED)
    # A worker holds these: in flight to the provider, not yet answered.
    Message.objects.filter(batch=claimed.batch).update(status=Status.SENDING)

    assert finish_sent_campaigns() == [finished.pk]
    for campaign in (pending, claimed):
        campaign.refresh_from_db()
        assert campaign.state == State.SENDING


def test_a_paused_campaign_shows_why_and_resumes_from_its_page(client, enqueued):
    from django.urls import reverse

    from members.tests.factories import social_manager

    MemberFactory.create_batch(2)
    campaign = CampaignFactory()
    launch_campaign(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    Batch.objects.filter(pk=campaign.batch_id).update(
        is_paused=True, pause_reason="30007: the carrier filtered our messages"
    )
    client.force_login(social_manager())
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "Sending is paused: 30007: the carrier filtered our messages" in page.text

    client.post(reverse("admin:campaigns_campaign_resume_sending", args=[campaign.pk]))

    campaign.batch.refresh_from_db()
    assert campaign.batch.is_paused is False


def test_the_campaign_page_says_how_many_wait_for_quiet_hours_and_when(client, enqueued):
    from datetime import UTC, datetime

    import time_machine
    from django.urls import reverse

    from members.tests.factories import social_manager

    with time_machine.travel(datetime(2026, 11, 20, 20, 0, tzinfo=UTC), tick=False):
        MemberFactory(number_timezones=["Asia/Kolkata"])  # 01:30 there
        MemberFactory(number_timezones=["America/Los_Angeles"])  # noon there
        campaign = CampaignFactory()
        launch_campaign(campaign_id=campaign.pk)
        client.force_login(social_manager())
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "1 messages wait for their recipients' sending window" in page.text
