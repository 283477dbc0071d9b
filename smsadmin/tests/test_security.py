"""Production is https only with strict cookies and headers; CSRF guards every form but
the signed webhooks and the key-authenticated API; secrets never reach a log or a page."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from twilio.request_validator import RequestValidator

from delivery.api.models import ApiKey
from delivery.tests.test_api_messages import clear_rate_counters
from members.tests.factories import STAFF_PASSWORD, admin_user

BASE_DIR = Path(__file__).resolve().parents[2]
STRONG_KEY = "k7Qp2vX9mR4tW8yB1nC6fH3jL5sD0gA2zE7uI9oP4qT6wY8xV1bN3mK5lJ7hG9fS"
PUBLIC = "https://sms.example.org"
STATUS_WEBHOOK = "/webhooks/twilio/status"
TWILIO_TOKEN = "twilio-token-8f3a1c0e9b7d4a6f2e5c8b1d"
OPENAI_KEY = "sk-openai-key-5d2e9f8a7c6b4e3d1a0f9e8d"
METRICS_TOKEN = "metrics-token-2b7e4c9a1f6d3e8b5a0c7f4e"
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "sms.example.org",
    "DATABASE_URL": "postgres://sms@db/sms",
    "CSRF_TRUSTED_ORIGINS": PUBLIC,
    "CELERY_BROKER_URL": "redis://cache:6379/0",
    "DJANGO_SETTINGS_MODULE": "smsadmin.settings",
}


def run_with_production_environment(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh interpreter with the production environment and nothing else
    of this test run's settings."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DJANGO_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_", "REDIS")
        )
        and not key.startswith(("SECURE_", "CSRF_", "SESSION_", "STAFF_SESSION"))
    }
    clean.update(PRODUCTION)
    return subprocess.run(  # noqa: S603 (the arguments are this file's own)
        [sys.executable, *arguments],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deployment_checklist():
    checked = run_with_production_environment(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_production_is_https_only_with_short_staff_sessions():
    loaded = run_with_production_environment(
        "-c",
        "import json; from django.conf import settings as s; print(json.dumps({name: "
        "getattr(s, name) for name in ['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_AGE', "
        "'X_FRAME_OPTIONS']}))",
    )
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.splitlines()[-1]) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_AGE": 8 * 3600,
        "X_FRAME_OPTIONS": "DENY",
    }


@pytest.fixture
def twilio(settings):
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC


def signed_status_post(client: Client, *, token: str = TWILIO_TOKEN, **headers: str):
    data = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    signature = RequestValidator(token).compute_signature(PUBLIC + STATUS_WEBHOOK, data)
    return client.post(STATUS_WEBHOOK, data, headers={"X-Twilio-Signature": signature, **headers})


@pytest.fixture
def api_key():
    key, plaintext = ApiKey.objects.create_key(name="CRM", scopes=["send", "read"])
    yield plaintext
    clear_rate_counters(key.prefix)


@pytest.mark.django_db
def test_plain_http_is_redirected_except_health_and_metrics_but_proxied_https_is_served(
    settings, twilio
):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # made after the change: SecurityMiddleware reads it when loaded

    redirected = client.get("/admin/login/")
    assert (redirected.status_code, redirected["Location"]) == (
        301,
        "https://testserver/admin/login/",
    )
    assert client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    assert signed_status_post(client, **{"X-Forwarded-Proto": "https"}).status_code == 200
    assert client.get("/health").status_code != 301
    assert client.get("/health/live").status_code != 301
    assert client.get("/metrics").status_code != 301


@pytest.mark.django_db
def test_admin_login_without_the_csrf_token_is_refused():
    admin = admin_user()
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": admin.username, "password": STAFF_PASSWORD}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_signed_webhook_needs_no_csrf_token(twilio):
    response = signed_status_post(Client(enforce_csrf_checks=True))
    assert response.status_code == 200


@pytest.mark.django_db
def test_api_post_with_a_key_needs_no_csrf_token(api_key, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/api/v1/messages",
            json.dumps({"to": "(415) 555-0132", "body": "Your order shipped"}),
            content_type="application/json",
            headers={"Authorization": f"Api-Key {api_key}"},
        )
    assert response.status_code == 202, response.content


@pytest.mark.django_db
def test_admin_pages_carry_a_strict_content_security_policy(client):
    login = client.get("/admin/login/")
    policy = login["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert login["X-Frame-Options"] == "DENY"
    assert login["X-Content-Type-Options"] == "nosniff"
    assert login["Referrer-Policy"] == "same-origin"
    # Under that policy an inline script would not run: the pages must have none.
    client.force_login(admin_user())
    for page in (login, client.get("/admin/")):
        assert page.status_code == 200
        assert not re.search(rb"<script(?![^>]*\bsrc=)[^>]*>", page.content)


@pytest.mark.django_db
def test_api_docs_are_left_without_the_policy_they_cannot_meet(client):
    # Swagger UI's page has an inline script; the policy stays off the API paths only.
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert "Content-Security-Policy" not in docs


@pytest.mark.django_db
def test_secrets_reach_no_log_and_no_page(settings, caplog, monkeypatch, twilio, api_key):
    settings.OPENAI_API_KEY = OPENAI_KEY
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.DEBUG = False
    secrets = {
        "Twilio auth token": TWILIO_TOKEN,
        "OpenAI key": OPENAI_KEY,
        "API key": api_key,
        "staff password": STAFF_PASSWORD,
        "metrics token": METRICS_TOKEN,
    }
    # Made first: factory-boy's own debug log names the password it sets.
    admin = admin_user()
    for name in ["", *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name or None)
    client = Client(raise_request_exception=False)
    pages = []
    # Every query and its parameters is logged (django.db.backends) while this is open.
    queries = CaptureQueriesContext(connection)
    queries.__enter__()

    # Sign in, once with a wrong password that contains the right one, then rightly.
    pages.append(client.get("/admin/login/"))
    for password in (STAFF_PASSWORD + "!", STAFF_PASSWORD):
        pages.append(
            client.post(
                "/admin/login/?next=/admin/", {"username": admin.username, "password": password}
            )
        )
    assert pages[-1].status_code == 302, "the staff member could not sign in"
    pages.append(signed_status_post(client, token="a-different-token-than-ours"))
    assert pages[-1].status_code == 403
    pages.append(client.get("/api/v1/messages", headers={"Authorization": f"Api-Key {api_key}0"}))
    assert pages[-1].status_code == 401
    for path in (
        "/admin/",
        "/admin/delivery/apikey/",
        f"/admin/delivery/apikey/{ApiKey.objects.get().pk}/change/",
        "/admin/profile/",
    ):
        pages.append(client.get(path))
        assert pages[-1].status_code == 200, path
    pages.append(client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}))
    assert pages[-1].status_code == 200
    pages.append(client.get("/admin/", headers={"Host": "not-ours.example"}))
    assert pages[-1].status_code == 400

    def broken_dashboard(request):
        raise ImproperlyConfigured("SMS_BACKEND=twilio needs TWILIO_AUTH_TOKEN")

    monkeypatch.setattr("smsadmin.urls.dashboard_context", broken_dashboard)
    pages.append(client.get("/admin/"))
    assert pages[-1].status_code == 500

    queries.__exit__(None, None, None)
    assert queries.captured_queries

    logged = caplog.text + "\n".join(repr(vars(record)) for record in caplog.records)
    shown = b"\n".join(page.content for page in pages).decode()
    # What the requests above are expected to log, so the search covered them.
    assert "Rejected a Twilio webhook" in logged
    assert "Invalid HTTP_HOST header" in logged
    assert "Internal Server Error: /admin/" in logged
    for name, secret in secrets.items():
        assert secret not in logged, f"the {name} was logged"
        assert secret not in shown, f"the {name} was shown on a page"


@pytest.mark.django_db
def test_a_signature_failing_on_another_host_names_both_hosts(twilio, caplog):
    with caplog.at_level(logging.WARNING, logger="delivery.webhooks"):
        response = signed_status_post(
            Client(), token="a-different-token-than-ours", Host="internal:8000"
        )
    assert response.status_code == 403
    assert [
        record.getMessage() for record in caplog.records if record.name == "delivery.webhooks"
    ] == [
        "Rejected a Twilio webhook: the request came to host 'internal:8000' but "
        "PUBLIC_BASE_URL names host 'sms.example.org' (Twilio signs the address it calls; "
        "is PUBLIC_BASE_URL right?)"
    ]
