"""When a subscriber's daily message is due: their local date, and whether its time has come.

Subscribers are handled in groups that share a time-zone setting and a send time (a few
hundred groups, however many subscribers), so every decision here is made once per
group, in Python with ``zoneinfo``, and the database only selects members by group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Q

from delivery.quiet_hours import default_window, next_send_time, zones_for


@dataclass(frozen=True, slots=True)
class SubscriberGroup:
    """Subscribers with the same ``timezone``, number zones and send time."""

    timezone: str
    number_timezones: tuple[str, ...]
    send_time: time | None  # None: the default DAILY_MESSAGE_SEND_TIME

    @classmethod
    def of(
        cls, timezone: str, number_timezones: Iterable[str] | None, send_time: time | None
    ) -> SubscriberGroup:
        return cls(timezone, tuple(number_timezones or ()), send_time)

    def members_filter(self) -> Q:
        """The members of this group, as a filter on Member."""
        send_time = (
            Q(daily_send_time=self.send_time)
            if self.send_time is not None
            else Q(daily_send_time__isnull=True)
        )
        return Q(timezone=self.timezone, number_timezones=list(self.number_timezones)) & send_time


def default_send_time() -> time:
    return time.fromisoformat(settings.DAILY_MESSAGE_SEND_TIME)


def delivery_zone(group: SubscriberGroup, now: datetime) -> ZoneInfo:
    """The zone whose clock the group's send time is read on.

    The member's own zone when set. A number can map to several zones (an Australian
    mobile maps to all of Australia's): then the one whose clock is furthest behind now,
    so that the message is never early anywhere the member may be. Without any valid
    zone, the organisation's.
    """
    candidates = [group.timezone] if group.timezone else list(group.number_timezones)
    zones = [zone for name in candidates if (zone := _zone(name)) is not None]
    if not zones:
        return ZoneInfo(settings.TIME_ZONE)
    return min(zones, key=lambda zone: (now.astimezone(zone).replace(tzinfo=None), zone.key))


def due_day(group: SubscriberGroup, now: datetime) -> date | None:
    """The local date whose message the group should get at ``now``, or None.

    Due from the send time on that local date until DAILY_MESSAGE_LATEST_DELAY_HOURS
    later (a service down all morning sends nothing at night). A send time that does not
    exist on a spring-forward day is read with the offset before the change (02:30 is
    03:30); one that happens twice on a fall-back day is due at its first occurrence.
    """
    zone = delivery_zone(group, now)
    local_now = now.astimezone(zone)
    send_time = group.send_time or default_send_time()
    latest_delay = timedelta(hours=settings.DAILY_MESSAGE_LATEST_DELAY_HOURS)
    # The late window can reach past midnight: yesterday's message may still be due.
    for day in (local_now.date(), local_now.date() - timedelta(days=1)):
        send_at = datetime.combine(day, send_time, tzinfo=zone)
        if send_at <= now < send_at + latest_delay:
            return day
    return None


def in_polite_hours(group: SubscriberGroup, now: datetime) -> bool:
    """Whether ``now`` is inside the default sending window (QUIET_HOURS_WINDOW) in the
    group's zone: a confirmation to someone staff subscribed waits for the morning."""
    zones = zones_for(group.timezone, group.number_timezones)
    return next_send_time(now, zones, *default_window()) is None


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
