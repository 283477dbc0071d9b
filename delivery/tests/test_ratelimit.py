"""The shared rate limit: no one-second window over the limit, segments counted."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.conf import settings

from delivery.ratelimit import LocalRateLimiter, RateLimiter

# The limit holds on Redis' clock when it grants; seen here, each grant is a little late
# by its own round trip and wake-up (tens of ms on a loaded machine), so a second as this
# process sees it is shortened by that much.
OBSERVATION_JITTER = 0.1
SECOND_SEEN = 1.0 - OBSERVATION_JITTER


def busiest_window(events: list[tuple[float, int]], window: float = SECOND_SEEN) -> int:
    """Most segments sent in any half-open window of ``window`` seconds (by default a
    second as this process sees it)."""
    events = sorted(events)
    best = 0
    for index, (start, _) in enumerate(events):
        best = max(best, sum(n for at, n in events[index:] if at < start + window))
    return best


async def send_through(limiters, sender, messages: list[int]) -> list[tuple[float, int]]:
    loop = asyncio.get_running_loop()
    sent: list[tuple[float, int]] = []

    async def one(limiter, segments):
        await limiter.acquire(sender, segments)
        sent.append((loop.time(), segments))

    await asyncio.gather(
        *(one(limiters[index % len(limiters)], n) for index, n in enumerate(messages))
    )
    return sent


def run_redis_limiters(count, sender, messages):
    async def main():
        limiters = [RateLimiter(settings.REDIS_URL) for _ in range(count)]
        try:
            return await send_through(limiters, sender, messages)
        finally:
            for limiter in limiters:
                await limiter.aclose()

    return asyncio.run(main())


@pytest.fixture
def sender(settings):
    settings.SMS_SENDER_RATE_LIMITS = {}
    settings.SMS_RATE_LIMIT_PER_SECOND = 5
    return f"+1500555{uuid.uuid4().int % 10_000:04d}"


def test_two_workers_share_one_limit(sender):
    sent = run_redis_limiters(2, sender, [1] * 12)
    assert len(sent) == 12
    assert busiest_window(sent) <= 5


def test_segments_count_against_the_limit(sender):
    sent = run_redis_limiters(1, sender, [2] * 6)
    assert busiest_window(sent) <= 5
    assert max(n for _, n in sent) == 2


def test_a_per_sender_rate_overrides_the_default(sender, settings):
    settings.SMS_SENDER_RATE_LIMITS = {sender: 3}
    sent = run_redis_limiters(1, sender, [1] * 7)
    assert busiest_window(sent) <= 3


def test_a_message_longer_than_the_limit_still_goes_alone(sender, settings):
    settings.SMS_SENDER_RATE_LIMITS = {sender: 2}
    sent = run_redis_limiters(1, sender, [4, 1])
    assert len(sent) == 2


def test_the_local_limiter_keeps_the_same_rule(sender):
    async def main():
        return await send_through([LocalRateLimiter()], sender, [1] * 8)

    assert busiest_window(asyncio.run(main())) <= 5


def test_two_workers_send_evenly_spaced_not_in_bursts(sender):
    # At 5 a second the grants are ~0.2 s apart: half a second holds 3 at most, where a
    # plain window log would let all 5 of the first second go at once.
    sent = run_redis_limiters(2, sender, [1] * 8)
    assert len(sent) == 8
    assert busiest_window(sent, window=0.5) <= 3
    assert busiest_window(sent) <= 5


def test_a_two_segment_message_holds_two_places_in_the_spacing(sender):
    sent = run_redis_limiters(1, sender, [2, 1, 1])
    times = sorted(at for at, _ in sent)
    # After the 2-segment message the next grant waits two spacings (~0.4 s), not one.
    assert times[1] - times[0] >= 0.3
    assert busiest_window(sent) <= 5


def test_the_local_limiter_spaces_its_sends_too(sender):
    async def main():
        return await send_through([LocalRateLimiter()], sender, [1] * 6)

    sent = asyncio.run(main())
    assert busiest_window(sent, window=0.5) <= 3
