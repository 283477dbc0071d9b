"""Hostile bodies for Twilio's webhooks, signed (so they pass the signature check) and
unsigned: a 2xx for what Twilio could send, a 4xx for the rest, never a 500, and an
invalid one changes nothing."""

# Full-width letters are the point of one case.
# ruff: noqa: RUF001

from __future__ import annotations

import json

import pytest
from django.test import Client

from delivery.models import Batch, EarlyStatus, InboundMessage, Message
from delivery.tests.factories import MessageFactory
from members.models import Member, OptOut
from smsadmin.testing.wsgi_client import WsgiClient
from tests.hostile.conftest import twilio_signature

pytestmark = pytest.mark.django_db
STATUS = "/webhooks/twilio/status"
INBOUND = "/webhooks/twilio/inbound"
SID = "SM" + "1" * 32
INBOUND_SID = "SM" + "2" * 32
PHONE = "+14155550100"


@pytest.fixture(autouse=True)
def settings_for_twilio(twilio_settings):
    return twilio_settings


@pytest.fixture(params=["view", "wsgi"])
def client(request) -> Client | WsgiClient:
    """Django's test client (the views) and the WSGI application gunicorn serves (where
    delivery.status_lane answers form POSTs to the status webhook)."""
    if request.param == "wsgi":
        return WsgiClient()
    # A crash must show as the 500 a real request would get, not as an exception.
    return Client(raise_request_exception=False)


@pytest.fixture
def message() -> Message:
    return MessageFactory(status=Message.Status.ACCEPTED, provider_sid=SID, phone=PHONE)


def signed_post(client: Client, path: str, data: dict[str, str]):
    return client.post(path, data, headers={"X-Twilio-Signature": twilio_signature(path, data)})


def state() -> tuple:
    return (
        list(Message.objects.order_by("pk").values_list("status", "error_code", "error_message")),
        EarlyStatus.objects.count(),
        InboundMessage.objects.count(),
        OptOut.objects.count(),
        Member.objects.count(),
        Batch.objects.count(),
    )


def inbound(**fields: str) -> dict[str, str]:
    return {"MessageSid": INBOUND_SID, "From": PHONE, "To": "+15005550006", "Body": "hi", **fields}


# --- Unsigned or wrongly signed: refused, nothing changed ---------------------------------


@pytest.mark.parametrize("path", [STATUS, INBOUND])
@pytest.mark.parametrize(
    ("body", "content_type", "headers"),
    [
        ("", "application/x-www-form-urlencoded", {}),
        ("MessageSid=SMx&MessageStatus=delivered", "application/x-www-form-urlencoded", {}),
        (
            "MessageSid=SMx&MessageStatus=delivered",
            "application/x-www-form-urlencoded",
            {"X-Twilio-Signature": "\u202e" + "A" * 10_000},
        ),
        ('{"MessageSid": "SMx"}', "application/json", {"X-Twilio-Signature": "x"}),
        (b"\xff\xfe\x00garbage", "application/octet-stream", {}),
    ],
    ids=["empty", "no-signature", "huge-signature", "json", "binary"],
)
def test_an_unsigned_request_is_refused_and_changes_nothing(
    client, message, path, body, content_type, headers
):
    before = state()
    response = client.post(path, body, content_type=content_type, headers=headers)
    assert response.status_code == 403
    assert state() == before


def test_a_get_is_not_allowed(client):
    assert client.get(STATUS).status_code == 405
    assert client.get(INBOUND).status_code == 405


# --- Signed, but not what Twilio sends ------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"MessageSid": SID},
        {"MessageStatus": "delivered"},
        {"MessageSid": "", "MessageStatus": "delivered"},
        {"MessageSid": "S" * 10_000, "MessageStatus": "delivered"},
        {"MessageSid": SID, "MessageStatus": "delivered\x00"},
        {"MessageSid": SID + "\x00", "MessageStatus": "delivered"},
    ],
    ids=["empty", "no-status", "no-sid", "blank-sid", "10k-sid", "nul-status", "nul-sid"],
)
def test_a_signed_status_callback_without_valid_fields_is_a_400_and_changes_nothing(
    client, message, data
):
    before = state()
    response = signed_post(client, STATUS, data)
    assert response.status_code == 400
    assert state() == before


