"""A batch's progress: counts per status, delivery rate, failures by code, held messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Message
from delivery.selectors import batch_progress, oldest_pending, status_counts
from delivery.tests.factories import BatchFactory, MessageFactory

pytestmark = pytest.mark.django_db
Status = Message.Status


def test_progress_counts_each_status_and_groups_failures_by_code():
    batch = BatchFactory()
    later = timezone.now() + timedelta(hours=3)
    for status, code, send_after in [
        (Status.DELIVERED, None, None),
        (Status.DELIVERED, None, None),
        (Status.DELIVERED, None, None),
        (Status.UNDELIVERED, 30003, None),
        (Status.FAILED, 30006, None),
        (Status.FAILED, 30006, None),
        (Status.ACCEPTED, None, None),
        (Status.PENDING, None, later),
        (Status.PENDING, None, None),
    ]:
        MessageFactory(batch=batch, status=status, error_code=code, send_after=send_after)
    MessageFactory(status=Status.FAILED, error_code=30007)  # another batch

    progress = batch_progress(batch)

    assert progress.total == 9
    assert progress.counts[Status.DELIVERED] == 3
    assert progress.finished == 6
    assert progress.percent == 66
    assert progress.delivery_rate == pytest.approx(3 / 6)
    assert [(group.code, group.count) for group in progress.failures] == [(30006, 2), (30003, 1)]
    assert progress.failures[0].reason == "A landline, or a carrier that cannot take texts"
    assert (progress.deferred, progress.next_release_at) == (1, later)
    assert progress.waiting == 2


def test_an_empty_batch_has_no_rate_and_no_progress():
    progress = batch_progress(BatchFactory())
    assert (progress.total, progress.percent, progress.delivery_rate) == (0, 0, None)


def test_status_counts_give_every_status_of_each_batch_pending_included():
    first, second, untouched = BatchFactory(), BatchFactory(), BatchFactory()
    for batch, status in [
        (first, Status.PENDING),
        (first, Status.PENDING),
        (first, Status.SENDING),
        (first, Status.DELIVERED),
        (second, Status.FAILED),
    ]:
        MessageFactory(batch=batch, status=status)
    MessageFactory(status=Status.PENDING)  # a batch not asked about

    counts = status_counts([first.pk, second.pk, untouched.pk])

    zeros = dict.fromkeys(Status.values, 0)
    assert counts == {
        first.pk: {**zeros, Status.PENDING: 2, Status.SENDING: 1, Status.DELIVERED: 1},
        second.pk: {**zeros, Status.FAILED: 1},
        untouched.pk: zeros,
    }


def test_oldest_pending_merges_the_batches_in_id_order_and_skips_rows_not_due():
    now = timezone.now()
    first, second = BatchFactory(), BatchFactory()
    rows = [
        MessageFactory(batch=batch, status=status, send_after=send_after)
        for batch, status, send_after in [
            (first, Status.DELIVERED, None),
            (second, Status.PENDING, now + timedelta(hours=1)),
            (first, Status.PENDING, None),
            (second, Status.PENDING, None),
            (first, Status.PENDING, now - timedelta(minutes=1)),
            (second, Status.SENDING, None),
        ]
    ]
    deferred, first_due, second_due, released = (row.pk for row in rows[1:5])

    assert [row[0] for row in oldest_pending(limit=3)] == [deferred, first_due, second_due]
    assert [row[0] for row in oldest_pending(limit=10, due_by=now)] == [
        first_due,
        second_due,
        released,
    ]
    assert oldest_pending(limit=1, due_by=now) == [(first_due, rows[2].created_at, None)]


def test_oldest_pending_is_empty_when_nothing_waits():
    MessageFactory(status=Status.DELIVERED)
    assert oldest_pending(limit=5) == []
