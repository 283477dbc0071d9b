"""The status lane answers Twilio's form POSTs itself, hands everything else to Django,
and counts in the metrics as a request through Django would."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import psycopg
import pytest
from django.db import connection
from prometheus_client import REGISTRY
from twilio.request_validator import RequestValidator

from delivery.models import Message
from delivery.status_lane import StatusCallbackLane
from delivery.tests.factories import MessageFactory
from smsadmin.testing.wsgi_client import WsgiClient

pytestmark = pytest.mark.django_db
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://sms.example.org"
PATH = "/webhooks/twilio/status"
FORM = "application/x-www-form-urlencoded"
VIEW = "delivery:twilio-status"


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC


@pytest.fixture
def message() -> Message:
    return MessageFactory(status=Message.Status.ACCEPTED, provider_sid="SM" + "4" * 32)


class Django:
    """Stands in for Django's handler: records what reached it, answers 418."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        self.paths.append(environ["PATH_INFO"])
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return [b"django"]


@pytest.fixture
def django_app() -> Django:
    return Django()


@pytest.fixture
def lane_client(django_app) -> WsgiClient:
    client = WsgiClient()
    client.application = StatusCallbackLane(django_app)
    return client


def fields_for(message: Message, status: str = "delivered") -> dict[str, str]:
    return {"MessageSid": message.provider_sid, "MessageStatus": status}


def signature(data: dict[str, str], *, url: str = PUBLIC + PATH) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(url, data)


def test_a_signed_form_post_is_answered_by_the_lane_alone(lane_client, django_app, message):
    data = fields_for(message)
    response = lane_client.post(PATH, data, headers={"X-Twilio-Signature": signature(data)})
    assert response.status_code == 200
    assert response["Content-Length"] == "0"
    assert django_app.paths == []
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_a_form_in_utf8_with_its_charset_named_is_the_lanes_too(lane_client, django_app, message):
    data = fields_for(message)
    response = lane_client.post(
        PATH,
        urlencode(data),
        content_type=FORM + "; charset=UTF-8",
        headers={"X-Twilio-Signature": signature(data)},
    )
    assert response.status_code == 200
    assert django_app.paths == []


def test_the_query_string_is_part_of_what_twilio_signed(lane_client, message):
    data = fields_for(message)
    signed = signature(data, url=PUBLIC + PATH + "?attempt=2")
    wrong = lane_client.post(PATH + "?attempt=3", data, headers={"X-Twilio-Signature": signed})
    assert wrong.status_code == 403
    right = lane_client.post(PATH + "?attempt=2", data, headers={"X-Twilio-Signature": signed})
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("get", PATH, None, FORM),
        ("post", PATH, '{"MessageSid": "SM1"}', "application/json"),
        ("post", PATH, "MessageSid=SM1", FORM + "; charset=iso-8859-1"),
        ("post", PATH, "MessageSid=SM1", "multipart/form-data; boundary=x"),
        ("post", PATH + "/", "MessageSid=SM1", FORM),
        ("post", "/webhooks/twilio/inbound", "MessageSid=SM1", FORM),
        ("post", "/admin/", "MessageSid=SM1", FORM),
    ],
    ids=["get", "json", "latin-1", "multipart", "other-path", "inbound", "admin"],
)
def test_anything_but_a_utf8_form_post_to_the_status_url_goes_to_django(
    lane_client, django_app, message, method, path, body, content_type
):
    if method == "get":
        response = lane_client.get(path)
    else:
        response = lane_client.post(path, body, content_type=content_type)
    assert (response.status_code, response.content) == (418, b"django")
    assert django_app.paths == [path]
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED


def test_a_body_over_djangos_limit_goes_to_django(lane_client, django_app, settings, message):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
    data = {**fields_for(message), "Padding": "x" * 100}
    response = lane_client.post(PATH, data, headers={"X-Twilio-Signature": signature(data)})
    assert response.status_code == 418
    assert django_app.paths == [PATH]


@pytest.mark.parametrize(
    "environ",
    # A WSGI server puts raw bytes in QUERY_STRING latin-1 decoded.
    [{"QUERY_STRING": "q=\xe9"}, {"SCRIPT_NAME": "/sms"}],
    ids=["non-ascii-query", "mounted-under-a-prefix"],
)
def test_a_request_only_django_can_read_rightly_goes_to_django(lane_client, django_app, environ):
    response = lane_client.post(PATH, "MessageSid=SM1", content_type=FORM, **environ)
    assert response.status_code == 418
    assert django_app.paths == [PATH]


