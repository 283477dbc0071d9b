"""The browser journeys' fixtures: Debian's chromium driven by Playwright, staff logged in
through the real login page, a Celery worker sending to the fake Twilio, and screenshots
kept under var/test-artifacts/browser/<test>/ (git-ignored with var/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.urls import reverse
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from twilio.request_validator import RequestValidator

from members.tests.factories import STAFF_PASSWORD
from smsadmin.testing.celery_worker import WorkerProcess, running_worker

# Debian's chromium; CHROMIUM_PATH names another Chromium-based browser (CI: Google Chrome).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Quiet and offline: no first-run pages, updates, sync or QUIC to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "test-artifacts" / "browser"
INBOUND_PATH = reverse("delivery:twilio-inbound")
# Every expect() and wait: generous for a loaded CI machine, short next to a hung test.
TIMEOUT_MS = 15_000


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium, driven by Playwright for one test (Playwright's own browser
    download does not work here).

    Not for the whole session: between its calls, Playwright's sync API leaves its event
    loop marked as running in the main thread, so every later test in the process that
    runs a loop of its own (the sender's asyncio.run) would fail. And while it runs,
    Django would refuse the test's ORM calls (SynchronousOnlyOperation) although no
    coroutine shares the thread with them: they are allowed for exactly that long.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-test-services.sh (as root)")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def staff_page(browser: Browser, live_server: Any) -> Iterator[Callable[[], Page]]:
    """Opens a page in a browser context of its own (one per person: cookies apart) on
    the live server."""
    contexts: list[BrowserContext] = []

    def new_page() -> Page:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


class Screenshots:
    """Numbered full-page screenshots of one test: 01-login.png, 02-import-errors.png..."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    def take(self, page: Page, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    # One folder per test, emptied first: a rerun's pictures are all of that run.
    folder = SCREENSHOTS / request.node.name.split("[")[0]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Screenshots(folder)


def log_in(page: Page, username: str, password: str = STAFF_PASSWORD) -> None:
    """Fill in the admin's login form and press "Log in"."""
    page.goto(reverse("admin:login") + "?next=" + reverse("admin:index"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def sending_worker(
    fake_twilio: Any, live_server: Any, media_root: Path, settings: Any, tmp_path: Path
) -> Iterator[WorkerProcess]:
    """A real Celery worker that checks imports (files under ``media_root``) and sends to
    the fake Twilio, whose status callbacks come back to the live server.

    Approval is required, as in production. The worker gets its settings through its
    environment: the ``settings`` fixture reaches only this process (the live server).
    """
    settings.CAMPAIGN_APPROVAL_REQUIRED = True
    settings.PUBLIC_BASE_URL = live_server.url
    settings.ORGANIZATION_NAME = "Garden Club"
    settings.TWILIO_ADVANCED_OPT_OUT = False
    fake_twilio.set_rules(callbacks=True, status_delay_ms=10)
    environment = {
        "MEDIA_ROOT": str(media_root),
        "CAMPAIGN_APPROVAL_REQUIRED": "true",
        "ORGANIZATION_NAME": "Garden Club",
        "TWILIO_ADVANCED_OPT_OUT": "false",
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "PUBLIC_BASE_URL": live_server.url,
        "SMS_RATE_LIMIT_PER_SECOND": "1000",
    }
    with running_worker(tmp_path, extra_environment=environment) as worker:
        yield worker


def text_us(live_server: Any, fake_twilio: Any, fields: dict[str, str]) -> None:
    """Twilio's inbound webhook, signed with the account's auth token, over HTTP."""
    url = live_server.url + INBOUND_PATH
    signature = RequestValidator(fake_twilio.auth_token).compute_signature(url, fields)
    response = requests.post(
        url, data=fields, headers={"X-Twilio-Signature": signature}, timeout=10
    )
    assert response.status_code == 200, response.text
