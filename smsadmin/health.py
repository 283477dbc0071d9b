"""``GET /health``: is this deployment able to send texts? And ``/health/live``.

Readiness checks the database, Redis (the broker), a worker heartbeat, beat's tick and
how long due messages have waited; every check has a short timeout (a statement timeout,
socket timeouts of half a second), so the answer comes within about two seconds even
when a dependency hangs. 200 when all pass, 503 naming what failed. Liveness does no
I/O at all: it only says the process serves requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min, Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from delivery.models import Message
from delivery.selectors import oldest_pending
from smsadmin import heartbeats

REDIS_TIMEOUT_SECONDS = 0.5
# Newest rows of each status looked at for the last hour's counts: the count stays an
# index range scan of bounded size on a table of millions ("complete" says when the
# bound was reached and older rows may have been left out).
STATS_SCAN_LIMIT = 20_000
STATS_STATUSES = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.FAILED)

NOT_CHECKED_REDIS = "not checked: Redis did not answer"

# "ok" is True, False (named in "failing") or None: not checked, because what it is
# read from (the database, Redis) failed and is named instead.
Check = dict[str, Any]


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    if "live" in request.GET:
        return live(request)
    report = readiness_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def readiness_report() -> dict[str, Any]:
    checks: dict[str, Check] = {}
    database, pending_seconds, last_hour = _database_checks()
    checks["database"] = database
    checks["redis"] = _timed(_check_redis)
    if checks["redis"]["ok"] is False:
        # Unknown rather than failing: the alert must point at Redis, not at the worker.
        checks["worker"] = checks["beat"] = {"ok": None, "detail": NOT_CHECKED_REDIS}
    else:
        checks["worker"] = _timed(_check_worker)
        checks["beat"] = _timed(_check_beat)
    checks["pending"] = _pending_check(database, pending_seconds)
    failing = [name for name, check in checks.items() if check["ok"] is False]
    report: dict[str, Any] = {"status": "failing" if failing else "ok", "checks": checks}
    if failing:
        report["failing"] = failing
    report["messages_last_hour"] = last_hour
    report["oldest_pending_seconds"] = pending_seconds
    return report


def _timed(check: Callable[[], Check]) -> Check:
    started = time.perf_counter()
    try:
        result = check()
    except redis.RedisError as error:
        result = {"ok": False, "detail": f"Redis: {_reason(error)}"}
    result.setdefault("ms", round((time.perf_counter() - started) * 1000, 1))
    return result


def _reason(error: Exception) -> str:
    # The class and first line only: a DSN or a password never reaches the answer.
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}"[:200]


# --- The database, and the messages read from it --------------------------------------


def _database_checks() -> tuple[Check, float | None, dict[str, Any] | None]:
    started = time.perf_counter()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    # LOCAL: ends with this transaction, the kept connection is unchanged.
                    cursor.execute(
                        "SET LOCAL statement_timeout = %s",
                        [f"{settings.HEALTH_DATABASE_TIMEOUT_MS}ms"],
                    )
                cursor.execute("SELECT 1")
                cursor.fetchone()
            database: Check = {"ok": True, "ms": _ms_since(started)}
            pending_seconds = oldest_pending_seconds()
            last_hour = messages_last_hour()
    except DatabaseError as error:
        failed: Check = {"ok": False, "ms": _ms_since(started), "detail": _reason(error)}
        return failed, None, None
    return database, pending_seconds, last_hour


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def oldest_pending_seconds() -> float | None:
    """Seconds the longest-waiting due message has waited (since it was created, or
    since its ``send_after``); None when nothing is due.

    The first due row by id (``delivery.selectors.oldest_pending``): a handful of index
    entries however big the table is.
    """
    now = timezone.now()
    oldest = oldest_pending(limit=1, due_by=now)
    if not oldest:
        return None
    _id, created_at, send_after = oldest[0]
    due_since = max(created_at, send_after) if send_after else created_at
    return round(max(0.0, (now - due_since).total_seconds()), 1)


def messages_last_hour() -> dict[str, Any]:
    """Messages that became sent, delivered or failed in the last hour, by status.

    Counted among the newest ``STATS_SCAN_LIMIT`` rows of each status (an index range
    scan, about 20 ms a status on a table of a million rows): ``complete`` is False when
    even the oldest of those changed within the hour, so more may lie beyond them.
    """
    since = timezone.now() - timedelta(hours=1)
    counts: dict[str, Any] = {}
    complete = True
    for status in STATS_STATUSES:
        newest = Message.objects.filter(status=status).order_by("-id")[:STATS_SCAN_LIMIT]
        result = newest.aggregate(
            recent=Count("id", filter=Q(status_updated_at__gte=since)),
            scanned=Count("id"),
            oldest=Min("status_updated_at"),
        )
        counts[str(status)] = result["recent"]
        if result["scanned"] >= STATS_SCAN_LIMIT and result["oldest"] >= since:
            complete = False
    counts["complete"] = complete
    return counts


def _pending_check(database: Check, pending_seconds: float | None) -> Check:
    if not database["ok"]:
        return {"ok": None, "detail": "not checked: the database did not answer"}
    limit = settings.HEALTH_MAX_PENDING_AGE_SECONDS
    if pending_seconds is not None and pending_seconds > limit:
        return {
            "ok": False,
            "detail": f"a due message has waited {pending_seconds:.0f} s (limit {limit:.0f} s)",
        }
    return {"ok": True}


# --- Redis, the worker and beat ---------------------------------------------------------


def _redis_urls() -> list[str]:
    """REDIS_URL (locks, rate limits, heartbeats) and the broker, when that is Redis too."""
    urls = [settings.REDIS_URL]
    broker = settings.CELERY_BROKER_URL
    if broker.startswith(("redis://", "rediss://")) and broker != settings.REDIS_URL:
        urls.append(broker)
    return urls


def _check_redis() -> Check:
    if not heartbeats.heartbeats_are_stored():
        return {"ok": True, "skipped": True, "detail": "skipped: filesystem broker (demo)"}
    for url in _redis_urls():
        client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        try:
            client.ping()
        finally:
            client.close()
    return {"ok": True}


def _check_worker() -> Check:
    if not heartbeats.heartbeats_are_stored():
        return {"ok": True, "skipped": True, "detail": "skipped: no Redis to hold heartbeats"}
    return _age_check(
        heartbeats.worker_heartbeat_age(),
        settings.HEALTH_WORKER_MAX_AGE_SECONDS,
        missing="no worker heartbeat",
        stale="no worker heartbeat for {age:.0f} s",
    )


def _check_beat() -> Check:
    if not heartbeats.heartbeats_are_stored():
        return {"ok": True, "skipped": True, "detail": "skipped: no Redis to hold heartbeats"}
    return _age_check(
        heartbeats.beat_heartbeat_age(),
        settings.HEALTH_BEAT_MAX_AGE_SECONDS,
        missing="beat never ticked",
        stale="beat last ticked {age:.0f} s ago",
    )


def _age_check(age: float | None, limit: float, *, missing: str, stale: str) -> Check:
    if age is None:
        return {"ok": False, "detail": missing}
    if age > limit:
        return {"ok": False, "age_seconds": round(age, 1), "detail": stale.format(age=age)}
    return {"ok": True, "age_seconds": round(age, 1)}
