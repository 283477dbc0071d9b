"""Heartbeats: how /health (and /metrics) know a Celery worker and beat are alive.

A worker writes its own heartbeat from a thread started on Celery's ``worker_ready``
signal, so a live worker shows as alive even when beat is dead. Beat's heartbeat is
written in the beat process itself, when it publishes the ``smsadmin.heartbeat`` task
(``before_task_publish``): a tick shows without a worker having to run anything.

Both live in Redis (``REDIS_URL``), as Unix timestamps: the workers in one sorted set
(hostname → last beat), so reading the freshest is one command whatever the keyspace.
Without Redis (the demo on the filesystem broker) there is nowhere to write them: the
ages read None and /health skips those checks.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

WORKER_HEARTBEATS_KEY = "smsadmin:heartbeat:workers"
BEAT_HEARTBEAT_KEY = "smsadmin:heartbeat:beat"
BEAT_HEARTBEAT_TASK = "smsadmin.heartbeat"
# Heartbeats older than this are dropped from the set (workers that went for good).
_FORGET_AFTER_SECONDS = 24 * 60 * 60
# Short: a heartbeat must never hold up a worker, a beat tick or a health request.
_REDIS_TIMEOUT_SECONDS = 0.5

# The running writer's way to stop (one per worker process).
_writer_stop: threading.Event | None = None


def heartbeats_are_stored() -> bool:
    """False on the filesystem broker (the demo), where there is no Redis to hold them."""
    return not settings.CELERY_BROKER_URL.startswith("filesystem://")


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
    )


def record_worker_heartbeat(hostname: str, *, at: float | None = None) -> None:
    """Write that the worker ``hostname`` is alive (now, or ``at``, a Unix time)."""
    at = time.time() if at is None else at
    client = _client()
    try:
        pipeline = client.pipeline()
        pipeline.zadd(WORKER_HEARTBEATS_KEY, {hostname: at})
        pipeline.zremrangebyscore(WORKER_HEARTBEATS_KEY, "-inf", at - _FORGET_AFTER_SECONDS)
        pipeline.execute()
    finally:
        client.close()


def record_beat_heartbeat(*, at: float | None = None) -> None:
    """Write that beat ticked (now, or ``at``, a Unix time)."""
    at = time.time() if at is None else at
    client = _client()
    try:
        client.set(BEAT_HEARTBEAT_KEY, repr(at), ex=_FORGET_AFTER_SECONDS)
    finally:
        client.close()


def worker_heartbeats() -> dict[str, float]:
    """Seconds since each known worker's last heartbeat, by hostname."""
    if not heartbeats_are_stored():
        return {}
    client = _client()
    try:
        entries = client.zrange(WORKER_HEARTBEATS_KEY, 0, -1, withscores=True)
    finally:
        client.close()
    now = time.time()
    return {name.decode(): max(0.0, now - score) for name, score in entries}


def worker_heartbeat_age() -> float | None:
    """Seconds since the freshest worker heartbeat; None when there is none.

    Raises ``redis.RedisError`` when Redis does not answer.
    """
    if not heartbeats_are_stored():
        return None
    client = _client()
    try:
        freshest = client.zrevrange(WORKER_HEARTBEATS_KEY, 0, 0, withscores=True)
    finally:
        client.close()
    if not freshest:
        return None
    return max(0.0, time.time() - freshest[0][1])


def beat_heartbeat_age() -> float | None:
    """Seconds since beat last ticked; None when it never did (or long ago).

    Raises ``redis.RedisError`` when Redis does not answer.
    """
    if not heartbeats_are_stored():
        return None
    client = _client()
    try:
        value = client.get(BEAT_HEARTBEAT_KEY)
    finally:
        client.close()
    if value is None:
        return None
    return max(0.0, time.time() - float(value))


# --- Writers, hooked to Celery's signals in smsadmin/celery.py ------------------------


def _write_worker_heartbeats(hostname: str, interval: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            record_worker_heartbeat(hostname)
        except redis.RedisError as error:
            # Redis down: /health says so; the next beat after it returns puts us back.
            logger.warning("Could not write the worker heartbeat: %s", error)
        stop.wait(interval)


def start_worker_heartbeat(sender: Any = None, **_: Any) -> None:
    """``worker_ready`` handler: refresh this worker's heartbeat in a daemon thread."""
    global _writer_stop
    if not heartbeats_are_stored() or _writer_stop is not None:
        return
    hostname = getattr(sender, "hostname", None) or "unknown"
    _writer_stop = threading.Event()
    threading.Thread(
        target=_write_worker_heartbeats,
        args=(hostname, settings.HEALTH_HEARTBEAT_INTERVAL_SECONDS, _writer_stop),
        name="smsadmin-heartbeat",
        daemon=True,
    ).start()


def stop_worker_heartbeat(**_: Any) -> None:
    """``worker_shutdown`` handler."""
    global _writer_stop
    if _writer_stop is not None:
        _writer_stop.set()
        _writer_stop = None


def record_beat_tick(sender: str | None = None, **_: Any) -> None:
    """``before_task_publish`` handler: beat publishing its heartbeat task is a tick."""
    if sender != BEAT_HEARTBEAT_TASK or not heartbeats_are_stored():
        return
    try:
        record_beat_heartbeat()
    except redis.RedisError as error:
        logger.warning("Could not write the beat heartbeat: %s", error)
