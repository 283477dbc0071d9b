"""``/api/v1/messages``: every answer the API gives, and what each one leaves behind."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from delivery.api.models import ApiKey, IdempotentRequest
from delivery.api.serializers import METADATA_MAX_BYTES
from delivery.models import Batch, Message
from delivery.tests.factories import BatchFactory, MessageFactory
from members.tests.factories import OptOutFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

MESSAGES = "/api/v1/messages"
ALL_SCOPES = ["send", "contacts", "read"]


def make_key(*, scopes: list[str] | None = None, **fields: object) -> tuple[ApiKey, str]:
    return ApiKey.objects.create_key(
        name="Ticketing", scopes=ALL_SCOPES if scopes is None else scopes, **fields
    )


def rate_counters() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def clear_rate_counters(prefix: str) -> None:
    store = rate_counters()
    for counter in store.scan_iter(f"smsadmin:api-rate:{prefix}:*"):
        store.delete(counter)


def send(client: Client, key: str | None, payload: object, **headers: str):
    return client.post(
        MESSAGES,
        payload if isinstance(payload, str) else json.dumps(payload),
        content_type="application/json",
        headers={**({"Authorization": f"Api-Key {key}"} if key else {}), **headers},
    )


def read(client: Client, key: str | None, path: str = MESSAGES, **params: str):
    headers = {"Authorization": f"Api-Key {key}"} if key else {}
    return client.get(path, params, headers=headers)


@pytest.fixture
def api_key() -> Iterator[tuple[ApiKey, str]]:
    key, plaintext = make_key()
    yield key, plaintext
    clear_rate_counters(key.prefix)


@pytest.fixture
def plaintext(api_key) -> str:
    return api_key[1]


@pytest.fixture
def scheduled(monkeypatch) -> list[tuple]:
    """Send tasks handed to Celery (``dispatch_trickle`` schedules with ``apply_async``)."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        "delivery.tasks.send_batch_messages.apply_async",
        lambda args, **options: calls.append((args, options)),
    )
    monkeypatch.setattr("delivery.dispatch._claim_trickle_window", lambda batch_id: True)
    return calls


def assert_invalid(response, field: str) -> None:
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["error"] == "invalid"
    assert field in data["fields"], data
    assert Message.objects.count() == 0


# 202 ------------------------------------------------------------------------------------


