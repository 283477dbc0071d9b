"""Provider statuses move a message forward only; repeats and strays change nothing."""

from __future__ import annotations

import pytest

from delivery.models import Message
from delivery.status import apply_provider_status
from delivery.tests.factories import MessageFactory

pytestmark = pytest.mark.django_db
Status = Message.Status


def accepted_message(**kwargs):
    return MessageFactory(status=Status.ACCEPTED, provider_sid="SM" + "a" * 32, **kwargs)


def test_sent_then_delivered_moves_the_message_forward_with_timestamps():
    message = accepted_message()
    assert apply_provider_status(provider_sid=message.provider_sid, provider_status="sent")
    assert apply_provider_status(provider_sid=message.provider_sid, provider_status="delivered")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.sent_at is not None
    assert message.delivered_at is not None


def test_a_late_sent_after_delivered_changes_nothing():
    message = accepted_message()
    apply_provider_status(provider_sid=message.provider_sid, provider_status="delivered")
    message.refresh_from_db()
    before = (message.status, message.status_updated_at, message.sent_at)
    assert not apply_provider_status(provider_sid=message.provider_sid, provider_status="sent")
    message.refresh_from_db()
    assert (message.status, message.status_updated_at, message.sent_at) == before


def test_a_repeated_callback_applies_once():
    message = accepted_message()
    assert apply_provider_status(provider_sid=message.provider_sid, provider_status="delivered")
    assert not apply_provider_status(provider_sid=message.provider_sid, provider_status="delivered")


def test_a_failure_records_its_code_and_time():
    message = accepted_message()
    apply_provider_status(
        provider_sid=message.provider_sid,
        provider_status="undelivered",
        error_code=30003,
        error_message="Unreachable destination handset",
    )
    message.refresh_from_db()
    assert message.status == Status.UNDELIVERED
    assert message.error_code == 30003
    assert message.error_message == "Unreachable destination handset"
    assert message.failed_at is not None


def test_a_final_status_is_never_replaced_by_another_final_status():
    message = accepted_message()
    apply_provider_status(provider_sid=message.provider_sid, provider_status="delivered")
    assert not apply_provider_status(
        provider_sid=message.provider_sid, provider_status="failed", error_code=30008
    )
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.DELIVERED, None)


def test_an_unknown_sid_changes_nothing():
    message = accepted_message()
    assert not apply_provider_status(provider_sid="SM" + "f" * 32, provider_status="delivered")
    message.refresh_from_db()
    assert message.status == Status.ACCEPTED


@pytest.mark.parametrize("status", ["", "bogus", "receiving"])
def test_an_unknown_status_changes_nothing(status):
    message = accepted_message()
    assert not apply_provider_status(provider_sid=message.provider_sid, provider_status=status)
    message.refresh_from_db()
    assert message.status == Status.ACCEPTED


def test_a_canceled_message_is_not_revived_by_a_callback():
    message = MessageFactory(status=Status.CANCELED, provider_sid="SM" + "c" * 32)
    assert not apply_provider_status(provider_sid=message.provider_sid, provider_status="sent")


def test_a_report_that_comes_before_the_sid_is_kept_and_applied_once_the_sid_is_stored(
    django_capture_on_commit_callbacks,
):
    from django.utils import timezone

    from delivery.backends.base import SendOutcome
    from delivery.claims import AttemptRecord, SendRecord, claim_due_messages, record_results
    from delivery.models import EarlyStatus
    from delivery.status import record_provider_status

    message = MessageFactory()
    sid = "SM" + "e" * 32
    assert not record_provider_status(provider_sid=sid, provider_status="sent")
    assert not record_provider_status(provider_sid=sid, provider_status="delivered")
    assert EarlyStatus.objects.count() == 2

    (claimed,) = claim_due_messages(batch_id=message.batch_id, limit=1)
    attempt = AttemptRecord(started_at=timezone.now(), duration_ms=5, outcome="accepted")
    with django_capture_on_commit_callbacks(execute=True):
        record_results(
            [
                SendRecord(
                    message=claimed,
                    outcome=SendOutcome.ACCEPTED,
                    attempts=[attempt],
                    provider_sid=sid,
                )
            ]
        )

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert EarlyStatus.objects.count() == 0
