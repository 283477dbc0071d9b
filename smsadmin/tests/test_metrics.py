"""GET /metrics: Prometheus' text format, closed to strangers, and every product counter
moved by the event that drives it (by exactly as much)."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from campaigns.models import Campaign
from campaigns.tests.factories import CampaignFactory
from delivery.models import Batch, Message
from delivery.ratelimit import LocalRateLimiter
from delivery.suppression import Action, Block, create_blocks
from delivery.tests.factories import BatchFactory, MessageFactory
from members.models import OptOut
from members.services import opt_out_phone
from members.tests.factories import us_mobile

pytestmark = pytest.mark.django_db
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://sms.example.org"
STATUS_PATH = "/webhooks/twilio/status"
INBOUND_PATH = "/webhooks/twilio/inbound"
OUR_NUMBER = "+15005550006"
Status = Message.Status


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.SMS_SENDERS = [OUR_NUMBER]
    settings.SMS_DEFAULT_SENDER = OUR_NUMBER
    settings.TWILIO_ADVANCED_OPT_OUT = False
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1/32", "::1"]
    settings.METRICS_TRUSTED_PROXY_COUNT = 0


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def signed_post(client, path, data, *, token=AUTH_TOKEN):
    signature = RequestValidator(token).compute_signature(PUBLIC + path, data)
    return client.post(path, data, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def accepted_message():
    return MessageFactory(status=Status.ACCEPTED, provider_sid="SM" + "7" * 32)


# --- The format ------------------------------------------------------------------------


def test_the_endpoint_speaks_prometheus_text_format_with_django_and_product_metrics(
    client, admin_client
):
    admin_client.get("/admin/")  # a request through the whole stack, for django-prometheus
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {
        family.name: family for family in text_string_to_metric_families(response.content.decode())
    }
    for name in (
        "django_http_requests_total_by_view_transport_method",
        "django_http_responses_total_by_status_view_method",
        "django_http_requests_latency_seconds_by_view_method",
        "django_http_requests_before_middlewares",
        "django_db_execute",  # the database metrics, from django-prometheus' backend
        "smsadmin_messages",
        "smsadmin_provider_send_seconds",
        "smsadmin_message_processing_seconds",
        "smsadmin_pending_messages",
        "smsadmin_oldest_pending_message_age_seconds",
        "smsadmin_campaigns",
        "smsadmin_campaign_messages",
    ):
        assert name in families, name
    assert families["smsadmin_messages"].type == "counter"
    assert families["smsadmin_provider_send_seconds"].type == "histogram"
    assert families["smsadmin_pending_messages"].type == "gauge"


# --- Access ----------------------------------------------------------------------------


def test_an_allowed_address_needs_no_token(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_another_address_is_refused_without_the_metrics(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert b"smsadmin_" not in response.content


def test_the_right_token_opens_it_from_anywhere(client):
    response = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token"
    )
    assert response.status_code == 200
    assert b"smsadmin_pending_messages" in response.content


@pytest.mark.parametrize(
    "authorization", ["Bearer wrong", "Basic czNjcmV0LW1ldHJpY3MtdG9rZW4=", "Bearer "]
)
def test_a_wrong_token_is_a_401_even_from_an_allowed_address(client, authorization):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    assert b"smsadmin_" not in response.content


def test_no_token_configured_means_no_token_opens_it(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401


def test_behind_a_proxy_the_forwarded_client_address_decides(client, settings):
    settings.METRICS_TRUSTED_PROXY_COUNT = 1
    # The local nginx connects from 127.0.0.1 for everyone: that must not open it.
    outside = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert outside.status_code == 403
    spoofed = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 198.51.100.7"
    )
    assert spoofed.status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


# --- Status callbacks ------------------------------------------------------------------


def test_a_status_callback_counts_the_status_reached_and_the_webhook(client, accepted_message):
    before = scrape(client)

    response = signed_post(
        client,
        STATUS_PATH,
        {"MessageSid": accepted_message.provider_sid, "MessageStatus": "delivered"},
    )
    assert response.status_code == 200
    # A repeat changes no message: a webhook more, no status more.
    signed_post(
        client,
        STATUS_PATH,
        {"MessageSid": accepted_message.provider_sid, "MessageStatus": "delivered"},
    )
    # Late and out of order: "sent" after "delivered" changes nothing either.
    signed_post(
        client, STATUS_PATH, {"MessageSid": accepted_message.provider_sid, "MessageStatus": "sent"}
    )
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("smsadmin_messages_total", status="delivered", kind="campaign") == 1
    assert moved("smsadmin_messages_total", status="sent", kind="campaign") == 0
    assert moved("smsadmin_webhooks_total", type="status", result="ok") == 3


def test_a_failed_callback_counts_its_error_code(client, accepted_message):
    before = scrape(client)
    signed_post(
        client,
        STATUS_PATH,
        {
            "MessageSid": accepted_message.provider_sid,
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
        },
    )
    after = scrape(client)
    assert (
        value(after, "smsadmin_messages_total", status="undelivered", kind="campaign")
        - value(before, "smsadmin_messages_total", status="undelivered", kind="campaign")
        == 1
    )
    assert (
        value(after, "smsadmin_provider_errors_total", code="30003")
        - value(before, "smsadmin_provider_errors_total", code="30003")
        == 1
    )


def test_refused_and_invalid_webhooks_are_counted_as_such(client, accepted_message):
    before = scrape(client)
    data = {"MessageSid": accepted_message.provider_sid, "MessageStatus": "delivered"}
    assert signed_post(client, STATUS_PATH, data, token="f" * 32).status_code == 403
    assert client.post(STATUS_PATH, data).status_code == 403
    assert signed_post(client, STATUS_PATH, {"MessageSid": "SM1"}).status_code == 400
    assert signed_post(client, INBOUND_PATH, {"Body": "hi"}).status_code == 400
    after = scrape(client)

    def moved(**labels):
        return value(after, "smsadmin_webhooks_total", **labels) - value(
            before, "smsadmin_webhooks_total", **labels
        )

    assert moved(type="status", result="rejected") == 2
    assert moved(type="status", result="invalid") == 1
    assert moved(type="inbound", result="invalid") == 1
    assert moved(type="status", result="ok") == 0
    assert value(after, "smsadmin_messages_total", status="delivered", kind="campaign") == value(
        before, "smsadmin_messages_total", status="delivered", kind="campaign"
    )


def test_a_webhook_that_breaks_is_counted_as_an_error(client, accepted_message, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("delivery.webhooks.record_provider_status", broken)
    client.raise_request_exception = False
    before = scrape(client)
    response = signed_post(
        client,
        STATUS_PATH,
        {"MessageSid": accepted_message.provider_sid, "MessageStatus": "delivered"},
    )
    assert response.status_code == 500
    after = scrape(client)
    assert (
        value(after, "smsadmin_webhooks_total", type="status", result="error")
        - value(before, "smsadmin_webhooks_total", type="status", result="error")
        == 1
    )


# --- Opt-outs and suppressions ---------------------------------------------------------


def test_a_stop_text_counts_one_keyword_opt_out(
    client, django_capture_on_commit_callbacks, enqueued
):
    before = scrape(client)
    data = {
        "MessageSid": "SM" + "4" * 32,
        "From": us_mobile(1),
        "To": OUR_NUMBER,
        "Body": "STOP",
        "NumMedia": "0",
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_post(client, INBOUND_PATH, data).status_code == 200
        signed_post(client, INBOUND_PATH, {**data, "MessageSid": "SM" + "5" * 32})  # again
    after = scrape(client)
    assert (
        value(after, "smsadmin_opt_outs_total", source="keyword")
        - value(before, "smsadmin_opt_outs_total", source="keyword")
        == 1
    )
    assert (
        value(after, "smsadmin_webhooks_total", type="inbound", result="ok")
        - value(before, "smsadmin_webhooks_total", type="inbound", result="ok")
        == 2
    )


def test_opt_outs_count_once_per_phone_by_source(client):
    before = scrape(client)
    assert opt_out_phone(phone=us_mobile(2), source=OptOut.Source.STAFF, reason="asked")
    assert opt_out_phone(phone=us_mobile(2), source=OptOut.Source.STAFF, reason="again") is None
    assert opt_out_phone(phone=us_mobile(3), source=OptOut.Source.API, reason="form")
    after = scrape(client)

    def moved(source):
        return value(after, "smsadmin_opt_outs_total", source=source) - value(
            before, "smsadmin_opt_outs_total", source=source
        )

    assert (moved("staff"), moved("api")) == (1, 1)


def test_suppressions_count_the_ones_written_by_reason(client):
    before = scrape(client)
    block = Block(phone=us_mobile(4), action=Action.SUPPRESS, reason="invalid", error_codes=[21211])
    assert create_blocks(blocks=[block]) == [block]
    assert create_blocks(blocks=[block]) == []  # already suppressed: nothing written
    after = scrape(client)
    assert (
        value(after, "smsadmin_suppressions_total", reason="invalid")
        - value(before, "smsadmin_suppressions_total", reason="invalid")
        == 1
    )


# --- Sending ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sends_count_accepted_and_failed_with_their_times_and_codes(client, fake_twilio, settings):
    from delivery.sending import send_due_messages

    settings.SMS_RATE_LIMIT_PER_SECOND = 10_000
    batch = BatchFactory(kind=Batch.Kind.API)
    bad, *_ = MessageFactory.create_batch(4, batch=batch)
    fake_twilio.fail_numbers(bad.phone, status=400, code=21211)
    before = scrape(client)

    send_due_messages(batch_id=batch.pk, max_messages=10)

    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("smsadmin_messages_total", status="accepted", kind="api") == 3
    assert moved("smsadmin_messages_total", status="failed", kind="api") == 1
    assert moved("smsadmin_provider_errors_total", code="21211") == 1
    assert moved("smsadmin_provider_send_seconds_count") == 4
    assert moved("smsadmin_message_processing_seconds_count") == 3


def test_a_send_that_waits_for_the_rate_limit_is_counted(client, settings):
    settings.SMS_RATE_LIMIT_PER_SECOND = 1000  # sends 1 ms apart: the second one waits
    before = scrape(client)

    async def two_sends():
        limiter = LocalRateLimiter()
        await limiter.acquire(OUR_NUMBER, 1)
        await limiter.acquire(OUR_NUMBER, 1)
        return limiter.waits

    waits = asyncio.run(two_sends())
    after = scrape(client)
    assert waits >= 1
    assert (
        value(after, "smsadmin_rate_limit_waits_total", sender=OUR_NUMBER)
        - value(before, "smsadmin_rate_limit_waits_total", sender=OUR_NUMBER)
        == waits
    )


# --- Read at scrape time ---------------------------------------------------------------


def test_pending_messages_and_the_oldest_due_one_are_read_at_scrape_time(client):
    assert value(scrape(client), "smsadmin_pending_messages") == 0
    assert value(scrape(client), "smsadmin_oldest_pending_message_age_seconds") == 0
    now = timezone.now()
    MessageFactory(created_at=now - timedelta(minutes=10))
    # Held for later (quiet hours, a schedule): pending, but not late.
    MessageFactory(created_at=now - timedelta(hours=5), send_after=now + timedelta(hours=1))
    MessageFactory(status=Status.DELIVERED, created_at=now - timedelta(days=1))

    samples = scrape(client)

    assert value(samples, "smsadmin_pending_messages") == 2
    age = value(samples, "smsadmin_oldest_pending_message_age_seconds")
    assert 600 <= age < 700


def test_campaign_gauges_show_states_and_the_messages_of_those_sending(client):
    sending = CampaignFactory(state=Campaign.State.SENDING, batch=BatchFactory())
    MessageFactory.create_batch(3, batch=sending.batch, status=Status.DELIVERED)
    MessageFactory(batch=sending.batch, status=Status.PENDING)
    done = CampaignFactory(state=Campaign.State.DONE, batch=BatchFactory())
    MessageFactory(batch=done.batch, status=Status.DELIVERED)
    CampaignFactory(state=Campaign.State.DRAFT)

    samples = scrape(client)

    assert value(samples, "smsadmin_campaigns", state="sending") == 1
    assert value(samples, "smsadmin_campaigns", state="done") == 1
    assert value(samples, "smsadmin_campaigns", state="draft") == 1
    assert value(samples, "smsadmin_campaigns", state="canceled") == 0
    campaign = str(sending.pk)
    assert value(samples, "smsadmin_campaign_messages", campaign=campaign, status="delivered") == 3
    assert value(samples, "smsadmin_campaign_messages", campaign=campaign, status="pending") == 1
    assert not any(
        name == "smsadmin_campaign_messages" and ("campaign", str(done.pk)) in labels
        for name, labels in samples
    )


def test_heartbeat_ages_are_exported_when_known(client, monkeypatch):
    heartbeats = types.ModuleType("smsadmin.heartbeats")
    heartbeats.worker_heartbeat_age = lambda: 12.5
    heartbeats.beat_heartbeat_age = lambda: None  # never seen: nothing rather than a guess
    monkeypatch.setitem(sys.modules, "smsadmin.heartbeats", heartbeats)
    monkeypatch.setattr("smsadmin.heartbeats", heartbeats, raising=False)

    samples = scrape(client)

    assert value(samples, "smsadmin_worker_heartbeat_age_seconds") == 12.5
    assert ("smsadmin_beat_heartbeat_age_seconds", frozenset()) not in samples
