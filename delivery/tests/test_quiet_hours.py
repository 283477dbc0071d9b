"""Quiet hours in each recipient's local time, across zones far apart and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from delivery.quiet_hours import next_send_time, parse_window, zones_for

NINE, EIGHT_PM = time(9), time(20)


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "local_now", "expected_local_opening"),
    [
        ("America/Los_Angeles", (2026, 11, 20, 3, 0), (2026, 11, 20, 9, 0)),
        ("America/Los_Angeles", (2026, 11, 20, 21, 30), (2026, 11, 21, 9, 0)),
        ("Pacific/Auckland", (2026, 11, 20, 6, 59), (2026, 11, 20, 9, 0)),
        ("Asia/Kolkata", (2026, 11, 20, 20, 0), (2026, 11, 21, 9, 0)),  # closes at 20:00
        ("Europe/London", (2026, 11, 20, 0, 15), (2026, 11, 20, 9, 0)),
    ],
)
def test_a_text_due_outside_the_window_waits_for_the_next_opening(
    zone, local_now, expected_local_opening
):
    now = at(zone, *local_now)
    assert next_send_time(now, [zone], NINE, EIGHT_PM) == at(zone, *expected_local_opening)


@pytest.mark.parametrize(
    ("zone", "local_now"),
    [
        ("America/Los_Angeles", (2026, 11, 20, 9, 0)),
        ("Pacific/Auckland", (2026, 11, 20, 19, 59)),
        ("Asia/Kolkata", (2026, 11, 20, 12, 30)),
        ("Europe/London", (2026, 11, 20, 15, 0)),
    ],
)
def test_a_text_due_inside_the_window_goes_now(zone, local_now):
    assert next_send_time(at(zone, *local_now), [zone], NINE, EIGHT_PM) is None


def test_the_same_moment_is_day_in_one_zone_and_night_in_another():
    now = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # 09:00 in Auckland, 12:00 in LA
    assert next_send_time(now, ["Pacific/Auckland"], NINE, EIGHT_PM) is None
    assert next_send_time(now, ["America/Los_Angeles"], NINE, EIGHT_PM) is None
    assert next_send_time(now, ["Asia/Kolkata"], NINE, EIGHT_PM) == at(
        "Asia/Kolkata", 2026, 11, 21, 9, 0
    )


def test_spring_forward_opens_at_nine_local_in_the_new_offset():
    # Los Angeles moves to PDT at 02:00 on 8 March 2026.
    now = at("America/Los_Angeles", 2026, 3, 7, 22, 0)
    opening = next_send_time(now, ["America/Los_Angeles"], NINE, EIGHT_PM)
    assert opening == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # 09:00 PDT, not PST


def test_fall_back_opens_at_nine_local_in_the_new_offset():
    # London returns to GMT at 02:00 on 25 October 2026.
    now = at("Europe/London", 2026, 10, 24, 23, 0)
    opening = next_send_time(now, ["Europe/London"], NINE, EIGHT_PM)
    assert opening == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)


def test_auckland_daylight_saving_start():
    # Auckland moves to NZDT (UTC+13) at 02:00 on 27 September 2026.
    now = at("Pacific/Auckland", 2026, 9, 27, 1, 0)
    opening = next_send_time(now, ["Pacific/Auckland"], NINE, EIGHT_PM)
    assert opening == datetime(2026, 9, 26, 20, 0, tzinfo=UTC)  # 09:00 NZDT


def test_a_number_spanning_zones_waits_until_the_window_is_open_in_all_of_them():
    zones = ["Australia/Perth", "Australia/Sydney"]  # UTC+8 and UTC+11 in November
    # 09:30 in Sydney is 06:30 in Perth: not yet.
    now = at("Australia/Sydney", 2026, 11, 20, 9, 30)
    assert next_send_time(now, zones, NINE, EIGHT_PM) == at("Australia/Perth", 2026, 11, 20, 9, 0)
    # 19:30 in Sydney is 16:30 in Perth: open in both.
    assert (
        next_send_time(at("Australia/Sydney", 2026, 11, 20, 19, 30), zones, NINE, EIGHT_PM) is None
    )
    # 20:30 in Sydney: closed there, even though Perth is at 17:30.
    late = at("Australia/Sydney", 2026, 11, 20, 20, 30)
    assert next_send_time(late, zones, NINE, EIGHT_PM) == at("Australia/Perth", 2026, 11, 21, 9, 0)


def test_zones_with_no_common_window_fall_back_to_the_organisation_zone(settings):
    settings.TIME_ZONE = "Europe/London"
    zones = ["Pacific/Auckland", "Europe/London"]  # 13 hours apart: 9-20 never meets
    now = at("Europe/London", 2026, 11, 20, 7, 0)
    assert next_send_time(now, zones, NINE, EIGHT_PM) == at("Europe/London", 2026, 11, 20, 9, 0)


def test_recipient_zones_come_from_the_member_then_the_number_then_us(settings):
    settings.TIME_ZONE = "America/Chicago"
    assert zones_for("Europe/Paris", ["America/New_York"]) == ("Europe/Paris",)
    assert zones_for("", ["America/New_York"]) == ("America/New_York",)
    assert zones_for("", []) == ("America/Chicago",)


def test_an_unknown_zone_name_is_ignored(settings):
    settings.TIME_ZONE = "UTC"
    now = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    assert next_send_time(now, ["Not/AZone"], NINE, EIGHT_PM) == datetime(
        2026, 11, 20, 9, 0, tzinfo=UTC
    )


def test_windows_are_parsed_and_checked():
    assert parse_window("09:00-20:00") == (NINE, EIGHT_PM)
    assert parse_window(" 8:30 - 21:00 ".replace(" 8", "08")) == (time(8, 30), time(21))
    for bad in ["9-20", "20:00-09:00", "nonsense"]:
        with pytest.raises(ValueError, match="window"):
            parse_window(bad)
