"""Webhooks take the short way; everything else the whole middleware stack."""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from django.db import OperationalError, connection
from django.urls import reverse
from twilio.request_validator import RequestValidator

from delivery.api.models import ApiKey
from delivery.models import Message
from delivery.tests.factories import MessageFactory
from smsadmin.middleware import _FirstStatement

pytestmark = pytest.mark.django_db


def test_a_webhook_sets_no_cookie_and_still_checks_its_signature(client, settings):
    settings.TWILIO_AUTH_TOKEN = "1" * 32
    response = client.post(reverse("delivery:twilio-status"), {"MessageSid": "SM1"})
    assert response.status_code == 403
    assert response.cookies == {}
    assert "X-Frame-Options" not in response


def test_an_unknown_webhook_path_is_a_plain_404(client):
    assert client.post("/webhooks/twilio/nothing-here").status_code == 404


def test_the_api_takes_the_short_way_and_ignores_a_logged_in_session(admin_client):
    response = admin_client.get("/api/v1/messages")
    assert response.status_code == 401
    assert response.cookies == {}
    assert "X-Frame-Options" not in response


def test_other_pages_keep_the_whole_stack(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "csrftoken" in response.cookies


@pytest.mark.django_db(transaction=True)
def test_a_webhook_on_a_dead_kept_connection_reconnects_and_applies_the_status(client, settings):
    """Webhooks skip the per-request health check; a dead connection costs a retry, not
    a 500 (PostgreSQL restarted under a kept connection)."""
    settings.TWILIO_AUTH_TOKEN = "1" * 32
    settings.PUBLIC_BASE_URL = "https://sms.example.org"
    message = MessageFactory(status=Message.Status.ACCEPTED, provider_sid="SM" + "a" * 32)
    connection.ensure_connection()
    doomed = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [doomed])
    path = reverse("delivery:twilio-status")
    fields = {"MessageSid": message.provider_sid, "MessageStatus": "delivered"}
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(
        settings.PUBLIC_BASE_URL + path, fields
    )
    response = client.post(path, fields, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    assert connection.connection.info.backend_pid != doomed
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_probes_answer_whatever_host_the_load_balancer_sends(client):
    response = client.get("/health/live", HTTP_HOST="10.0.3.17:8000")

    assert response.status_code == 200
    assert client.get("/admin/login/", HTTP_HOST="10.0.3.17:8000").status_code == 400


def test_requests_that_take_the_short_way_are_still_counted_by_view(client):
    from django_prometheus.middleware import Metrics

    by_status = Metrics.get_instance().responses_by_status_view_method
    counted = by_status.labels(status="401", view="api-messages", method="GET")
    before = counted._value.get()

    assert client.get("/api/v1/messages").status_code == 401

    assert counted._value.get() == before + 1


@pytest.mark.django_db(transaction=True)
def test_an_api_send_on_a_dead_kept_connection_reconnects_and_sends_once(client, monkeypatch):
    """The API skips the health check too; its first statement (the key's lookup, a read)
    fails on the dead connection, so the call runs again, whole, on a new one."""
    monkeypatch.setattr("delivery.api.messages.dispatch_trickle", lambda **kwargs: None)
    _, key = ApiKey.objects.create_key(name="dead", scopes=["send"], rate_limit_per_minute=100)
    connection.ensure_connection()
    doomed = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [doomed])
    response = client.post(
        "/api/v1/messages",
        {"to": "+14155550123", "body": "Hello"},
        content_type="application/json",
        headers={"Authorization": f"Api-Key {key}"},
    )
    assert response.status_code == 202, response.content
    assert connection.connection.info.backend_pid != doomed
    assert list(Message.objects.values_list("phone", flat=True)) == ["+14155550123"]


def test_an_api_call_whose_first_read_fails_on_a_live_connection_is_not_run_again(
    client, monkeypatch
):
    """A timeout, say: the connection still works, so the error is the request's."""
    _, key = ApiKey.objects.create_key(name="slow", scopes=["read"], rate_limit_per_minute=100)
    calls = []

    def timed_out(plaintext):  # type: ignore[no-untyped-def]
        calls.append(plaintext)
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr("delivery.api.auth.usable_key", timed_out)
    with pytest.raises(OperationalError):
        client.get("/api/v1/messages", headers={"Authorization": f"Api-Key {key}"})
    assert calls == [key]


def failing(sql, params, many, context):  # type: ignore[no-untyped-def]
    raise OperationalError("server closed the connection unexpectedly")


def succeeding(sql, params, many, context):  # type: ignore[no-untyped-def]
    return []


@pytest.mark.parametrize(
    ("statements", "untouched"),
    [
        ([], True),
        ([("SELECT 1", failing)], True),
        ([("  select id FROM delivery_apikey", failing)], True),
        ([("INSERT INTO delivery_message VALUES (1)", failing)], False),
        ([("SELECT 1", succeeding), ("SELECT 2", failing)], False),
        ([("SELECT 1", succeeding), ("INSERT INTO t VALUES (1)", failing)], False),
    ],
    ids=["none", "first-read", "first-read-lowercase", "first-write", "second-read", "write"],
)
def test_a_failure_leaves_the_database_untouched_only_before_or_at_a_first_read(
    statements, untouched
):
    arrival = _FirstStatement()
    for sql, execute in statements:
        with contextlib.suppress(OperationalError):
            arrival(execute, sql, [], False, {})
    assert arrival.nothing_done is untouched