def test_send_accepts_the_message_and_sends_it_after_commit(
    client, plaintext, scheduled, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = send(
            client,
            plaintext,
            {"to": "(415) 555-0132", "body": "Your order shipped — café", "metadata": {"id": 7}},
        )
        assert scheduled == []  # nothing before commit

    assert response.status_code == 202, response.content
    message = Message.objects.get()
    data = response.json()
    assert data["id"] == message.pk
    assert data["url"] == f"http://testserver/api/v1/messages/{message.pk}"
    assert response["Location"] == data["url"]
    assert data["to"] == "+14155550132"
    assert data["status"] == "pending"
    assert data["metadata"] == {"id": 7}
    assert message.kind == Batch.Kind.API
    assert message.batch.kind == Batch.Kind.API
    assert message.phone == "+14155550132"
    assert message.sender == settings.SMS_DEFAULT_SENDER
    assert message.status == Message.Status.PENDING
    assert message.encoding == "UCS-2"
    assert message.segments == 1
    assert message.metadata == {"id": 7}
    assert message.send_after is None

    for callback in callbacks:
        callback()
    assert [args for args, _ in scheduled] == [(message.batch_id,)]


def test_send_counts_segments_of_a_long_gsm_body(client, plaintext, scheduled):
    response = send(client, plaintext, {"to": "+14155550132", "body": "a" * 161})

    assert response.status_code == 202
    assert response.json()["encoding"] == "GSM-7"
    assert response.json()["segments"] == 2


def test_send_at_in_the_future_becomes_send_after(
    client, plaintext, scheduled, django_capture_on_commit_callbacks
):
    later = timezone.now() + timedelta(minutes=2)

    with django_capture_on_commit_callbacks(execute=True):
        response = send(
            client, plaintext, {"to": "+14155550132", "body": "Hi", "send_at": later.isoformat()}
        )

    assert response.status_code == 202, response.content
    message = Message.objects.get()
    assert message.send_after == later
    assert datetime.fromisoformat(response.json()["send_at"]) == later
    assert scheduled == [((message.batch_id,), {"eta": later})]


def test_messages_of_one_day_and_sender_share_one_api_batch(client, plaintext, scheduled):
    send(client, plaintext, {"to": "+14155550132", "body": "One"})
    send(client, plaintext, {"to": "+14155550133", "body": "Two"})

    assert Batch.objects.filter(kind=Batch.Kind.API).count() == 1
    assert Message.objects.count() == 2


def test_a_request_records_when_the_key_was_last_used(client, api_key, scheduled):
    key, plaintext = api_key
    assert key.last_used_at is None

    read(client, plaintext)

    key.refresh_from_db()
    assert key.last_used_at is not None
    assert timezone.now() - key.last_used_at < timedelta(seconds=10)


# 400 ------------------------------------------------------------------------------------

VALID = {"to": "+14155550132", "body": "Hi"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "Hi"}, "to"),
        ({"to": "+14155550132"}, "body"),
        ({"to": "not a number", "body": "Hi"}, "to"),
        ({"to": "+1415555", "body": "Hi"}, "to"),
        ({**VALID, "body": "x" * 1601}, "body"),
        ({**VALID, "body": "   "}, "body"),
        ({**VALID, "body": ""}, "body"),
        ({**VALID, "colour": "blue"}, "colour"),
        ({**VALID, "sender": "+15550000000"}, "sender"),
        ({**VALID, "metadata": ["a", "list"]}, "metadata"),
        ({**VALID, "metadata": "text"}, "metadata"),
        ({**VALID, "metadata": {"blob": "x" * METADATA_MAX_BYTES}}, "metadata"),
        ({**VALID, "send_at": "next tuesday"}, "send_at"),
        (["a", "list"], "non_field_errors"),
        ("42", "non_field_errors"),
        ('{"to": "+14155550132", "body": "Hi \\ud800"}', "body"),
        ('{"to": "+14155550132", "body": "Hi", "metadata": {"a": "\\ud800"}}', "metadata"),
    ],
    ids=[
        "missing-to",
        "missing-body",
        "bad-number",
        "short-number",
        "body-too-long",
        "blank-body",
        "empty-body",
        "unknown-field",
        "bad-sender",
        "metadata-list",
        "metadata-text",
        "metadata-too-big",
        "bad-send-at",
        "json-list",
        "json-number",
        "body-lone-surrogate",
        "metadata-lone-surrogate",
    ],
)
def test_send_refuses_invalid_input_field_by_field(client, plaintext, scheduled, payload, field):
    response = send(client, plaintext, payload)

    assert_invalid(response, field)
    assert scheduled == []


def test_send_accepts_the_longest_body(client, plaintext, scheduled):
    response = send(client, plaintext, {**VALID, "body": "x" * 1600})

    assert response.status_code == 202


def test_send_refuses_invalid_json(client, plaintext):
    response = send(client, plaintext, '{"to": "+14155550132", "body": ')

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert Message.objects.count() == 0


def test_send_refuses_an_overlong_idempotency_key(client, plaintext):
    response = send(client, plaintext, VALID, **{"Idempotency-Key": "k" * 256})

    assert_invalid(response, "Idempotency-Key")


