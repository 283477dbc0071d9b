"""Queuing the daily message: each confirmed subscriber once per local date at their own
send time, through an ordinary DAILY batch; confirmations first for new subscribers."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from delivery.models import Batch, Message
from members.models import Member, OptOut, Suppression
from members.services import opt_in_phone, opt_out_phone
from members.tests.factories import MemberFactory, us_mobile
from positivity.models import DailyMessage
from positivity.sending import deliver_due

pytestmark = pytest.mark.django_db
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
FOUR_ZONES = ("Pacific/Auckland", "Asia/Tokyo", "Europe/London", "America/Los_Angeles")
GOOD_TEXTS = (
    "Small steps still move you forward. Be proud of how far you have come.",
    "Your kindness today may be the bright spot in someone's week.",
    "Rest is not a reward, it is part of the work. Be gentle with yourself.",
    "You have made it through every hard day so far. Today is no different.",
)


def subscriber(zone: str = "Europe/London", **fields) -> Member:
    fields.setdefault("daily_confirmed_at", LONG_AGO)
    return MemberFactory(timezone=zone, is_daily_subscriber=True, is_community=False, **fields)


def run_at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        return deliver_due()


def daily_messages_to(phone: str) -> list[Message]:
    return list(
        Message.objects.filter(phone=phone, batch__daily_message__isnull=False).order_by("id")
    )


def test_a_normal_day_reaches_each_zone_once_at_its_own_eight_o_clock(fake_openai, settings):
    settings.DAILY_MESSAGE_SEND_TIME = "08:00"
    fake_openai.queue_replies(*GOOD_TEXTS)
    members = {zone: subscriber(zone) for zone in FOUR_ZONES}
    # 15:00 UTC: 04:00 in Auckland, 00:00 in Tokyo, 15:00 in London, 07:00 in Los Angeles:
    # no zone is between its 08:00 and the latest delay (6 h), so none starts mid-window.
    start = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)

    for step in range(0, 48 * 60, 20):  # a run every 20 minutes for two days
        run_at(start + timedelta(minutes=step))

    for zone, member in members.items():
        received = daily_messages_to(member.phone)
        local_times = [message.created_at.astimezone(ZoneInfo(zone)) for message in received]
        # Two days of runs: each zone's 8 o'clock came twice, one message each time.
        assert len(received) == 2, zone
        assert len({moment.date() for moment in local_times}) == 2, zone
        for moment, message in zip(local_times, received, strict=True):
            assert time(8, 0) <= moment.time() < time(8, 20), (zone, moment)
            daily = DailyMessage.objects.get(date=moment.date())
            assert (message.body, message.batch_id) == (daily.text, daily.batch_id)
            assert daily.source == DailyMessage.Source.AI
    assert Message.objects.exclude(batch__kind=Batch.Kind.DAILY).count() == 0


def test_messages_are_ordinary_pending_daily_messages_of_the_day_s_batch(settings):
    settings.OPENAI_API_KEY = ""
    member = subscriber("Europe/London")

    run = run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))

    daily = DailyMessage.objects.get(date=date(2026, 12, 2))
    (message,) = daily_messages_to(member.phone)
    assert run.queued == {date(2026, 12, 2): 1}
    assert daily.batch.kind == Batch.Kind.DAILY
    assert daily.batch.sender == settings.DAILY_MESSAGE_SENDER
    assert (message.kind, message.status, message.segments, message.encoding) == (
        Batch.Kind.DAILY,
        Message.Status.PENDING,
        1,
        "GSM-7",
    )


def test_the_day_s_batch_is_handed_to_the_workers_after_commit(
    settings, enqueued, django_capture_on_commit_callbacks
):
    settings.OPENAI_API_KEY = ""
    subscriber("Europe/London")

    with django_capture_on_commit_callbacks(execute=True):
        run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))

    batch_id = DailyMessage.objects.get().batch_id
    assert enqueued
    assert set(enqueued) == {batch_id}


def test_a_second_run_adds_nothing(settings):
    settings.OPENAI_API_KEY = ""
    subscriber("Europe/London")
    run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))

    again = run_at(datetime(2026, 12, 2, 8, 7, tzinfo=UTC))

    assert again.queued == {date(2026, 12, 2): 0}
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_runs_at_the_same_moment_queue_each_subscriber_once(settings):
    settings.OPENAI_API_KEY = ""
    phones = [subscriber("Europe/London", phone=us_mobile(index)).phone for index in range(50)]
    DailyMessage.objects.create(date=date(2026, 12, 2), text=GOOD_TEXTS[0], source="ai")
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(Message.objects.values_list("phone", flat=True)) == sorted(phones)
    assert Batch.objects.count() == 1


def test_non_subscribers_opted_out_and_suppressed_phones_get_nothing(settings):
    settings.OPENAI_API_KEY = ""
    member = subscriber("Europe/London")
    MemberFactory(timezone="Europe/London", is_daily_subscriber=False)
    stopped = subscriber("Europe/London")
    OptOut.objects.create(phone=stopped.phone, source="keyword", reason="STOP")
    failing = subscriber("Europe/London")
    Suppression.objects.create(phone=failing.phone, reason="landline")

    run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))

    assert list(Message.objects.values_list("phone", flat=True)) == [member.phone]


def test_a_subscriber_who_stopped_and_started_again_gets_the_message_again(settings):
    settings.OPENAI_API_KEY = ""
    member = subscriber("Europe/London")
    opt_out_phone(phone=member.phone, source="keyword", reason="STOP")
    run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))
    opt_in_phone(phone=member.phone, reason="START keyword")

    run_at(datetime(2026, 12, 3, 8, 5, tzinfo=UTC))

    assert [message.body for message in daily_messages_to(member.phone)] == [
        DailyMessage.objects.get(date=date(2026, 12, 3)).text
    ]


def test_each_subscriber_s_own_send_time_is_kept(settings):
    settings.OPENAI_API_KEY = ""
    early = subscriber("Europe/London", daily_send_time=time(6, 30))
    usual = subscriber("Europe/London")

    run_at(datetime(2026, 12, 2, 6, 35, tzinfo=UTC))

    assert list(Message.objects.values_list("phone", flat=True)) == [early.phone]
    run_at(datetime(2026, 12, 2, 8, 1, tzinfo=UTC))
    assert sorted(Message.objects.values_list("phone", flat=True)) == sorted(
        [early.phone, usual.phone]
    )


def test_with_approval_required_nothing_goes_until_staff_approve(settings, admin_user):
    settings.OPENAI_API_KEY = ""
    settings.DAILY_MESSAGE_REQUIRE_APPROVAL = True
    subscriber("Europe/London")

    waiting = run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))
    assert waiting.awaiting_approval == [date(2026, 12, 2)]
    assert Message.objects.count() == 0

    DailyMessage.objects.update(approved_at=datetime(2026, 12, 2, 8, 6, tzinfo=UTC))
    approved = run_at(datetime(2026, 12, 2, 8, 7, tzinfo=UTC))
    assert approved.queued == {date(2026, 12, 2): 1}


def test_one_message_on_a_day_whose_send_time_happens_twice(settings):
    settings.OPENAI_API_KEY = ""
    member = subscriber("America/New_York", daily_send_time=time(1, 30))
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT; clocks go back at 06:00 UTC

    for step in range(0, 5 * 60, 10):
        run_at(start + timedelta(minutes=step))

    (message,) = daily_messages_to(member.phone)
    assert message.created_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT


def test_one_message_at_each_local_eight_across_spring_forward(settings):
    settings.OPENAI_API_KEY = ""
    member = subscriber("America/New_York")
    start = datetime(2026, 3, 7, 0, 0, tzinfo=UTC)

    for step in range(0, 3 * 24 * 60, 30):
        run_at(start + timedelta(minutes=step))

    sent_at = [message.created_at for message in daily_messages_to(member.phone)]
    assert sent_at == [
        datetime(2026, 3, 7, 13, 0, tzinfo=UTC),  # 08:00 EST
        datetime(2026, 3, 8, 12, 0, tzinfo=UTC),  # 08:00 EDT
        datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
    ]


def test_new_subscribers_are_confirmed_in_polite_hours_before_their_first_message(settings):
    settings.OPENAI_API_KEY = ""
    settings.QUIET_HOURS_WINDOW = "09:00-20:00"
    member = subscriber("Europe/London", daily_confirmed_at=None)

    early = run_at(datetime(2026, 12, 2, 8, 30, tzinfo=UTC))
    assert (early.confirmations, early.queued) == (0, {})

    confirmed = run_at(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert confirmed.confirmations == 1
    (confirmation,) = Message.objects.filter(phone=member.phone)
    assert confirmation.body == settings.DAILY_MESSAGE_CONFIRMATION
    assert "Msg & data rates may apply" in confirmation.body

    later = run_at(datetime(2026, 12, 2, 9, 2, tzinfo=UTC))
    assert (later.confirmations, later.queued) == (0, {date(2026, 12, 2): 1})
    bodies = list(
        Message.objects.filter(phone=member.phone).order_by("id").values_list("body", flat=True)
    )
    assert bodies == [settings.DAILY_MESSAGE_CONFIRMATION, DailyMessage.objects.get().text]


def test_a_subscription_confirmed_by_the_join_reply_is_not_confirmed_again(settings):
    settings.OPENAI_API_KEY = ""
    subscriber("Europe/London", daily_confirmed_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))

    run = run_at(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))

    assert run.confirmations == 0
    assert Message.objects.get().body == DailyMessage.objects.get().text


def test_the_summary_of_a_run_lists_days_and_counts(settings):
    settings.OPENAI_API_KEY = ""
    subscriber("Europe/London")
    subscriber("Pacific/Auckland")

    run = run_at(datetime(2026, 12, 2, 8, 5, tzinfo=UTC))  # Auckland: 21:05, past its window

    assert run.as_dict() == {
        "queued": {"2026-12-02": 1},
        "awaiting_approval": [],
        "not_written": [],
        "confirmations": 0,
    }
