"""GET /health (readiness) and /health/live, against real PostgreSQL and Redis."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from django.db import OperationalError, connection
from django.utils import timezone

from delivery.models import Batch, Message
from smsadmin import heartbeats


@pytest.fixture(autouse=True)
def no_heartbeats(settings):
    """Start without heartbeats (an earlier test's worker may have left one)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = (heartbeats.WORKER_HEARTBEATS_KEY, heartbeats.BEAT_HEARTBEAT_KEY)
    client.delete(*keys)
    yield
    client.delete(*keys)
    client.close()


@pytest.fixture
def fresh_heartbeats():
    heartbeats.record_worker_heartbeat("worker-1@test")
    heartbeats.record_beat_heartbeat()


def pending_message(*, waited: timedelta, **fields) -> Message:
    batch = Batch.objects.create(kind=Batch.Kind.API, label="API", sender="+15005550006")
    return Message.objects.create(
        batch=batch,
        kind=Batch.Kind.API,
        phone="+14155552671",
        sender="+15005550006",
        body="Hello",
        created_at=timezone.now() - waited,
        **fields,
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_heartbeats")
def test_healthy_deployment_answers_200_with_every_check_ok(client):
    pending_message(waited=timedelta(seconds=30))

    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert "failing" not in body
    assert set(body["checks"]) == {"database", "redis", "worker", "beat", "pending"}
    assert all(check["ok"] is True for check in body["checks"].values())
    assert body["checks"]["database"]["ms"] >= 0
    assert body["checks"]["worker"]["age_seconds"] < 5
    assert 30 <= body["oldest_pending_seconds"] < 60
    assert body["messages_last_hour"] == {"sent": 0, "delivered": 0, "failed": 0, "complete": True}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_heartbeats")
def test_messages_of_the_last_hour_are_counted_by_status(client):
    now = timezone.now()
    for status, changed_ago in [
        (Message.Status.DELIVERED, timedelta(minutes=5)),
        (Message.Status.DELIVERED, timedelta(minutes=50)),
        (Message.Status.DELIVERED, timedelta(hours=2)),
        (Message.Status.FAILED, timedelta(minutes=1)),
        (Message.Status.SENT, timedelta(hours=3)),
    ]:
        message = pending_message(waited=timedelta(hours=4))
        Message.objects.filter(pk=message.pk).update(
            status=status, status_updated_at=now - changed_ago
        )

    body = client.get("/health").json()

    assert body["messages_last_hour"] == {"sent": 0, "delivered": 2, "failed": 1, "complete": True}
    assert body["oldest_pending_seconds"] is None


@pytest.mark.django_db
def test_no_worker_heartbeat_fails_naming_the_worker(client):
    heartbeats.record_beat_heartbeat()

    response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["failing"] == ["worker"]
    assert body["checks"]["worker"] == {
        "ok": False,
        "detail": "no worker heartbeat",
        "ms": body["checks"]["worker"]["ms"],
    }


@pytest.mark.django_db
def test_a_stale_worker_heartbeat_fails(client, settings):
    settings.HEALTH_WORKER_MAX_AGE_SECONDS = 90
    heartbeats.record_worker_heartbeat("worker-1@test", at=time.time() - 130)
    heartbeats.record_beat_heartbeat()

    body = client.get("/health").json()

    assert body["failing"] == ["worker"]
    assert body["checks"]["worker"]["detail"] == "no worker heartbeat for 130 s"


@pytest.mark.django_db
def test_beat_heartbeat_too_old_fails_naming_beat(client, settings):
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 60
    heartbeats.record_worker_heartbeat("worker-1@test")
    heartbeats.record_beat_heartbeat(at=time.time() - 61)

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["failing"] == ["beat"]
    assert response.json()["checks"]["beat"]["detail"] == "beat last ticked 61 s ago"


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_heartbeats")
def test_a_message_waiting_past_the_threshold_fails_naming_pending(client, settings):
    settings.HEALTH_MAX_PENDING_AGE_SECONDS = 900
    pending_message(waited=timedelta(seconds=1000))

    response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["pending"]
    assert 1000 <= body["oldest_pending_seconds"] < 1030
    assert body["checks"]["pending"]["detail"].startswith("a due message has waited 10")


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_heartbeats")
def test_a_message_scheduled_for_later_is_not_waiting(client):
    pending_message(waited=timedelta(hours=2), send_after=timezone.now() + timedelta(hours=1))
    # Created long ago but due only a minute ago: it has waited a minute.
    pending_message(waited=timedelta(hours=2), send_after=timezone.now() - timedelta(minutes=1))

    response = client.get("/health")

    assert response.status_code == 200
    assert 60 <= response.json()["oldest_pending_seconds"] < 90


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_heartbeats")
def test_a_database_that_does_not_answer_fails_naming_the_database(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError(
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
        )

    monkeypatch.setattr(connection, "cursor", refuse)

    response = client.get("/health")

    monkeypatch.undo()
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["detail"].startswith("OperationalError: connection to")
    # Read from the database: not checked rather than failing, so only it is named.
    assert body["checks"]["pending"]["ok"] is None
    assert body["messages_last_hour"] is None
    assert body["oldest_pending_seconds"] is None


@pytest.mark.django_db
def test_filesystem_broker_skips_redis_and_the_heartbeats(client, settings):
    settings.CELERY_BROKER_URL = "filesystem://"

    response = client.get("/health")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["redis"]["skipped"] is True
    assert checks["redis"]["detail"] == "skipped: filesystem broker (demo)"
    assert checks["worker"]["skipped"] is True
    assert checks["beat"]["skipped"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/health/live", "/health?live"])
def test_liveness_never_touches_the_database_or_redis(
    client, settings, django_assert_num_queries, url
):
    # Nothing answers on port 1: liveness must not notice.
    settings.REDIS_URL = settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    with django_assert_num_queries(0):
        response = client.get(url)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_heartbeat_ages_are_none_without_heartbeats():
    assert heartbeats.worker_heartbeat_age() is None
    assert heartbeats.beat_heartbeat_age() is None


def test_the_freshest_worker_heartbeat_counts():
    heartbeats.record_worker_heartbeat("old@test", at=time.time() - 300)
    heartbeats.record_worker_heartbeat("new@test", at=time.time() - 10)

    assert 10 <= heartbeats.worker_heartbeat_age() < 15
    assert set(heartbeats.worker_heartbeats()) == {"old@test", "new@test"}


def test_beat_publishing_its_heartbeat_task_is_a_tick():
    heartbeats.record_beat_tick(sender="delivery.sweep")
    assert heartbeats.beat_heartbeat_age() is None

    heartbeats.record_beat_tick(sender=heartbeats.BEAT_HEARTBEAT_TASK)

    assert heartbeats.beat_heartbeat_age() < 5


def test_a_ready_worker_refreshes_its_heartbeat_from_a_thread(settings):
    class Consumer:
        hostname = "celery@test-host"

    settings.HEALTH_HEARTBEAT_INTERVAL_SECONDS = 0.05
    heartbeats.start_worker_heartbeat(sender=Consumer())
    try:
        deadline = time.monotonic() + 5
        while heartbeats.worker_heartbeat_age() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "celery@test-host" in heartbeats.worker_heartbeats()
    finally:
        heartbeats.stop_worker_heartbeat()