# 401 / 403 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Api-Key", "Api-Key ", "Token abc.def", "Basic dXNlcjpwYXNz", "Api-Key nope.nope"],
    ids=["none", "keyword-only", "empty-key", "other-keyword", "basic", "unknown-key"],
)
def test_requests_without_a_valid_key_are_unauthorized(client, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = client.post(
        MESSAGES, json.dumps(VALID), content_type="application/json", headers=headers
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="api"'
    assert set(response.json()) == {"error", "message"}
    assert Message.objects.count() == 0


def test_a_wrong_secret_for_a_real_prefix_is_unauthorized(client, api_key):
    key, _ = api_key

    response = send(client, f"{key.prefix}.wrongsecret", VALID)

    assert response.status_code == 401


def test_a_revoked_key_is_unauthorized(client, api_key):
    key, plaintext = api_key
    ApiKey.objects.filter(pk=key.pk).update(revoked=True)

    response = send(client, plaintext, VALID)

    assert response.status_code == 401
    assert "revoked" in response.json()["message"]
    assert Message.objects.count() == 0


def test_an_expired_key_is_unauthorized(client):
    key, plaintext = make_key(expiry_date=timezone.now() - timedelta(minutes=1))

    response = send(client, plaintext, VALID)

    assert response.status_code == 401
    assert "expired" in response.json()["message"]
    assert Message.objects.count() == 0
    key.refresh_from_db()
    assert key.last_used_at is None


def test_sending_needs_the_send_scope(client):
    _, plaintext = make_key(scopes=["read", "contacts"])

    response = send(client, plaintext, VALID)

    assert response.status_code == 403
    assert response.json() == {
        "error": "permission_denied",
        "message": "This API key lacks the 'send' scope.",
    }
    assert Message.objects.count() == 0


def test_reading_needs_the_read_scope(client):
    message = MessageFactory(batch=BatchFactory(kind=Batch.Kind.API))
    _, plaintext = make_key(scopes=["send"])

    assert read(client, plaintext).status_code == 403
    assert read(client, plaintext, f"{MESSAGES}/{message.pk}").status_code == 403


# 404 / 409 ------------------------------------------------------------------------------


def test_an_unknown_message_is_not_found(client, plaintext):
    response = read(client, plaintext, f"{MESSAGES}/999999999")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("path", [f"{MESSAGES}/abc", f"{MESSAGES}/-1", "/api/v1/nothing-here"])
def test_a_path_the_api_does_not_have_is_a_json_404(client, plaintext, path):
    response = read(client, plaintext, path)

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_opted_out_number_is_a_conflict_and_nothing_is_created(client, plaintext, scheduled):
    OptOutFactory(phone="+14155550132")

    response = send(client, plaintext, {**VALID, "to": "415-555-0132"})

    assert response.status_code == 409
    assert response.json()["error"] == "opted_out"
    assert "+14155550132 has opted out" in response.json()["message"]
    assert Message.objects.count() == 0
    assert Batch.objects.count() == 0
    assert scheduled == []


def test_a_suppressed_number_is_a_conflict_and_nothing_is_created(client, plaintext, scheduled):
    SuppressionFactory(phone="+14155550132")

    response = send(client, plaintext, VALID)

    assert response.status_code == 409
    assert response.json()["error"] == "suppressed"
    assert "suppressed" in response.json()["message"]
    assert Message.objects.count() == 0
    assert scheduled == []


def test_a_conflict_with_an_idempotency_key_is_not_stored(client, plaintext, scheduled):
    OptOutFactory(phone="+14155550132")

    response = send(client, plaintext, VALID, **{"Idempotency-Key": "order-1"})

    assert response.status_code == 409
    assert IdempotentRequest.objects.count() == 0


# 429 ------------------------------------------------------------------------------------


def test_requests_past_the_keys_rate_are_throttled_with_retry_after(client, scheduled):
    key, plaintext = make_key(rate_limit_per_minute=3)
    clear_rate_counters(key.prefix)
    try:
        answers = [read(client, plaintext) for _ in range(3)]
        throttled = send(client, plaintext, VALID)
    finally:
        clear_rate_counters(key.prefix)

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert Message.objects.count() == 0


def test_a_keys_rate_counter_expires_after_its_minute(client, api_key, scheduled):
    key, plaintext = api_key
    read(client, plaintext)
    read(client, plaintext)
    store = rate_counters()
    (counter,) = store.scan_iter(f"smsadmin:api-rate:{key.prefix}:*")
    assert int(store.get(counter)) == 2
    assert 60 < store.ttl(counter) <= 120


# Idempotency ----------------------------------------------------------------------------


def test_a_retry_replays_the_first_answer_and_creates_nothing(
    client, plaintext, scheduled, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = send(client, plaintext, VALID, **{"Idempotency-Key": "order-1"})
    with django_capture_on_commit_callbacks(execute=True):
        retry = send(client, plaintext, VALID, **{"Idempotency-Key": "order-1"})

    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert retry["Location"] == first["Location"]
    assert not first.has_header("Idempotent-Replayed")
    assert Message.objects.count() == 1
    assert len(scheduled) == 1


def test_an_idempotency_key_reused_with_another_body_is_refused(client, plaintext, scheduled):
    send(client, plaintext, VALID, **{"Idempotency-Key": "order-1"})

    response = send(client, plaintext, {**VALID, "body": "Other"}, **{"Idempotency-Key": "order-1"})

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert Message.objects.count() == 1


def test_idempotency_keys_of_different_api_keys_are_independent(client, plaintext, scheduled):
    other_key, other = make_key()
    try:
        first = send(client, plaintext, VALID, **{"Idempotency-Key": "order-1"})
        second = send(client, other, VALID, **{"Idempotency-Key": "order-1"})
    finally:
        clear_rate_counters(other_key.prefix)

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert not second.has_header("Idempotent-Replayed")
    assert Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_create_exactly_one_message(scheduled):
    key, plaintext = make_key()
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    responses: list = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            responses.append(send(Client(), plaintext, VALID, **{"Idempotency-Key": "race"}))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(threads_count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        clear_rate_counters(key.prefix)

    assert errors == []
    assert [response.status_code for response in responses] == [202] * threads_count
    assert len({response.json()["id"] for response in responses}) == 1
    assert Message.objects.count() == 1
    assert sum(response.has_header("Idempotent-Replayed") for response in responses) == (
        threads_count - 1
    )


# Reading --------------------------------------------------------------------------------


def test_detail_shows_the_error_of_a_failed_message(client, plaintext):
    message = MessageFactory(
        batch=BatchFactory(kind=Batch.Kind.API),
        status=Message.Status.FAILED,
        error_code=21610,
        failed_at=timezone.now(),
    )

    response = read(client, plaintext, f"{MESSAGES}/{message.pk}")

    assert response.status_code == 200
    data = response.json()
    assert data["id"] == message.pk
    assert data["status"] == "failed"
    assert data["error_code"] == 21610
    assert data["error_reason"] == "The recipient replied STOP to this sender"
    assert data["failed_at"] is not None


def test_list_filters_by_status_and_since(client, plaintext):
    batch = BatchFactory(kind=Batch.Kind.API)
    now = timezone.now()
    old = MessageFactory(batch=batch, created_at=now - timedelta(days=2))
    new = MessageFactory(batch=batch, created_at=now)
    failed = MessageFactory(batch=batch, created_at=now, status=Message.Status.FAILED)

    everything = read(client, plaintext).json()
    failures = read(client, plaintext, status="failed").json()
    recent = read(client, plaintext, since=(now - timedelta(hours=1)).isoformat()).json()

    assert [row["id"] for row in everything["results"]] == [failed.pk, new.pk, old.pk]
    assert [row["id"] for row in failures["results"]] == [failed.pk]
    assert [row["id"] for row in recent["results"]] == [failed.pk, new.pk]


def test_list_pages_with_a_cursor(client, plaintext):
    batch = BatchFactory(kind=Batch.Kind.API)
    messages = MessageFactory.create_batch(5, batch=batch)
    newest_first = [message.pk for message in reversed(messages)]

    first = read(client, plaintext, page_size="2").json()
    second = client.get(first["next"], headers={"Authorization": f"Api-Key {plaintext}"}).json()

    assert [row["id"] for row in first["results"]] == newest_first[:2]
    assert first["previous"] is None
    assert [row["id"] for row in second["results"]] == newest_first[2:4]
    assert second["next"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "lost"}, "status"), ({"since": "yesterday"}, "since")],
    ids=["status", "since"],
)
def test_list_refuses_invalid_filters(client, plaintext, params, field):
    response = read(client, plaintext, **params)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert field in response.json()["fields"]


def test_list_refuses_a_cursor_it_did_not_give(client, plaintext):
    response = read(client, plaintext, cursor="not-a-cursor")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert "cursor" in response.json()["fields"]


def test_invalid_json_is_answered_in_the_documented_error_shape(client, plaintext):
    response = send(client, plaintext, "\x00")

    assert response.status_code == 400
    assert response.json() == {
        "error": "parse_error",
        "message": "JSON parse error - Expecting value: line 1 column 1 (char 0)",
    }


def test_list_since_takes_a_moment_with_a_timezone(client, plaintext):
    MessageFactory(
        batch=BatchFactory(kind=Batch.Kind.API), created_at=datetime(2026, 1, 1, tzinfo=UTC)
    )

    response = read(client, plaintext, since="2026-01-01T00:00:00+00:00")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
