"""When a subscriber group's daily message is due, in its own zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from positivity.due import SubscriberGroup, delivery_zone, due_day, in_polite_hours

EIGHT = time(8, 0)


def group(zone: str = "", *, numbers: tuple[str, ...] = (), at: time | None = None):
    return SubscriberGroup(zone, numbers, at)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    "zone", ["Pacific/Auckland", "Asia/Tokyo", "Europe/London", "America/Los_Angeles"]
)
def test_the_message_is_due_from_the_local_send_time_on_the_local_date(zone):
    subscribers = group(zone)

    assert due_day(subscribers, local(zone, 2026, 12, 2, 7, 59)) is None
    assert due_day(subscribers, local(zone, 2026, 12, 2, 8, 0)) == date(2026, 12, 2)
    assert due_day(subscribers, local(zone, 2026, 12, 2, 13, 59)) == date(2026, 12, 2)


def test_one_instant_is_a_different_local_date_in_zones_far_apart():
    now = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)  # Auckland 09:30 on the 2nd

    assert due_day(group("Pacific/Auckland"), now) == date(2026, 12, 2)
    assert due_day(group("Europe/London"), now) is None
    assert due_day(group("America/Los_Angeles", at=time(12, 0)), now) == date(2026, 12, 1)


def test_nothing_is_due_once_the_latest_delay_has_passed(settings):
    settings.DAILY_MESSAGE_LATEST_DELAY_HOURS = 6

    assert due_day(group("Europe/London"), local("Europe/London", 2026, 12, 2, 14, 0)) is None


def test_a_late_evening_time_stays_due_past_midnight(settings):
    settings.DAILY_MESSAGE_LATEST_DELAY_HOURS = 6
    night_owls = group("Europe/London", at=time(23, 0))

    assert due_day(night_owls, local("Europe/London", 2026, 12, 3, 1, 0)) == date(2026, 12, 2)


def test_each_group_s_own_send_time_wins_over_the_default(settings):
    settings.DAILY_MESSAGE_SEND_TIME = "08:00"
    early_birds = group("Europe/London", at=time(6, 15))

    assert due_day(early_birds, local("Europe/London", 2026, 12, 2, 6, 15)) == date(2026, 12, 2)
    assert due_day(group("Europe/London"), local("Europe/London", 2026, 12, 2, 6, 15)) is None


def test_the_send_time_is_local_clock_time_on_both_sides_of_a_dst_change():
    subscribers = group("America/New_York")

    # 08:00 EST (UTC-5) before the change, 08:00 EDT (UTC-4) after it.
    assert due_day(subscribers, datetime(2026, 3, 7, 13, 0, tzinfo=UTC)) == date(2026, 3, 7)
    assert due_day(subscribers, datetime(2026, 3, 8, 11, 59, tzinfo=UTC)) is None
    assert due_day(subscribers, datetime(2026, 3, 8, 12, 0, tzinfo=UTC)) == date(2026, 3, 8)
    assert due_day(subscribers, datetime(2026, 11, 1, 12, 59, tzinfo=UTC)) is None
    assert due_day(subscribers, datetime(2026, 11, 1, 13, 0, tzinfo=UTC)) == date(2026, 11, 1)


def test_a_send_time_skipped_by_spring_forward_is_due_right_after_the_jump():
    subscribers = group("America/New_York", at=time(2, 30))

    # 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC): 02:30 never happens.
    assert due_day(subscribers, datetime(2026, 3, 8, 6, 59, tzinfo=UTC)) is None
    assert due_day(subscribers, datetime(2026, 3, 8, 7, 30, tzinfo=UTC)) == date(2026, 3, 8)


def test_a_send_time_repeated_by_fall_back_is_due_at_its_first_occurrence():
    subscribers = group("America/New_York", at=time(1, 30))

    # 2026-11-01 01:30 EDT is 05:30 UTC; 01:30 EST (06:30 UTC) is the same local date.
    assert due_day(subscribers, datetime(2026, 11, 1, 5, 29, tzinfo=UTC)) is None
    assert due_day(subscribers, datetime(2026, 11, 1, 5, 30, tzinfo=UTC)) == date(2026, 11, 1)
    assert due_day(subscribers, datetime(2026, 11, 1, 6, 30, tzinfo=UTC)) == date(2026, 11, 1)


def test_a_number_spanning_zones_is_read_on_the_clock_furthest_behind():
    australia = ("Australia/Perth", "Australia/Sydney", "Australia/Adelaide")
    now = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # Sydney 09:00, Adelaide 08:30, Perth 06:00

    assert delivery_zone(group(numbers=australia), now).key == "Australia/Perth"
    assert due_day(group(numbers=australia), now) is None
    assert due_day(group("Australia/Sydney", numbers=australia), now) == date(2026, 12, 2)


def test_without_a_valid_zone_the_organisation_s_is_used(settings):
    settings.TIME_ZONE = "Europe/Paris"
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    assert delivery_zone(group(), now).key == "Europe/Paris"
    assert delivery_zone(group("Mars/Olympus_Mons"), now).key == "Europe/Paris"


def test_polite_hours_follow_the_default_quiet_hours_window(settings):
    settings.QUIET_HOURS_WINDOW = "09:00-20:00"
    london = group("Europe/London")

    assert not in_polite_hours(london, local("Europe/London", 2026, 12, 2, 8, 59))
    assert in_polite_hours(london, local("Europe/London", 2026, 12, 2, 9, 0))
    assert not in_polite_hours(london, local("Europe/London", 2026, 12, 2, 20, 0))
