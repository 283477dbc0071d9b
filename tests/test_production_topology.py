"""The single-server topology, end to end, without containers: Debian's nginx running
``deploy/nginx/smsadmin.conf`` (plain HTTP, every location rule the real file's) in front
of gunicorn with ``deploy/gunicorn.conf.py``, a real Celery worker and celery-beat, all in
``DJANGO_ENV=production`` on this test's database. Beat launches a scheduled campaign; the
fake Twilio's status callbacks come back through nginx and must pass the signature check
against ``PUBLIC_BASE_URL`` (the nginx address); ``/metrics`` is closed to other hosts."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import schedule_campaign
from campaigns.tests.factories import CampaignFactory
from delivery.models import Message
from delivery.tasks import sweep
from deploy import testing
from members.models import Member
from members.tests.factories import us_mobile
from smsadmin.testing.celery_worker import running_worker, worker_environment
from smsadmin.testing.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
VENV_BIN = Path(sys.executable).parent
MEMBERS = 15


def unit_command(unit: str) -> list[str]:
    """A systemd unit's ExecStart, with /opt/smsadmin pointing at this checkout."""
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    command = line.removeprefix("ExecStart=")
    command = command.replace("/opt/smsadmin/venv/bin/", f"{VENV_BIN}/")
    command = command.replace("/opt/smsadmin/app/", f"{ROOT}/")
    return shlex.split(command)


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def process(
    name: str, command: list[str], environment: dict[str, str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    child.log_path = log_path  # type: ignore[attr-defined]
    try:
        yield child
    finally:
        terminate(child)
        if child.poll() is None:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)


def terminate(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group: graceful stops (gunicorn, celery), nginx's fast one."""
    if child.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)


def wait_for_port(child: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"exited early:\n{child.log_path.read_text(errors='replace')}")
        if answers(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"not listening on {port}:\n{child.log_path.read_text(errors='replace')}")


def http(
    port: int, request: str, *, source: str = "127.0.0.1", half_close: bool = False
) -> tuple[int, str]:
    """One raw HTTP/1.1 request from a chosen loopback source address: status, response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(request.encode())
        if half_close:  # for a refused body: else nginx lingers 5 s before closing
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks).decode(errors="replace")
    return int(response.split(" ", 2)[1]), response


def get(port: int, path: str, *, source: str = "127.0.0.1", headers: str = "") -> tuple[int, str]:
    return http(
        port,
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n",
        source=source,
    )


@pytest.fixture
def topology(fake_twilio, tmp_path):
    """nginx → gunicorn, a worker and beat, in production mode on the test database."""
    nginx_port, web_port = testing.free_port(), testing.free_port()
    public = f"http://127.0.0.1:{nginx_port}"
    static_root = tmp_path / "static"
    (static_root / "admin").mkdir(parents=True)
    (static_root / "admin" / "probe.css").write_text("body { color: teal; }\n")
    fake_twilio.set_rules(callbacks=True, status_delay_ms=10)

    production = {
        "DJANGO_ENV": "production",
        "DEBUG": "off",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": public,
        "TRUSTED_PROXY_COUNT": "1",
        "PUBLIC_BASE_URL": public,
        "STATIC_ROOT": str(static_root),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "ARCHIVE_ROOT": str(tmp_path / "archive"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "SMS_RATE_LIMIT_PER_SECOND": "5000",
        # Production requires an Admin's approval before a campaign goes (tested on its
        # own); here beat is to launch it as scheduled.
        "CAMPAIGN_APPROVAL_REQUIRED": "off",
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "GUNICORN_WORKERS": "2",
        # A queue of its own: other test runs may share this Redis database, and their
        # workers must not take (nor their purges drop) this topology's tasks.
        "CELERY_TASK_DEFAULT_QUEUE": f"smsadmin-topology-{uuid.uuid4().hex[:8]}",
    }
    environment = {**worker_environment(), **production}

    prefix = tmp_path / "nginx"
    site = testing.render_site(
        upstream=f"127.0.0.1:{web_port}",
        static_root=static_root,
        acme_root=prefix / "acme",
        http_port=nginx_port,
    )
    conf = testing.write_prefix(prefix, site)
    nginx = [testing.nginx_binary() or "nginx", "-p", f"{prefix}/", "-c", str(conf)]
    nginx += ["-e", f"{prefix}/logs/error.log", "-g", "daemon off;"]

    with (
        process("gunicorn", unit_command("smsadmin-web.service"), environment, tmp_path) as web,
        process("nginx", nginx, environment, tmp_path) as proxy,
        running_worker(tmp_path, extra_environment=production),
    ):
        wait_for_port(web, web_port)
        wait_for_port(proxy, nginx_port)
        with process("beat", unit_command("smsadmin-beat.service"), environment, tmp_path) as beat:
            try:
                yield {
                    "port": nginx_port,
                    "public": public,
                    "nginx_access_log": prefix / "logs" / "access.log",
                }
            finally:  # stop them all at once; each context then waits for its own
                for child in (beat, web, proxy):
                    terminate(child)


def test_beat_launches_a_campaign_and_callbacks_come_back_through_nginx(topology, fake_twilio):
    """One topology for every check: starting it is most of the time."""
    phones = [us_mobile(index) for index in range(MEMBERS)]
    Member.objects.bulk_create(
        Member(phone=phone, first_name=f"Member{index}", is_community=True)
        for index, phone in enumerate(phones)
    )
    campaign = CampaignFactory(body="Hi {first_name|friend}!", respect_quiet_hours=False)
    schedule_campaign(campaign=campaign, send_at=timezone.now() + timedelta(seconds=2))

    def launched() -> bool:
        campaign.refresh_from_db()
        return campaign.state != Campaign.State.SCHEDULED

    wait_until(launched, timeout=40, what="beat to launch the scheduled campaign")

    def all_delivered() -> bool:
        sweep()  # as beat does every 30 s: reports that came before their SID was stored
        return Message.objects.filter(status=Message.Status.DELIVERED).count() == MEMBERS

    wait_until(all_delivered, timeout=40, what="delivery callbacks through nginx")

    sent = Counter(
        request.form["To"]
        for request in fake_twilio.requests
        if request.method == "POST" and request.status == 201
    )
    assert sent == Counter(phones)  # each member exactly one text
    callbacks = fake_twilio.callbacks
    assert callbacks
    assert {attempt.url for attempt in callbacks} == {
        topology["public"] + "/webhooks/twilio/status"
    }
    assert {attempt.status for attempt in callbacks} == {200}  # signatures valid behind nginx
    access_log = topology["nginx_access_log"].read_text()
    assert access_log.count("POST /webhooks/twilio/status") == len(callbacks)
    campaign.refresh_from_db()
    assert campaign.launched_at >= campaign.send_at  # launched by beat, not before its time

    check_nginx_rules(topology["port"])


def check_nginx_rules(port: int) -> None:
    """/metrics closed to other hosts, static files from disk, bounded webhook bodies."""
    # Another host (any address but 127.0.0.1) is refused, whatever it claims to be.
    assert get(port, "/metrics", source="127.0.0.2")[0] == 403
    assert get(port, "/metrics/", source="127.0.0.2")[0] == 403
    spoofed = "X-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\n"
    assert get(port, "/metrics", source="127.0.0.2", headers=spoofed)[0] == 403
    # Prometheus on the host gets through to the app (which has rules of its own).
    assert get(port, "/metrics")[0] != 403

    status, response = get(port, "/static/admin/probe.css", source="127.0.0.2")
    assert status == 200
    assert "color: teal" in response
    assert "Strict-Transport-Security" in response

    status, response = get(port, "/health/live", source="127.0.0.2")
    assert status == 200  # proxied with its Host: ALLOWED_HOSTS accepts it in production
    assert response.count("X-Content-Type-Options: nosniff") == 1  # nginx's, once
    assert response.count("Strict-Transport-Security") == 1

    # nginx answers from the Content-Length alone, before any of the body is sent.
    status, _ = http(
        port,
        "POST /webhooks/twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {100 * 1024}\r\nConnection: close\r\n\r\n",
        half_close=True,
    )
    assert status == 413
    # An unsigned callback reaches the app and is refused there.
    form = "MessageSid=SM1&MessageStatus=failed"
    status, _ = http(
        port,
        "POST /webhooks/twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\nConnection: close\r\n\r\n{form}",
    )
    assert status == 403
