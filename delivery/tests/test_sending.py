"""Sending through the real twilio SDK to the fake Twilio: what Twilio would have received."""

from __future__ import annotations

import contextlib

import pytest

from delivery.models import Attempt, Message
from delivery.sending import send_due_messages
from delivery.tests.factories import BatchFactory, MessageFactory
from members.tests.factories import OptOutFactory

# Sending runs its database work on a thread of its own: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)
Status = Message.Status


@pytest.fixture(autouse=True)
def fast_sending(settings):
    settings.SMS_RATE_LIMIT_PER_SECOND = 10_000
    settings.SMS_SEND_CONCURRENCY = 8
    settings.SMS_SEND_CHUNK_SIZE = 10
    settings.PUBLIC_BASE_URL = "https://sms.example.org"


def creations(fake):
    return [request for request in fake.requests if request.method == "POST"]


def test_every_message_reaches_twilio_once_with_its_fields(fake_twilio):
    batch = BatchFactory(sender="+15005550006")
    messages = MessageFactory.create_batch(25, batch=batch)

    summary = send_due_messages(batch_id=batch.pk, max_messages=1000)

    assert (summary.claimed, summary.accepted, summary.failed) == (25, 25, 0)
    received = creations(fake_twilio)
    assert sorted(request.form["To"] for request in received) == sorted(
        message.phone for message in messages
    )
    first = received[0].form
    assert first["From"] == "+15005550006"
    assert first["Body"] == messages[0].body
    assert first["StatusCallback"] == "https://sms.example.org/webhooks/twilio/status"
    sids = {message.sid for message in fake_twilio.messages}
    assert set(Message.objects.values_list("provider_sid", flat=True)) == sids
    assert set(Message.objects.values_list("status", flat=True)) == {Status.ACCEPTED}
    assert Attempt.objects.filter(outcome=Attempt.Outcome.ACCEPTED).count() == 25


def test_a_messaging_service_sender_is_sent_as_such(fake_twilio):
    batch = BatchFactory(sender="MG" + "0" * 32)
    MessageFactory(batch=batch)
    send_due_messages(batch_id=batch.pk, max_messages=10)
    (request,) = creations(fake_twilio)
    assert request.form["MessagingServiceSid"] == "MG" + "0" * 32
    assert "From" not in request.form


def test_a_permanent_error_fails_the_message_with_its_code_at_once(fake_twilio):
    batch = BatchFactory()
    bad, good = MessageFactory.create_batch(2, batch=batch)
    fake_twilio.fail_numbers(bad.phone, status=400, code=21211)

    summary = send_due_messages(batch_id=batch.pk, max_messages=10)

    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.status, bad.error_code, bad.attempts) == (Status.FAILED, 21211, 1)
    assert good.status == Status.ACCEPTED
    assert len(fake_twilio.requests_to(bad.phone)) == 1
    assert (summary.accepted, summary.failed) == (1, 1)


def test_a_burst_of_429s_is_retried_to_success(fake_twilio):
    batch = BatchFactory()
    MessageFactory.create_batch(4, batch=batch)
    fake_twilio.rate_limit_next(3)

    send_due_messages(batch_id=batch.pk, max_messages=10)

    assert set(Message.objects.values_list("status", flat=True)) == {Status.ACCEPTED}
    assert Attempt.objects.filter(http_status=429).count() == 3
    assert len(fake_twilio.messages) == 4


def test_a_500_after_twilio_created_the_message_is_reconciled_not_resent(fake_twilio):
    batch = BatchFactory()
    message = MessageFactory(batch=batch)
    # Every creation answers 500 after creating the message; lookups are answered.
    fake_twilio.set_rules(server_error_fraction=1.0, server_errors_after_creating=True)

    send_due_messages(batch_id=batch.pk, max_messages=10)

    message.refresh_from_db()
    (created,) = fake_twilio.messages
    assert (message.status, message.provider_sid) == (Status.ACCEPTED, created.sid)
    assert Attempt.objects.get().outcome == Attempt.Outcome.RECONCILED


def test_a_500_before_creating_is_retried(fake_twilio):
    batch = BatchFactory()
    message = MessageFactory(batch=batch)
    fake_twilio.set_rules(server_error_fraction=1.0)

    summary = send_due_messages(batch_id=batch.pk, max_messages=10)

    message.refresh_from_db()
    assert summary.retry_later == 1
    assert message.status == Status.PENDING
    assert message.attempts == 3
    assert fake_twilio.messages == []


def test_an_opted_out_phone_never_reaches_twilio(fake_twilio):
    batch = BatchFactory()
    stopped, other = MessageFactory.create_batch(2, batch=batch)
    OptOutFactory(phone=stopped.phone)

    send_due_messages(batch_id=batch.pk, max_messages=10)

    assert fake_twilio.requests_to(stopped.phone) == []
    assert len(fake_twilio.requests_to(other.phone)) == 1
    stopped.refresh_from_db()
    assert stopped.status == Status.CANCELED


