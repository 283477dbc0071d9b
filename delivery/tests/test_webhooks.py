"""The status webhook opens only to Twilio's signature and never moves a message back.

Every case runs twice: through Django's test client (the view) and through the WSGI
application gunicorn serves, where delivery.status_lane answers Twilio's form POSTs."""

from __future__ import annotations

import logging

import pytest
from twilio.request_validator import RequestValidator

from delivery.models import Message
from delivery.tests.factories import MessageFactory
from smsadmin.testing.wsgi_client import WsgiClient

pytestmark = pytest.mark.django_db
AUTH_TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://sms.example.org"
PATH = "/webhooks/twilio/status"


@pytest.fixture(params=["view", "wsgi"])
def client(request, client):
    return client if request.param == "view" else WsgiClient()


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC


def signed_post(client, data, *, url=PUBLIC + PATH, token=AUTH_TOKEN):
    signature = RequestValidator(token).compute_signature(url, data)
    return client.post(PATH, data, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def message():
    return MessageFactory(status=Message.Status.ACCEPTED, provider_sid="SM" + "1" * 32)


def test_signed_callback_moves_the_message_forward(client, message):
    response = signed_post(
        client, {"MessageSid": message.provider_sid, "MessageStatus": "delivered"}
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_error_code_is_recorded(client, message):
    signed_post(
        client,
        {"MessageSid": message.provider_sid, "MessageStatus": "failed", "ErrorCode": "30006"},
    )
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, 30006)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}],
    ids=["missing", "wrong"],
)
def test_missing_or_wrong_signature_is_refused_and_changes_nothing(client, message, headers):
    data = {"MessageSid": message.provider_sid, "MessageStatus": "delivered"}
    response = client.post(PATH, data, headers=headers)
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED


def test_signature_from_another_token_is_refused(client, message):
    response = signed_post(
        client,
        {"MessageSid": message.provider_sid, "MessageStatus": "delivered"},
        token="f" * 32,
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED


def test_wrong_public_base_url_fails_closed_and_says_why(client, message, caplog):
    data = {"MessageSid": message.provider_sid, "MessageStatus": "delivered"}
    with caplog.at_level(logging.WARNING, logger="delivery.webhooks"):
        response = signed_post(client, data, url="http://internal:8000" + PATH)
    assert response.status_code == 403
    assert "PUBLIC_BASE_URL" in caplog.text
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED


def test_no_auth_token_configured_refuses_everything(client, message, settings):
    data = {"MessageSid": message.provider_sid, "MessageStatus": "delivered"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH, data)
    settings.TWILIO_AUTH_TOKEN = ""
    response = client.post(PATH, data, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_unknown_sid_answers_200_and_changes_nothing(client, message):
    response = signed_post(client, {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered"})
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED


def test_missing_fields_are_a_clear_400(client, message):
    response = signed_post(client, {"MessageStatus": "delivered"})
    assert response.status_code == 400
    assert b"MessageSid" in response.content


def test_out_of_order_callbacks_end_in_the_latest_state(client, message):
    for status in ["delivered", "sent", "queued"]:
        assert (
            signed_post(
                client, {"MessageSid": message.provider_sid, "MessageStatus": status}
            ).status_code
            == 200
        )
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_get_is_not_allowed(client):
    assert client.get(PATH).status_code == 405
