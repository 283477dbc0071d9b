"""Redis goes away and comes back: /health turns 503 naming it, quickly, then 200 again.

A private redis-server on a free port stands in for the broker (never the shared one on
6379, which other tests use), and a real Celery worker writes its heartbeat there.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from smsadmin import heartbeats
from smsadmin.testing.celery_worker import running_worker

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]  # nothing survives a kill
    process = subprocess.Popen(  # noqa: S603
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def health(client) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.get("/health")
    return response.status_code, response.json(), time.monotonic() - started


def wait_for_status(client, expected: int, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body, elapsed = health(client)
        assert elapsed < 2.0, f"/health took {elapsed:.2f} s"
        if status == expected:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/health stayed {status}, not {expected}: {body}")
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_health_names_redis_while_it_is_down_and_recovers(client, settings, tmp_path, monkeypatch):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    # The worker's queue lives on this private server: nothing to purge on the shared one.
    monkeypatch.setattr("smsadmin.celery.app.control.purge", lambda: None)

    with (
        redis_server(port) as server,
        running_worker(
            tmp_path,
            concurrency=1,
            extra_environment={"HEALTH_HEARTBEAT_INTERVAL_SECONDS": "0.5"},
        ) as worker,
    ):
        heartbeats.record_beat_heartbeat()  # as beat does every 30 s
        body = wait_for_status(client, 200, timeout=10)
        assert body["checks"]["redis"]["ok"] is True
        assert body["checks"]["worker"]["age_seconds"] < 5

        server.kill()
        server.wait(timeout=10)
        body = wait_for_status(client, 503, timeout=5)
        assert body["failing"] == ["redis"]
        assert body["checks"]["redis"]["detail"].startswith("Redis: ConnectionError")
        assert body["checks"]["worker"]["ok"] is None
        assert body["checks"]["database"]["ok"] is True

        with redis_server(port):
            # An empty Redis: the worker's heartbeat thread writes its key again.
            heartbeats.record_beat_heartbeat()
            body = wait_for_status(client, 200, timeout=15)
            assert body["checks"]["worker"]["ok"] is True
            assert worker.process.poll() is None