def test_max_messages_bounds_one_round(fake_twilio):
    batch = BatchFactory()
    MessageFactory.create_batch(15, batch=batch)
    summary = send_due_messages(batch_id=batch.pk, max_messages=10)
    assert summary.claimed == 10
    assert Message.objects.filter(status=Status.PENDING).count() == 5
    assert len(creations(fake_twilio)) == 10


def test_a_claim_past_half_its_lease_is_released_unsent_and_due_again(fake_twilio, settings):
    """Reconcile may look a message up once its lease is over: a worker that got to it
    that late (stalled on Redis, say) must not send it then, or it could go out twice."""
    settings.SMS_SENDING_LEASE_SECONDS = 0  # every claim is "too old" at once
    batch = BatchFactory()
    MessageFactory.create_batch(3, batch=batch)

    summary = send_due_messages(batch_id=batch.pk, max_messages=10)

    assert (summary.claimed, summary.accepted, summary.retry_later) == (3, 0, 3)
    assert creations(fake_twilio) == []
    assert set(Message.objects.values_list("status", "claimed_at", "send_after", "attempts")) == {
        (Status.PENDING, None, None, 0)
    }
    assert Attempt.objects.count() == 0
    settings.SMS_SENDING_LEASE_SECONDS = 300
    assert send_due_messages(batch_id=batch.pk, max_messages=10).accepted == 3
    assert len(creations(fake_twilio)) == 3


def test_when_the_provider_cannot_say_whether_it_took_a_message_it_is_held_not_resent(
    fake_twilio, settings
):
    settings.SMS_PROVIDER_TIMEOUT = 0.3
    batch = BatchFactory()
    message = MessageFactory(batch=batch)
    # Twilio stops answering: the send times out, and so does the lookup after it.
    fake_twilio.set_rules(stall_fraction=1.0, stall_seconds=1.0, failures_include_reads=True)
    send_due_messages(batch_id=batch.pk, max_messages=10)
    message.refresh_from_db()
    assert (message.status, message.must_reconcile) == (Status.PENDING, True)
    assert message.send_after is not None
    assert Attempt.objects.get().outcome == Attempt.Outcome.UNKNOWN

    # Twilio recovers: the next round asks before sending, then sends exactly once.
    fake_twilio.set_rules(stall_fraction=0.0)
    Message.objects.update(send_after=None)
    send_due_messages(batch_id=batch.pk, max_messages=10)
    message.refresh_from_db()
    assert len(fake_twilio.messages) == 1
    assert (message.status, message.provider_sid) == (
        Status.ACCEPTED,
        fake_twilio.messages[0].sid,
    )
    assert message.must_reconcile is False


def test_a_stop_that_arrives_after_the_claim_still_stops_the_message(fake_twilio, settings):
    import threading
    import time

    from django.db import connection

    settings.SMS_RATE_LIMIT_PER_SECOND = 2  # four messages claimed at once, sent over 2 s
    batch = BatchFactory()
    messages = MessageFactory.create_batch(4, batch=batch)
    stopper = messages[3]

    def text_stop_soon() -> None:
        time.sleep(0.6)
        OptOutFactory(phone=stopper.phone)
        connection.close()

    thread = threading.Thread(target=text_stop_soon)
    thread.start()
    summary = send_due_messages(batch_id=batch.pk, max_messages=10)
    thread.join()

    assert fake_twilio.requests_to(stopper.phone) == []
    stopper.refresh_from_db()
    assert (stopper.status, stopper.canceled_at is not None) == (Status.CANCELED, True)
    assert (summary.claimed, summary.accepted, summary.skipped) == (4, 3, 1)


def test_when_redis_fails_under_the_rate_limiter_the_round_ends_with_the_error(
    fake_twilio, settings
):
    """Every sender dies on the limiter while the producer waits on a full queue: the
    round must still end (with the error), so the worker can take its next task."""
    import socket
    import threading
    import time

    import redis

    # A "Redis" that takes each connection, says nothing for a moment and hangs up: by the
    # time the limiter gives up, the producer has filled the queue.
    listener = socket.create_server(("127.0.0.1", 0))
    settings.REDIS_URL = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"

    def hang_up_slowly() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer, _ = listener.accept()
                threading.Timer(0.3, peer.close).start()

    threading.Thread(target=hang_up_slowly, daemon=True).start()
    batch = BatchFactory()
    MessageFactory.create_batch(40, batch=batch)
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(send_due_messages(batch_id=batch.pk, max_messages=1000))
        except Exception as error:
            outcome.append(error)

    round_ = threading.Thread(target=send, daemon=True)
    started = time.monotonic()
    round_.start()
    round_.join(timeout=60)
    listener.close()

    assert not round_.is_alive(), (
        f"the round hung after Redis failed ({time.monotonic() - started:.0f} s)"
    )
    assert isinstance(outcome[0], redis.ConnectionError), outcome
    assert creations(fake_twilio) == []
    # What was claimed stays "sending", to be reconciled after the lease; the rest waits.
    assert set(Message.objects.values_list("status", flat=True)) == {
        Status.SENDING,
        Status.PENDING,
    }