def test_plain_http_goes_to_django_when_only_https_is_served(
    lane_client, django_app, settings, message
):
    settings.SECURE_SSL_REDIRECT = True
    data = fields_for(message)
    signed = {"X-Twilio-Signature": signature(data)}
    assert lane_client.post(PATH, data, headers=signed).status_code == 418
    behind_tls = lane_client.post(PATH, data, headers=signed, HTTP_X_FORWARDED_PROTO="https")
    assert behind_tls.status_code == 200
    assert django_app.paths == [PATH]


def test_more_fields_than_djangos_limit_are_a_400_and_change_nothing(
    lane_client, settings, message
):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    data = {**fields_for(message), "To": "+14155550100", "From": "+15005550006"}
    response = lane_client.post(PATH, data, headers={"X-Twilio-Signature": signature(data)})
    assert response.status_code == 400
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED


def test_a_crash_is_a_logged_500_counted_for_the_view(lane_client, message, monkeypatch, caplog):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("delivery.status_lane.answer_status_callback", crash)
    before = responses(status="500")
    data = fields_for(message)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = lane_client.post(PATH, data, headers={"X-Twilio-Signature": signature(data)})
    assert response.status_code == 500
    assert "Internal Server Error: /webhooks/twilio/status" in caplog.text
    assert "RuntimeError: boom" in caplog.text
    assert responses(status="500") == before + 1


def responses(*, status: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "django_http_responses_total_by_status_view_method_total",
            {"status": status, "view": VIEW, "method": "POST"},
        )
        or 0.0
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# What a request to the view counts: each name and labels, as Prometheus reads them.
COUNTED = {
    "requests": (
        "django_http_requests_total_by_view_transport_method_total",
        {"view": VIEW, "transport": "https", "method": "POST"},
    ),
    "latency": (
        "django_http_requests_latency_seconds_by_view_method_count",
        {"view": VIEW, "method": "POST"},
    ),
    "ok": (
        "django_http_responses_total_by_status_view_method_total",
        {"view": VIEW, "method": "POST", "status": "200"},
    ),
    "refused": (
        "django_http_responses_total_by_status_view_method_total",
        {"view": VIEW, "method": "POST", "status": "403"},
    ),
    "all requests": ("django_http_requests_before_middlewares_total", {}),
    "webhooks ok": ("smsadmin_webhooks_total", {"type": "status", "result": "ok"}),
    "webhooks refused": ("smsadmin_webhooks_total", {"type": "status", "result": "rejected"}),
}


def counted() -> dict[str, float]:
    return {key: sample(name, **labels) for key, (name, labels) in COUNTED.items()}


def test_each_answer_counts_once_in_djangos_request_metrics(message):
    client = WsgiClient()  # the real application: Django's middleware would count too
    before = counted()
    data = fields_for(message)
    behind_tls = {"HTTP_X_FORWARDED_PROTO": "https"}
    signed = {"X-Twilio-Signature": signature(data)}
    assert client.post(PATH, data, headers=signed, **behind_tls).status_code == 200
    unsigned = {"X-Twilio-Signature": "x"}
    assert client.post(PATH, data, headers=unsigned, **behind_tls).status_code == 403
    after = counted()
    assert {key: after[key] - before[key] for key in COUNTED} == {
        "requests": 2,
        "latency": 2,
        "ok": 1,
        "refused": 1,
        "all requests": 2,
        "webhooks ok": 1,
        "webhooks refused": 1,
    }


@pytest.mark.django_db(transaction=True)
def test_a_dead_kept_connection_is_replaced_and_the_status_applied():
    """PostgreSQL restarted under a kept connection: one retry on a new one, not a 500."""
    message = MessageFactory(status=Message.Status.ACCEPTED, provider_sid="SM" + "5" * 32)
    connection.ensure_connection()
    doomed = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [doomed])
    data = fields_for(message)
    response = WsgiClient().post(PATH, data, headers={"X-Twilio-Signature": signature(data)})
    assert response.status_code == 200
    assert connection.connection.info.backend_pid != doomed
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
