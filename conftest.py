"""Fixtures shared by every app's tests."""

from __future__ import annotations

import time

import pytest

_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault-injection scenarios' table (tests/chaos), from whichever process ran them."""
    from tests.chaos.report import format_report, load_results

    results = load_results(since=_SESSION_STARTED)
    if results:
        terminalreporter.write_sep("=", "fault injection: every eligible recipient once")
        terminalreporter.write_line(format_report(results))


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploaded and generated files go to a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker process on this test's database and Redis."""
    from smsadmin.testing.celery_worker import running_worker

    with running_worker(tmp_path) as worker:
        yield worker


@pytest.fixture
def fake_twilio(settings):
    """The project's fake Twilio on loopback, with the real SDK pointed at it.

    Status callbacks are off: tests that want them turn them on with ``set_rules``.
    """
    from smsadmin.fakes.twilio import FakeTwilio

    with FakeTwilio(callbacks=False, status_delay_ms=None, seed=7) as fake:
        settings.SMS_BACKEND = "twilio"
        settings.TWILIO_ACCOUNT_SID = fake.account_sid
        settings.TWILIO_AUTH_TOKEN = fake.auth_token
        settings.TWILIO_API_BASE_URL = fake.base_url
        yield fake


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Staff logins in tests need not cost what they must in production."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def enqueued(monkeypatch):
    """Batches whose sending was enqueued (run by real workers in the end-to-end tests)."""
    sent: list[int] = []
    monkeypatch.setattr(
        "delivery.tasks.send_batch_messages.delay", lambda batch_id: sent.append(batch_id)
    )
    return sent


@pytest.fixture
def fake_openai(settings):
    """The project's fake OpenAI on loopback, with the writer's settings pointed at it:
    a short timeout and no SDK retries unless a test asks for them."""
    from smsadmin.fakes.openai import FakeOpenAI

    with FakeOpenAI() as fake:
        settings.OPENAI_API_KEY = fake.api_key
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_TIMEOUT = 1.0
        settings.OPENAI_MAX_RETRIES = 0
        yield fake


@pytest.fixture(autouse=True)
def forget_process_memos():
    """What a process remembers between requests (the API's batch of the day, the last
    sending window it claimed) refers to rows a test rolls back: start each test afresh."""
    from delivery import dispatch
    from delivery.api import messages

    messages._batch_ids.clear()
    dispatch._claimed_at.clear()
