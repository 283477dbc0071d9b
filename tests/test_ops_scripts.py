"""scripts/incident-response.sh and scripts/monitor.sh: shellcheck-clean, and against a live
gunicorn on the test's database they read /health right, diagnose without failing in
"local" mode, say what they would restart, and notify a webhook.

Every run forces SMSADMIN_DEPLOY=local: on this machine nothing is ever restarted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

from smsadmin import heartbeats

ROOT = Path(__file__).resolve().parent.parent
INCIDENT = ROOT / "scripts" / "incident-response.sh"
MONITOR = ROOT / "scripts" / "monitor.sh"
# What make test runs before pytest: the services and the dependency audit.
SET_UP_SCRIPTS = [
    str(ROOT / "scripts" / name) for name in ("ensure-test-services.sh", "audit-dependencies.sh")
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def script_environment(url: str = "http://127.0.0.1:1", **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "SMSADMIN_DEPLOY": "local",
        "SMSADMIN_URL": url,
        "SMSADMIN_HTTP_TIMEOUT": "5",
        **extra,
    }


def run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(script), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def private_redis(settings) -> Iterator[str]:
    """A redis-server of this test's own: the shared one may hold other tests' worker
    heartbeats. Points settings.REDIS_URL (and the broker) at it; yields its URL."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
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
        settings.REDIS_URL = settings.CELERY_BROKER_URL = url
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def live_app(tmp_path, private_redis) -> Iterator[str]:
    """gunicorn on this test's database and its own Redis (no heartbeats yet); its URL."""
    assert connection.vendor == "postgresql", "the live app needs the PostgreSQL test database"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "DJANGO_ENV": "test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    log_path = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "smsadmin.wsgi", "--bind", f"127.0.0.1:{port}"]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health/live", timeout=2):  # noqa: S310
                    break
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A tiny Slack-like webhook on loopback; yields its URL and the JSON bodies received."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


# --- Without a server -----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
def test_scripts_pass_shellcheck():
    result = subprocess.run(  # noqa: S603
        ["shellcheck", "-x", str(INCIDENT), str(MONITOR), *SET_UP_SCRIPTS],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("bogus",),
        ("restart", "postgres"),
        ("handle",),
        ("handle", "nope"),
        ("monitor", "--count", "x"),
    ],
)
def test_usage_errors_exit_2(args):
    result = run(INCIDENT, *args, env=script_environment())
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_help_exits_0():
    assert "handle ALERT" in run(INCIDENT, "--help", env=script_environment()).stdout
    assert "--once" in run(MONITOR, "--help", env=script_environment()).stdout


def test_dry_run_restart_prints_the_systemd_command():
    env = script_environment(SMSADMIN_DEPLOY="systemd")
    result = run(INCIDENT, "--dry-run", "restart", "worker", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would run: systemctl restart smsadmin-worker.service" in result.stdout


def test_unreachable_app_is_unhealthy():
    result = run(INCIDENT, "health", env=script_environment())
    assert result.returncode == 1
    assert "UNREACHABLE" in result.stdout


# --- Against a live gunicorn --------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_against_a_live_app(live_app, webhook):
    webhook_url, received = webhook
    env = script_environment(live_app)

    # No worker or beat heartbeat: unhealthy, naming them.
    result = run(INCIDENT, "health", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNHEALTHY" in result.stdout
    assert "failing: worker beat" in result.stdout
    assert "no worker heartbeat" in result.stdout

    # Diagnostics print the health JSON and succeed in local mode.
    result = run(INCIDENT, "diagnostics", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mode: local" in result.stdout
    assert '"status": "failing"' in result.stdout
    assert "oldest pending:" in result.stdout

    # The queue alert says what it would restart, and notifies the webhook.
    result = run(INCIDENT, "handle", "queue_stuck", env={**env, "NOTIFY_WEBHOOK_URL": webhook_url})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "would restart worker" in result.stdout
    assert "would restart beat" in result.stdout
    texts = [body["text"] for body in received]
    assert set(received[0]) == {"text"}
    assert any("would restart worker" in text for text in texts), texts
    assert any("failure" in text and "worker" in text for text in texts), texts

    # The one-screen status shows the summary and each check.
    result = run(MONITOR, "--once", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNHEALTHY" in result.stdout
    assert "messages last hour:" in result.stdout
    assert "worker" in result.stdout
    assert "FAILING" in result.stdout

    # Fresh heartbeats, as a live worker and beat write them: healthy.
    heartbeats.record_worker_heartbeat("ops-test@host")
    heartbeats.record_beat_heartbeat()
    result = run(INCIDENT, "health", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEALTHY" in result.stdout

    result = run(INCIDENT, "monitor", "--interval", "0", "--count", "2", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("HEALTHY") == 2

    result = run(MONITOR, "--once", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEALTHY" in result.stdout

    result = run(INCIDENT, "handle", "queue_stuck", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to fix" in result.stdout
