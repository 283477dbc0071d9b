"""Segments per second per sender, shared by every worker through Redis.

Two rules, checked together in one Redis script on Redis' own clock:

- a sliding-window log: the last window's sends live in a sorted set, one entry per
  segment, and a send goes only when the window has room for all its segments, so no
  window ever holds more than the limit;
- even spacing: grants follow each other at least ``window / limit`` per segment
  apart. Without it, a busy sender lets a whole window's worth go at once and again
  one window later; the requests of each burst reach the provider spread over tens of
  milliseconds (each costs the SDK CPU time), so a second measured *there* could hold
  the end of one burst and the start of the next. Spaced grants reach it as spaced.

A grant that comes late (its waiter woke late, or the log made it wait) may be followed
by the next one up to a spacing early, so the schedule does not slip: under load the
rate is the limit less the guard below, and the log still bounds every window. After a
window without sends the schedule starts afresh.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from django.conf import settings

from smsadmin.metrics import recording as metrics

# Sends reach the provider a few milliseconds after we let them go, some later than
# others; a window this much longer than a second keeps every second the provider sees
# within the limit, at the cost of 1 % of the rate.
_GUARD_MICROSECONDS = 10_000

_ACQUIRE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), limit)
local spacing = math.floor(window / limit)
local next_at = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < next_at then
    return next_at - now
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost <= limit then
    for i = 1, cost do
        redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
    end
    local keep = math.ceil(window / 1000) + 1000
    redis.call('PEXPIRE', KEYS[1], keep)
    local base = now
    if now - next_at < window then
        base = math.max(next_at, now - spacing)
    end
    redis.call('SET', KEYS[2], base + cost * spacing, 'PX', keep)
    return 0
end
local index = used + cost - limit - 1
local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now + 1)
"""


def rate_for(sender: str) -> float:
    return settings.SMS_SENDER_RATE_LIMITS.get(sender, settings.SMS_RATE_LIMIT_PER_SECOND)


def window_for(rate: float) -> tuple[int, int]:
    """(segments allowed, window in microseconds) for a rate in segments per second."""
    seconds = max(1.0, 1.0 / rate)
    return max(1, round(rate * seconds)), int(seconds * 1_000_000) + _GUARD_MICROSECONDS


class RateLimiter:
    """Waits until a sender may send ``segments`` more. One per event loop."""

    def __init__(self, redis_url: str, *, key_prefix: str = "smsadmin:rate") -> None:
        self._redis = aioredis.Redis.from_url(redis_url)
        self._script = self._redis.register_script(_ACQUIRE)
        self._key_prefix = key_prefix
        # In one process, one coroutine at a time asks Redis for a sender: the others
        # queue here instead of all polling Redis when the window frees up.
        self._locks: dict[str, asyncio.Lock] = {}
        self.waits = 0  # times a send had to wait for the window (for metrics)

    async def acquire(self, sender: str, segments: int) -> None:
        limit, window = window_for(rate_for(sender))
        lock = self._locks.setdefault(sender, asyncio.Lock())
        token = uuid.uuid4().hex
        async with lock:
            while True:
                wait = int(
                    await self._script(
                        keys=[f"{self._key_prefix}:{sender}", f"{self._key_prefix}:next:{sender}"],
                        args=[limit, window, max(1, segments), token],
                    )
                )
                if wait <= 0:
                    return
                self.waits += 1
                metrics.count_rate_limit_wait(sender)
                await asyncio.sleep(wait / 1_000_000)

    async def aclose(self) -> None:
        await self._redis.aclose()


class LocalRateLimiter:
    """The same rules inside one process, for the demo when no Redis answers."""

    def __init__(self) -> None:
        self._sent: dict[str, list[tuple[float, int]]] = {}
        self._next_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.waits = 0

    async def acquire(self, sender: str, segments: int) -> None:
        limit, window_us = window_for(rate_for(sender))
        window = window_us / 1_000_000
        spacing = window / limit
        cost = min(max(1, segments), limit)
        loop = asyncio.get_running_loop()
        async with self._locks.setdefault(sender, asyncio.Lock()):
            sent = self._sent.setdefault(sender, [])
            while True:
                now = loop.time()
                next_at = self._next_at.get(sender, 0.0)
                sent[:] = [(at, n) for at, n in sent if at > now - window]
                used = sum(n for _, n in sent)
                if now >= next_at and used + cost <= limit:
                    sent.append((now, cost))
                    base = max(next_at, now - spacing) if now - next_at < window else now
                    self._next_at[sender] = base + cost * spacing
                    return
                self.waits += 1
                metrics.count_rate_limit_wait(sender)
                free_at = sent[0][0] + window if used + cost > limit else now
                await asyncio.sleep(max(0.0005, next_at - now, free_at - now))

    async def aclose(self) -> None:
        return None


def create_rate_limiter() -> RateLimiter | LocalRateLimiter:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return LocalRateLimiter()
    return RateLimiter(settings.REDIS_URL)
