"""Quiet hours: texts go out only inside a daily window of the recipient's local time.

A recipient may have several zones (a number that spans a country): a text may go only
when it is inside the window in every one of them, the strictest reading. A text due
outside the window waits for the next opening; it is never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

# How far ahead to look for a moment when every zone is inside its window.
_HORIZON_DAYS = 3


def parse_window(text: str) -> tuple[time, time]:
    """``"09:00-20:00"`` → (09:00, 20:00); the window may not wrap past midnight."""
    try:
        start_text, end_text = text.split("-")
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError as error:
        raise ValueError(f"A quiet-hours window looks like 09:00-20:00, not {text!r}.") from error
    if start >= end:
        raise ValueError(f"The window {text!r} must open before it closes, on the same day.")
    return start, end


def default_window() -> tuple[time, time]:
    return parse_window(settings.QUIET_HOURS_WINDOW)


def zones_for(timezone_name: str, number_timezones: Iterable[str]) -> tuple[str, ...]:
    """The zones a recipient is checked in: their own, else their number's, else ours."""
    if timezone_name:
        return (timezone_name,)
    return tuple(number_timezones) or (settings.TIME_ZONE,)


def next_send_time(now: datetime, zones: Sequence[str], start: time, end: time) -> datetime | None:
    """None when a text may go now; else the next moment it may (in UTC)."""
    intervals = _allowed_intervals(tuple(sorted(set(zones))), start, end, now.date())
    for opens, closes in intervals:
        if closes <= now:
            continue
        return None if opens <= now else opens
    return None


@lru_cache(maxsize=4096)
def _allowed_intervals(
    zones: tuple[str, ...], start: time, end: time, around: date
) -> tuple[tuple[datetime, datetime], ...]:
    common: list[tuple[datetime, datetime]] | None = None
    for zone_name in zones:
        zone = _zone(zone_name)
        if zone is None:
            continue
        intervals = [
            (
                datetime.combine(day, start, tzinfo=zone).astimezone(UTC),
                datetime.combine(day, end, tzinfo=zone).astimezone(UTC),
            )
            for day in (around + timedelta(days=offset) for offset in range(-1, _HORIZON_DAYS))
        ]
        common = intervals if common is None else _intersect(common, intervals)
    if not common and zones != (settings.TIME_ZONE,):
        # No zone we know, or zones so far apart that their windows never meet: keep
        # the organisation's own hours rather than texting at night somewhere.
        return _allowed_intervals((settings.TIME_ZONE,), start, end, around)
    return tuple(common or ())


def _intersect(
    first: list[tuple[datetime, datetime]], second: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    overlaps = []
    for opens_a, closes_a in first:
        for opens_b, closes_b in second:
            opens, closes = max(opens_a, opens_b), min(closes_a, closes_b)
            if opens < closes:
                overlaps.append((opens, closes))
    return sorted(overlaps)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
