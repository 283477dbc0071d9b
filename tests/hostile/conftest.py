"""Shared pieces of the hostile-input corpus: a hard per-test time limit, a staff
client, and Twilio's signature."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from members.tests.factories import social_manager

# Every case must finish in a few seconds: a hang is a failure, not a slow test.
CASE_SECONDS = 10
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://sms.example.org"


class CaseTimedOut(Exception):
    pass


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise CaseTimedOut(f"the case took longer than {CASE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(CASE_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def staff_client(db) -> Client:
    client = Client()
    client.force_login(social_manager())
    return client


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC
    return settings


def twilio_signature(path: str, data: dict[str, str]) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, data)