@pytest.mark.parametrize(
    "error_code",
    ["x", "abc", "-1", "3.5", "²", "١٢", "9" * 5000, "99999999999999999999", "", " 30006 "],
)
def test_a_status_callback_with_a_strange_error_code_is_recorded_without_it(
    client, message, error_code
):
    response = signed_post(
        client,
        STATUS,
        {"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": error_code},
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code in (None, 30006)


def test_a_status_callback_for_an_unknown_sid_with_a_huge_error_code_answers_200(client):
    response = signed_post(
        client,
        STATUS,
        {"MessageSid": "SM" + "9" * 32, "MessageStatus": "failed", "ErrorCode": "9" * 20},
    )
    assert response.status_code == 200
    assert EarlyStatus.objects.get().error_code is None


def test_a_status_callback_with_a_huge_unicode_error_message_is_kept_short(client, message):
    response = signed_post(
        client,
        STATUS,
        {
            "MessageSid": SID,
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
            "ErrorMessage": "\u202e😀\u200d" * 100_000,
        },
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.UNDELIVERED
    assert len(message.error_message) <= 255


def test_a_status_callback_with_an_unknown_status_changes_nothing(client, message):
    before = state()
    response = signed_post(client, STATUS, {"MessageSid": SID, "MessageStatus": "\u202eDELIVERED"})
    assert response.status_code < 500
    assert state() == before


def test_ten_thousand_fields_are_refused_with_a_400(client, message):
    data = {f"Field{number}": "x" for number in range(10_000)}
    data.update(MessageSid=SID, MessageStatus="delivered")
    before = state()
    for path in (STATUS, INBOUND):
        response = signed_post(client, path, data)
        assert response.status_code == 400
    assert state() == before


def test_a_signed_json_body_is_a_400_and_changes_nothing(client, message):
    body = json.dumps({"MessageSid": SID, "MessageStatus": "delivered", "From": PHONE})
    before = state()
    for path in (STATUS, INBOUND):
        response = client.post(
            path,
            body,
            content_type="application/json",
            headers={"X-Twilio-Signature": twilio_signature(path, {})},
        )
        assert response.status_code == 400
    assert state() == before


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"MessageSid": INBOUND_SID},
        {"From": PHONE, "Body": "STOP"},
        {"MessageSid": "S" * 10_000, "From": PHONE, "Body": "STOP"},
        {"MessageSid": INBOUND_SID, "From": PHONE, "Body": "STOP\x00"},
        {"MessageSid": INBOUND_SID, "From": PHONE + "\x00", "Body": "STOP"},
        {"MessageSid": INBOUND_SID, "From": PHONE, "To": "\x00", "Body": "hi"},
    ],
    ids=["empty", "no-from", "no-sid", "10k-sid", "nul-body", "nul-from", "nul-to"],
)
def test_a_signed_inbound_text_without_valid_fields_is_a_400_and_changes_nothing(client, data):
    before = state()
    response = signed_post(client, INBOUND, data)
    assert response.status_code == 400
    assert state() == before


@pytest.mark.parametrize("num_media", ["abc", "-1", "²", "9" * 5000, "99999999999", "", "3.0"])
def test_an_inbound_text_with_a_strange_num_media_is_recorded(client, num_media):
    response = signed_post(client, INBOUND, inbound(NumMedia=num_media))
    assert response.status_code == 200
    assert 0 <= InboundMessage.objects.get().num_media <= 32767


def test_an_inbound_text_with_a_megabyte_body_is_recorded_whole(client):
    body = "x" * (1024 * 1024)
    response = signed_post(client, INBOUND, inbound(Body=body))
    assert response.status_code == 200
    assert InboundMessage.objects.get().body == body


def test_an_inbound_text_from_a_huge_or_strange_sender_is_recorded_without_a_phone(client):
    response = signed_post(client, INBOUND, inbound(From="\u202e" + "+1" * 50_000, To="x" * 500))
    assert response.status_code == 200
    recorded = InboundMessage.objects.get()
    assert (recorded.from_phone, len(recorded.from_raw), len(recorded.to)) == ("", 64, 64)


def test_an_inbound_text_delivered_twice_is_recorded_once(client):
    for _ in range(2):
        assert signed_post(client, INBOUND, inbound(Body="STOP")).status_code == 200
    assert InboundMessage.objects.count() == 1
    assert OptOut.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "opts_out"),
    [
        ("ＳＴＯＰ", True),  # full-width letters fold to STOP
        ("stop", True),
        (" STOP\n", True),
        ("STOP 🛑", True),  # flagged as a stop request (auto opt-out is a setting)
        # Invisible characters and combining marks around or in STOP still opt out.
        ("\u200dSTOP\u200d", True),
        ("\u202eSTOP", True),
        ("S\u0301TOP", True),
        ("\u2066STOP\u2069", True),
        ("😀" * 1000, False),
        ("e\u0301" * 10_000, False),
    ],
    ids=[
        "full-width", "lower", "spaces", "emoji", "zero-width-joiners", "rtl-override",
        "combining", "isolates", "emoji-flood", "combining-flood",
    ],
)  # fmt: skip
def test_unicode_tricks_around_stop_are_recorded_and_answered(client, settings, body, opts_out):
    settings.INBOUND_AUTO_OPT_OUT_ON_STOP_REQUESTS = True
    response = signed_post(client, INBOUND, inbound(Body=body))
    assert response.status_code == 200
    recorded = InboundMessage.objects.get()
    assert recorded.body == body
    is_opted_out = OptOut.objects.active().filter(phone=PHONE).exists()
    if opts_out is not None:
        assert is_opted_out is opts_out
