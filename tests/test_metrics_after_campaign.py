"""End to end: after a campaign of N members goes out through a real Celery worker to the
fake Twilio, and its status callbacks come back, /metrics shows exactly N accepted and N
delivered campaign messages.

The counters live in three kinds of process: the Celery worker (sends), the web server
(status callbacks) and whoever answers /metrics. They meet in one PROMETHEUS_MULTIPROC_DIR,
as in production. The web side is a real gunicorn (the deployment's config, two workers)
rather than pytest's live_server: live_server runs inside this test process, whose
prometheus_client chose in-memory values when Django started, long before a test could
point it at a folder, so the callbacks it counted would never reach the shared files.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from campaigns.services import launch_campaign
from campaigns.tests.factories import CampaignFactory
from delivery.models import Message
from delivery.tasks import sweep
from members.models import Member
from members.tests.factories import us_mobile
from smsadmin.testing.celery_worker import running_worker, worker_environment
from smsadmin.testing.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MEMBERS = 20
Status = Message.Status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_gunicorn(log_dir: Path, environment: dict[str, str], port: int) -> Iterator[str]:
    """gunicorn with the deployment's config on this test's database; yields its URL."""
    url = f"http://127.0.0.1:{port}"
    log_path = log_dir / f"gunicorn-{uuid.uuid4().hex[:8]}.log"
    config = Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"
    command = [sys.executable, "-m", "gunicorn", "smsadmin.wsgi"]
    if config.exists():
        command[3:3] = ["-c", str(config)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            [*command, "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            cwd=settings.BASE_DIR,
            env={**environment, "GUNICORN_BIND": f"127.0.0.1:{port}"},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()}")
            try:
                scrape(url)
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def nothing_left_to_send() -> bool:
    return not Message.objects.filter(status__in=[Status.PENDING, Status.SENDING]).exists()


def scrape_until(url: str, condition, timeout: float = 10) -> dict[tuple[str, frozenset], float]:
    deadline = time.monotonic() + timeout
    while not condition(samples := scrape(url)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return samples


def moved(before, after, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def accepted(before, after) -> float:
    return moved(before, after, "smsadmin_messages_total", kind="campaign", status="accepted")


def delivered_count(before, after) -> float:
    return moved(before, after, "smsadmin_messages_total", kind="campaign", status="delivered")


def test_metrics_count_a_campaign_sent_and_delivered_across_processes(fake_twilio, tmp_path):
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    fake_twilio.set_rules(callbacks=True, status_delay_ms=10)
    environment = {
        **worker_environment(),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "PUBLIC_BASE_URL": public_url,
        "SMS_RATE_LIMIT_PER_SECOND": "5000",
    }
    Member.objects.bulk_create(
        Member(phone=us_mobile(index), first_name=f"Member{index}") for index in range(MEMBERS)
    )
    campaign = CampaignFactory(body="Hi {first_name}, see you Saturday.", respect_quiet_hours=False)

    with (
        running_gunicorn(tmp_path, environment, port) as web,
        running_worker(tmp_path, extra_environment=environment),
    ):
        before = scrape(web)
        assert launch_campaign(campaign_id=campaign.pk)
        wait_until(nothing_left_to_send, timeout=60, what="the campaign to be sent")
        # Counted just after the rows are written: give the last flush a moment.
        sent = scrape_until(web, lambda samples: accepted(before, samples) >= MEMBERS)
        assert fake_twilio.wait_for_deliveries(timeout=30)

        def all_delivered() -> bool:
            # As beat does, in the worker: applies reports that came before their SID was
            # stored (and counts them there, where the shared folder is).
            sweep.delay()
            return Message.objects.filter(status=Status.DELIVERED).count() == MEMBERS

        wait_until(all_delivered, timeout=30, what="delivery callbacks")
        delivered = scrape_until(web, lambda samples: delivered_count(before, samples) >= MEMBERS)

    assert accepted(before, sent) == MEMBERS
    assert accepted(before, delivered) == MEMBERS  # callbacks add no second "accepted"
    assert delivered_count(before, delivered) == MEMBERS
    answered = sum(1 for callback in fake_twilio.callbacks if callback.status == 200)
    assert answered >= MEMBERS  # at least one callback per message (sent, delivered...)
    assert (
        moved(before, delivered, "smsadmin_webhooks_total", type="status", result="ok") == answered
    )
    assert (
        moved(before, delivered, "smsadmin_webhooks_total", type="status", result="rejected") == 0
    )
    # Worker-side histograms arrived too, one send and one claim-to-accepted per message.
    assert moved(before, delivered, "smsadmin_provider_send_seconds_count") == MEMBERS
    assert moved(before, delivered, "smsadmin_message_processing_seconds_count") == MEMBERS
    # Read at scrape time from the database: nothing is left waiting.
    assert delivered[("smsadmin_pending_messages", frozenset())] == 0
