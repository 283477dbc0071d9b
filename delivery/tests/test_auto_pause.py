"""A batch pauses itself when failures on our side pass both thresholds, and resumes."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.tests.factories import CampaignFactory
from delivery.claims import claim_due_messages
from delivery.models import Batch, Message
from delivery.status import record_provider_status
from delivery.suppression import Failure, apply_failure_rules, resume_batch
from delivery.tests.factories import BatchFactory, MessageFactory
from members.models import OptOut, Suppression
from members.tests.factories import social_manager

pytestmark = pytest.mark.django_db
Status = Message.Status
REASON_10_OF_200 = (
    "Paused automatically: 10 of 200 finished messages (5%) failed for a reason on our side. "
    "Errors: 30007 The carrier filtered the message as spam (7); 30034 Our sender is not "
    "registered for A2P 10DLC (3). Fix the cause, then resume sending."
)


def add_messages(batch: Batch, count: int, status: str, code: int | None = None) -> list[Message]:
    now = timezone.now()
    return Message.objects.bulk_create(
        MessageFactory.build_batch(
            count,
            batch=batch,
            status=status,
            error_code=code,
            error_message=f"Twilio says {code}" if code else "",
            failed_at=now if status in (Status.FAILED, Status.UNDELIVERED) else None,
            delivered_at=now if status == Status.DELIVERED else None,
        )
    )


def our_failures(batch: Batch, *codes_and_counts: tuple[int, int]) -> list[Failure]:
    messages = []
    for code, count in codes_and_counts:
        messages += add_messages(batch, count, Status.UNDELIVERED, code)
    return [Failure(m.phone, m.error_code, m.error_message, m.batch_id) for m in messages]


def flags(batch: Batch) -> tuple[bool, str]:
    batch.refresh_from_db()
    return batch.is_paused, batch.pause_reason


def assert_no_number_blocked() -> None:
    assert not Suppression.objects.exists()
    assert not OptOut.objects.exists()


def test_under_the_count_a_batch_keeps_sending_even_if_every_message_failed():
    batch = BatchFactory()
    failures = our_failures(batch, (30007, 9))

    outcome = apply_failure_rules(failures=failures)

    assert outcome.paused_batch_ids == []
    assert flags(batch) == (False, "")
    assert_no_number_blocked()


def test_under_the_rate_a_batch_keeps_sending():
    batch = BatchFactory()
    add_messages(batch, 191, Status.DELIVERED)
    failures = our_failures(batch, (30007, 10))  # 10 of 201: under 5%

    apply_failure_rules(failures=failures)

    assert flags(batch) == (False, "")


def test_passing_count_and_rate_pauses_the_batch_with_the_reason(caplog):
    batch = BatchFactory()
    other_batch = BatchFactory()
    add_messages(batch, 190, Status.DELIVERED)
    pending = add_messages(batch, 5, Status.PENDING)
    failures = our_failures(batch, (30007, 7), (30034, 3))  # 10 of 200: 5%

    with caplog.at_level(logging.ERROR, logger="delivery.suppression"):
        outcome = apply_failure_rules(failures=failures)

    assert outcome.paused_batch_ids == [batch.pk]
    assert flags(batch) == (True, REASON_10_OF_200)
    assert flags(other_batch) == (False, "")
    assert [record.getMessage() for record in caplog.records][-1] == (
        f"Batch {batch.pk}: {REASON_10_OF_200}"
    )
    assert set(Message.objects.filter(pk__in=[m.pk for m in pending]).values_list("status")) == {
        (Status.PENDING,)
    }
    assert_no_number_blocked()


def test_canceled_messages_do_not_dilute_the_rate():
    batch = BatchFactory()
    add_messages(batch, 190, Status.DELIVERED)
    add_messages(batch, 500, Status.CANCELED)

    apply_failure_rules(failures=our_failures(batch, (30007, 7), (30034, 3)))

    assert flags(batch) == (True, REASON_10_OF_200)


def test_the_thresholds_come_from_the_settings(settings):
    settings.AUTO_PAUSE_SENDER_ERRORS_MIN = 2
    settings.AUTO_PAUSE_SENDER_ERROR_RATE = 0.5
    under, over = BatchFactory(), BatchFactory()
    add_messages(under, 3, Status.DELIVERED)
    add_messages(over, 2, Status.DELIVERED)

    apply_failure_rules(failures=our_failures(under, (21612, 2)) + our_failures(over, (21612, 2)))

    assert flags(under) == (False, "")
    assert flags(over) == (
        True,
        "Paused automatically: 2 of 4 finished messages (50%) failed for a reason on our side. "
        "Errors: 21612 This sender cannot reach this number (2). Fix the cause, then resume "
        "sending.",
    )


def test_a_long_reason_is_cut_to_fit_and_says_so():
    batch = BatchFactory()
    codes = (20003, 21408, 21612, 30002, 30007, 30032, 30034)

    apply_failure_rules(failures=our_failures(batch, *((code, 2) for code in codes)))

    is_paused, reason = flags(batch)
    assert is_paused
    assert len(reason) == 255
    assert reason.startswith(
        "Paused automatically: 14 of 14 finished messages (100%) failed for a reason on our "
        "side. Errors: 20003 Twilio refused our credentials (2); 21408 Sending to this region"
    )
    assert reason.endswith("…")


def test_a_batch_paused_already_keeps_its_reason():
    batch = BatchFactory(is_paused=True, pause_reason="Paused by staff")

    outcome = apply_failure_rules(failures=our_failures(batch, (30007, 20)))

    assert outcome.paused_batch_ids == []
    assert flags(batch) == (True, "Paused by staff")


def test_a_paused_batch_is_not_claimed():
    batch = BatchFactory()
    pending = add_messages(batch, 3, Status.PENDING)
    apply_failure_rules(failures=our_failures(batch, (30034, 10)))

    assert claim_due_messages(batch_id=batch.pk, limit=10) == []
    assert (
        Message.objects.filter(pk__in=[m.pk for m in pending], status=Status.PENDING).count() == 3
    )


def test_undelivered_callbacks_with_our_errors_pause_the_batch(
    django_capture_on_commit_callbacks,
):
    batch = BatchFactory()
    accepted = [
        MessageFactory(batch=batch, status=Status.SENT, provider_sid=f"SM{number:032d}")
        for number in range(10)
    ]
    add_messages(batch, 2, Status.PENDING)

    for message in accepted:
        with django_capture_on_commit_callbacks(execute=True):
            record_provider_status(
                provider_sid=message.provider_sid,
                provider_status="undelivered",
                error_code=30007,
                error_message="Message filtered",
            )
        if message != accepted[-1]:
            assert flags(batch) == (False, "")

    assert flags(batch) == (
        True,
        "Paused automatically: 10 of 10 finished messages (100%) failed for a reason on our "
        "side. Errors: 30007 The carrier filtered the message as spam (10). Fix the cause, then "
        "resume sending.",
    )
    assert claim_due_messages(batch_id=batch.pk, limit=10) == []
    assert_no_number_blocked()


# --- Resuming ----------------------------------------------------------------------------


def test_resume_clears_the_pause_and_dispatches_the_batch(
    settings, django_capture_on_commit_callbacks
):
    batch = BatchFactory(is_paused=True, pause_reason=REASON_10_OF_200)
    other = BatchFactory(is_paused=True, pause_reason="Paused by staff")

    with django_capture_on_commit_callbacks() as callbacks:
        assert resume_batch(batch=batch, by=social_manager())

    assert (batch.is_paused, batch.pause_reason) == (False, "")
    assert flags(batch) == (False, "")
    assert len(callbacks) == settings.SMS_SEND_TASK_CHAINS  # one send task per chain
    assert flags(other) == (True, "Paused by staff")


def test_resuming_a_batch_that_is_not_paused_does_nothing(django_capture_on_commit_callbacks):
    batch = BatchFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        assert not resume_batch(batch=batch)

    assert callbacks == []
    assert flags(batch) == (False, "")


# --- The campaign page -------------------------------------------------------------------


def progress_html(client, campaign: Campaign) -> str:
    url = reverse("admin:campaigns_campaign_progress", args=[campaign.pk])
    return client.get(url).json()["html"]


def test_the_campaign_page_shows_the_pause_and_its_reason(client):
    client.force_login(social_manager())
    batch = BatchFactory(is_paused=True, pause_reason=REASON_10_OF_200)
    campaign = CampaignFactory(
        state=Campaign.State.SENDING, batch=batch, launched_at=timezone.now()
    )

    html = progress_html(client, campaign)

    assert f'<p class="errornote campaign-paused">Sending is paused: {REASON_10_OF_200}</p>' in (
        html
    )


def test_the_campaign_page_says_nothing_of_a_pause_while_sending(client):
    client.force_login(social_manager())
    campaign = CampaignFactory(
        state=Campaign.State.SENDING, batch=BatchFactory(), launched_at=timezone.now()
    )

    assert "paused" not in progress_html(client, campaign)
