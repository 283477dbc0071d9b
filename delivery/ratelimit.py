"""Segments per second per sender, shared by every worker through Redis.

A sliding-window log: the last window's sends live in a sorted set, one entry per
segment, scored by Redis' own clock. A send goes when the window has room for all its
segments; otherwise Redis answers how long until enough old entries leave. So no window
of one second ever holds more than the limit, and under load the rate is the limit.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from django.conf import settings

# Sends seen by the provider a moment later than we let them go could otherwise bunch up
# across a window's edge; a few milliseconds of guard keep every window within the limit.
_GUARD_MICROSECONDS = 5_000

_ACQUIRE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), limit)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost <= limit then
    for i = 1, cost do
        redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
    end
    redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
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
                        keys=[f"{self._key_prefix}:{sender}"],
                        args=[limit, window, max(1, segments), token],
                    )
                )
                if wait <= 0:
                    return
                self.waits += 1
                await asyncio.sleep(wait / 1_000_000)

    async def aclose(self) -> None:
        await self._redis.aclose()


class LocalRateLimiter:
    """The same rule inside one process, for the demo when no Redis answers."""

    def __init__(self) -> None:
        self._sent: dict[str, list[tuple[float, int]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.waits = 0

    async def acquire(self, sender: str, segments: int) -> None:
        limit, window_us = window_for(rate_for(sender))
        window = window_us / 1_000_000
        cost = min(max(1, segments), limit)
        loop = asyncio.get_running_loop()
        async with self._locks.setdefault(sender, asyncio.Lock()):
            sent = self._sent.setdefault(sender, [])
            while True:
                now = loop.time()
                sent[:] = [(at, n) for at, n in sent if at > now - window]
                used = sum(n for _, n in sent)
                if used + cost <= limit:
                    sent.append((now, cost))
                    return
                self.waits += 1
                await asyncio.sleep(max(0.001, sent[0][0] + window - now))

    async def aclose(self) -> None:
        return None


def create_rate_limiter() -> RateLimiter | LocalRateLimiter:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return LocalRateLimiter()
    return RateLimiter(settings.REDIS_URL)
