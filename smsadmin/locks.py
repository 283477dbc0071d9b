"""A lock so that a periodic job never runs twice at once (two beats, a slow run)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from django.conf import settings

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def held(name: str, *, timeout: float) -> Iterator[bool]:
    """Yield True when this process holds the lock ``name``, False when another does.

    The lock expires after ``timeout`` seconds, so a crashed holder never blocks forever.
    Without Redis (the demo on the filesystem broker) there is one beat, and no lock.
    """
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        yield True
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    lock = client.lock(f"smsadmin:lock:{name}", timeout=timeout, blocking=False)
    acquired = bool(lock.acquire(blocking=False))
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except redis.exceptions.LockError:
                logger.warning("Lock %s expired before its job finished", name)
        client.close()


def one_at_a_time(name: str, *, timeout: float) -> Callable[[F], F]:
    """Skip a run of the decorated job while another run holds its lock."""

    def decorate(job: F) -> F:
        @functools.wraps(job)
        def run(*args: Any, **kwargs: Any) -> Any:
            with held(name, timeout=timeout) as acquired:
                if not acquired:
                    logger.info("Skipped %s: another run is in progress", name)
                    return {"skipped": True}
                return job(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate
