"""Fan-out: the audience becomes one rendered message per eligible phone, once."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from campaigns import fanout
from campaigns.fanout import fan_out
from campaigns.tests.factories import CampaignFactory
from delivery.models import Batch, Message
from delivery.segments import analyze
from members.tests.factories import (
    EventRegistrationFactory,
    MemberFactory,
    OptOutFactory,
    SuppressionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["sql", "chunks"])
def writer(request, monkeypatch):
    """Both fan-outs, on PostgreSQL: the SQLite demo's must behave the same."""
    if request.param == "chunks":
        monkeypatch.setattr(fanout.connection, "vendor", "sqlite", raising=False)
    return request.param


def new_batch(campaign):
    return Batch.objects.create(kind=Batch.Kind.CAMPAIGN, label="test", sender=campaign.sender)


def test_every_eligible_member_gets_one_rendered_message(writer):
    ada = MemberFactory(first_name="Ada", fields={"garden": "North plot"})
    nameless = MemberFactory(first_name="", fields={})
    stopped = MemberFactory()
    OptOutFactory(phone=stopped.phone)
    blocked = MemberFactory()
    SuppressionFactory(phone=blocked.phone)
    MemberFactory(is_community=False)
    campaign = CampaignFactory(body="Hi {first_name|friend}, see you at {garden|the garden}.")
    batch = new_batch(campaign)

    assert fan_out(campaign=campaign, batch=batch) == 2

    bodies = dict(Message.objects.values_list("phone", "body"))
    assert bodies == {
        ada.phone: "Hi Ada, see you at North plot.",
        nameless.phone: "Hi friend, see you at the garden.",
    }
    message = Message.objects.get(phone=ada.phone)
    assert (message.kind, message.sender, message.status) == ("campaign", batch.sender, "pending")
    assert (message.encoding, message.segments) == ("GSM-7", 1)


def test_a_repeated_fan_out_adds_nothing(writer):
    MemberFactory.create_batch(3)
    campaign = CampaignFactory()
    batch = new_batch(campaign)
    assert fan_out(campaign=campaign, batch=batch) == 3
    assert fan_out(campaign=campaign, batch=batch) == 0
    assert Message.objects.count() == 3


def test_the_fan_out_leaves_the_planner_as_it_found_it():
    """It turns index scans off for its INSERT alone; the launch's transaction goes on
    with the usual plans."""
    MemberFactory.create_batch(2)
    campaign = CampaignFactory()
    with transaction.atomic(), connection.cursor() as cursor:
        assert fan_out(campaign=campaign, batch=new_batch(campaign)) == 2
        cursor.execute("SHOW enable_indexscan")
        assert cursor.fetchone() == ("on",)


def test_an_event_campaign_reaches_only_its_registrants(writer):
    registration = EventRegistrationFactory(member=MemberFactory(is_community=False))
    MemberFactory()  # community, not registered
    campaign = CampaignFactory(audience="event", event=registration.event)
    assert fan_out(campaign=campaign, batch=new_batch(campaign)) == 1
    assert list(Message.objects.values_list("phone", flat=True)) == [registration.member.phone]


@pytest.mark.parametrize(
    "body",
    [
        "x" * 160,
        "x" * 161,
        "€" * 80,
        "€" * 81,
        "x" * 152 + "€" + "x" * 10,  # the € would straddle the first part's end
        "ü\u2019" + "x" * 68,
        "😀" * 35,
        "x" * 66 + "😀" + "x" * 10,  # the emoji would straddle the first part's end
        "",
    ],
    ids=[
        "gsm160",
        "gsm161",
        "euro80",
        "euro81",
        "euro-straddle",
        "ucs2",
        "emoji",
        "emoji-straddle",
        "empty",
    ],
)
def test_encoding_and_segments_match_the_segment_counter_exactly(writer, body):
    MemberFactory()
    campaign = CampaignFactory(body=body.replace("{", "{{").replace("}", "}}"))
    fan_out(campaign=campaign, batch=new_batch(campaign))
    message = Message.objects.get()
    expected = analyze(body)
    assert (message.body, message.encoding, message.segments) == (
        body,
        expected.encoding,
        expected.segments,
    )


@pytest.mark.parametrize("respect_quiet_hours", [True, False])
def test_quiet_hours_hold_each_recipient_until_their_own_morning(writer, respect_quiet_hours):
    from datetime import UTC, datetime

    import time_machine

    # 20:00 UTC: noon in Los Angeles, 01:30 in Kolkata, 09:00 in Auckland.
    with time_machine.travel(datetime(2026, 11, 20, 20, 0, tzinfo=UTC), tick=False):
        la = MemberFactory(number_timezones=["America/Los_Angeles"])
        kolkata = MemberFactory(number_timezones=["Asia/Kolkata"])
        auckland = MemberFactory(timezone="Pacific/Auckland", number_timezones=["Asia/Kolkata"])
        campaign = CampaignFactory(respect_quiet_hours=respect_quiet_hours)
        window = campaign.sending_window()
        batch = new_batch(campaign)
        if window:
            batch.quiet_hours_start, batch.quiet_hours_end = window
            batch.save()
        fan_out(campaign=campaign, batch=batch)

    send_after = dict(Message.objects.values_list("phone", "send_after"))
    assert send_after[la.phone] is None
    assert send_after[auckland.phone] is None  # the member's own zone wins over the number's
    zones = dict(Message.objects.values_list("phone", "recipient_timezones"))
    if respect_quiet_hours:
        assert send_after[kolkata.phone] == datetime(2026, 11, 21, 3, 30, tzinfo=UTC)  # 09:00 IST
        assert zones[auckland.phone] == ["Pacific/Auckland"]  # kept for checks at send time
        assert zones[la.phone] == ["America/Los_Angeles"]
    else:
        assert send_after[kolkata.phone] is None
        assert set(zones.values()) == {None}


def test_a_campaign_window_overrides_the_default(writer):
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2026, 11, 20, 17, 0, tzinfo=UTC), tick=False):  # 09:00 LA
        la = MemberFactory(number_timezones=["America/Los_Angeles"])
        campaign = CampaignFactory(quiet_hours_window="10:00-18:00")
        fan_out(campaign=campaign, batch=new_batch(campaign))
    assert Message.objects.get(phone=la.phone).send_after == datetime(
        2026, 11, 20, 18, 0, tzinfo=UTC
    )
