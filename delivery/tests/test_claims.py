"""Claiming due messages and writing back what the provider said."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.backends.base import SendOutcome
from delivery.claims import AttemptRecord, SendRecord, claim_due_messages, record_results
from delivery.models import Attempt, Message
from delivery.tests.factories import BatchFactory, MessageFactory
from members.tests.factories import OptOutFactory, SuppressionFactory

pytestmark = pytest.mark.django_db
Status = Message.Status


def test_claim_takes_due_pending_messages_of_the_batch_in_order():
    batch = BatchFactory()
    due = MessageFactory.create_batch(3, batch=batch)
    later = MessageFactory(batch=batch, send_after=timezone.now() + timedelta(hours=1))
    other_batch = MessageFactory()
    already_sent = MessageFactory(batch=batch, status=Status.ACCEPTED)

    claimed = claim_due_messages(batch_id=batch.pk, limit=10)

    assert [message.id for message in claimed] == [message.pk for message in due]
    assert set(Message.objects.filter(status=Status.SENDING).values_list("pk", flat=True)) == {
        message.pk for message in due
    }
    for untouched in (later, other_batch):
        untouched.refresh_from_db()
        assert untouched.status == Status.PENDING
    already_sent.refresh_from_db()
    assert already_sent.status == Status.ACCEPTED
    batch.refresh_from_db()
    assert batch.last_claimed_at is not None


def test_claim_respects_the_limit():
    batch = BatchFactory()
    MessageFactory.create_batch(5, batch=batch)
    assert len(claim_due_messages(batch_id=batch.pk, limit=2)) == 2
    assert Message.objects.filter(status=Status.PENDING).count() == 3


def test_a_paused_batch_gives_nothing():
    batch = BatchFactory(is_paused=True)
    MessageFactory.create_batch(2, batch=batch)
    assert claim_due_messages(batch_id=batch.pk, limit=10) == []
    assert Message.objects.filter(status=Status.PENDING).count() == 2


def test_a_phone_that_opted_out_since_fan_out_is_canceled_not_claimed():
    batch = BatchFactory()
    stays, stopped, suppressed = MessageFactory.create_batch(3, batch=batch)
    OptOutFactory(phone=stopped.phone)
    SuppressionFactory(phone=suppressed.phone)

    claimed = claim_due_messages(batch_id=batch.pk, limit=10)

    assert [message.id for message in claimed] == [stays.pk]
    stopped.refresh_from_db()
    suppressed.refresh_from_db()
    assert (stopped.status, stopped.error_message) == (
        Status.CANCELED,
        "Opted out before it was sent",
    )
    assert (suppressed.status, suppressed.error_message) == (
        Status.CANCELED,
        "Suppressed before it was sent",
    )


def test_a_lifted_opt_out_does_not_block():
    batch = BatchFactory()
    message = MessageFactory(batch=batch)
    OptOutFactory(phone=message.phone, lifted_at=timezone.now())
    assert [claimed.id for claimed in claim_due_messages(batch_id=batch.pk, limit=10)] == [
        message.pk
    ]


def record(message, outcome, **kwargs):
    attempt = AttemptRecord(
        started_at=timezone.now(),
        duration_ms=12,
        outcome=str(outcome),
        http_status=kwargs.pop("http_status", None),
        error_code=kwargs.get("error_code"),
    )
    return SendRecord(message=message, outcome=outcome, attempts=[attempt], **kwargs)


def test_results_are_written_back_with_their_attempts():
    batch = BatchFactory()
    MessageFactory.create_batch(3, batch=batch)
    accepted, refused, transient = claim_due_messages(batch_id=batch.pk, limit=10)

    record_results(
        [
            record(accepted, SendOutcome.ACCEPTED, provider_sid="SM" + "a" * 32),
            record(refused, SendOutcome.FAILED, error_code=21211, error_message="Invalid 'To'"),
            record(transient, SendOutcome.RETRY, error_message="HTTP 500"),
        ]
    )

    rows = {message.pk: message for message in Message.objects.all()}
    assert rows[accepted.id].status == Status.ACCEPTED
    assert rows[accepted.id].provider_sid == "SM" + "a" * 32
    assert rows[accepted.id].accepted_at is not None
    assert (rows[refused.id].status, rows[refused.id].error_code) == (Status.FAILED, 21211)
    assert rows[refused.id].failed_at is not None
    assert rows[transient.id].status == Status.PENDING
    assert rows[transient.id].send_after > timezone.now()
    assert rows[transient.id].claimed_at is None
    assert all(row.attempts == 1 for row in rows.values())
    assert Attempt.objects.count() == 3


def test_a_message_out_of_attempts_fails_for_good(settings):
    settings.SMS_MAX_ATTEMPTS = 3
    batch = BatchFactory()
    MessageFactory(batch=batch, attempts=2)
    (claimed,) = claim_due_messages(batch_id=batch.pk, limit=10)
    record_results([record(claimed, SendOutcome.RETRY, error_message="HTTP 503")])
    message = Message.objects.get()
    assert (message.status, message.attempts) == (Status.FAILED, 3)


def test_a_result_for_a_message_claimed_again_meanwhile_is_ignored():
    batch = BatchFactory()
    MessageFactory(batch=batch)
    (stale,) = claim_due_messages(batch_id=batch.pk, limit=10)
    Message.objects.update(claimed_at=timezone.now() + timedelta(seconds=1))

    record_results([record(stale, SendOutcome.ACCEPTED, provider_sid="SM" + "b" * 32)])

    message = Message.objects.get()
    assert (message.status, message.provider_sid) == (Status.SENDING, None)


def test_a_message_that_comes_due_outside_its_window_is_put_back_until_it_opens():
    from datetime import UTC, datetime, time

    import time_machine

    batch = BatchFactory(quiet_hours_start=time(9), quiet_hours_end=time(20))
    evening = MessageFactory(batch=batch, recipient_timezones=["America/New_York"])
    daytime = MessageFactory(batch=batch, recipient_timezones=["America/Los_Angeles"])
    anytime = MessageFactory(batch=batch, recipient_timezones=None)

    # 01:30 UTC: 20:30 in New York (closed), 17:30 in Los Angeles (open).
    with time_machine.travel(datetime(2026, 11, 21, 1, 30, tzinfo=UTC), tick=False):
        claimed = claim_due_messages(batch_id=batch.pk, limit=10)

    assert [message.id for message in claimed] == [daytime.pk, anytime.pk]
    evening.refresh_from_db()
    assert evening.status == Status.PENDING
    assert evening.send_after == datetime(2026, 11, 21, 14, 0, tzinfo=UTC)  # 09:00 EST
