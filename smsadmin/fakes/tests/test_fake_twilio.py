"""The fake Twilio, exercised with the real twilio SDK and raw HTTP."""

from __future__ import annotations

import base64
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from smsadmin.fakes.twilio import FakeTwilio, twilio_client_for

SENDER = "+15005550006"
ALICE = "+14155550101"
BOB = "+14155550102"
SERVICE_SID = "MG" + "1" * 32
API_KEY_SID = "SK" + "2" * 32
API_KEY_SECRET = "api-key-secret"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(api_keys={API_KEY_SID: API_KEY_SECRET}, status_delay_ms=5, seed=7) as fake:
        yield fake


@pytest.fixture
def client(fake):
    return twilio_client_for(fake)


def _send(client, to: str = ALICE, **fields):
    fields.setdefault("from_", SENDER)
    fields.setdefault("body", "Hello from the garden")
    return client.messages.create(to=to, **fields)


def _raw(fake: FakeTwilio, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("auth", (fake.account_sid, fake.auth_token))
    return requests.request(method, fake.base_url + path, timeout=5, **kwargs)


def _messages_path(fake: FakeTwilio) -> str:
    return f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"


# --- creating messages ------------------------------------------------------------------


def test_create_returns_a_queued_message_like_twilio(fake, client) -> None:
    message = _send(client)

    assert fake.requests[0].status == 201
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert (message.to, message.from_, message.body) == (ALICE, SENDER, "Hello from the garden")
    assert message.account_sid == fake.account_sid
    assert message.num_segments == "1"
    assert message.num_media == "0"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert (message.price, message.error_code, message.error_message) == (None, None, None)
    assert message.date_sent is None  # Twilio sets it once the message has left
    assert abs(message.date_created - datetime.now(UTC)) < timedelta(seconds=5)
    assert message.uri == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{message.sid}.json"


def test_create_body_is_twilios_json_with_rfc2822_dates(fake) -> None:
    response = _raw(
        fake, "POST", _messages_path(fake), data={"To": ALICE, "From": SENDER, "Body": "€" * 81}
    )

    payload = response.json()
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000",
        payload["date_created"],
    )
    assert parsedate_to_datetime(payload["date_updated"]).tzinfo is not None
    assert payload["num_segments"] == "2"  # 81 euro signs are 162 GSM-7 septets
    assert payload["subresource_uris"] == {
        "media": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{payload['sid']}/Media.json"
    }
    assert payload["messaging_service_sid"] is None


def test_messaging_service_message_is_accepted_then_gets_a_sender(fake, client) -> None:
    message = client.messages.create(to=ALICE, messaging_service_sid=SERVICE_SID, body="Hi")

    assert (message.status, message.from_, message.num_segments) == ("accepted", None, "0")
    assert fake.wait_for_deliveries()
    delivered = client.messages(message.sid).fetch()
    assert (delivered.status, delivered.from_, delivered.num_segments) == (
        "delivered",
        SENDER,
        "1",
    )


def test_api_key_credentials_are_accepted(fake) -> None:
    client = twilio_client_for(fake, username=API_KEY_SID, password=API_KEY_SECRET)

    message = _send(client)

    assert message.status == "queued"
    assert fake.requests[0].auth_user == API_KEY_SID


@pytest.mark.parametrize(
    ("username", "password"),
    [("AC" + "9" * 32, "fakefakefakefakefakefakefakefake"), ("AC" + "0" * 32, "wrong-token")],
)
def test_wrong_credentials_are_refused_with_20003(fake, username, password) -> None:
    client = twilio_client_for(fake, username=username, password=password)

    with pytest.raises(TwilioRestException) as refused:
        _send(client)

    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert fake.messages == []
    assert [(r.status, r.auth_user, r.error_code) for r in fake.requests] == [
        (401, username, 20003)
    ]


def test_credentials_are_checked_even_when_encoded_differently(fake) -> None:
    encoded = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()

    accepted = _raw(
        fake, "GET", _messages_path(fake), auth=None, headers={"Authorization": f"basic  {encoded}"}
    )

    assert accepted.status_code == 200


def test_wrong_credentials_get_twilios_error_body(fake) -> None:
    response = _raw(fake, "POST", _messages_path(fake), auth=("AC" + "1" * 32, "nope"))

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "", "from_": SENDER, "body": "Hi"}, 21604),
        ({"to": ALICE, "from_": SENDER}, 21602),
        ({"to": ALICE, "body": "Hi"}, 21603),
        ({"to": "4155550101", "from_": SENDER, "body": "Hi"}, 21211),
        ({"to": "+1 415 555 0101", "from_": SENDER, "body": "Hi"}, 21211),
        ({"to": ALICE, "from_": "not a sender!", "body": "Hi"}, 21212),
        ({"to": ALICE, "messaging_service_sid": "MG123", "body": "Hi"}, 21701),
        ({"to": ALICE, "from_": SENDER, "body": "a" * 1601}, 21617),
        ({"to": ALICE, "from_": SENDER, "body": "Hi", "status_callback": "ftp://x"}, 21609),
    ],
)
def test_invalid_messages_are_refused_with_twilios_codes(fake, client, fields, code) -> None:
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(**fields)

    assert (refused.value.status, refused.value.code) == (400, code)
    assert fake.messages == []
    assert fake.requests[0].error_code == code


def test_alphanumeric_sender_and_short_code_are_valid_senders(client) -> None:
    assert _send(client, from_="GardenClub").status == "queued"
    assert _send(client, from_="12345").status == "queued"


# --- injected failures ------------------------------------------------------------------


def test_failing_numbers_are_refused_and_others_are_not(fake, client) -> None:
    fake.fail_numbers(BOB, status=400, code=21610)

    with pytest.raises(TwilioRestException) as refused:
        _send(client, to=BOB)
    accepted = _send(client, to=ALICE)

    assert (refused.value.status, refused.value.code) == (400, 21610)
    assert refused.value.msg.endswith("Attempt to send to unsubscribed recipient")
    assert [m.sid for m in fake.messages] == [accepted.sid]


def test_rate_limit_burst_then_success(fake, client) -> None:
    fake.rate_limit_next(2)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as limited:
            _send(client)
        assert (limited.value.status, limited.value.code) == (429, 20429)
    message = _send(client)

    assert [m.sid for m in fake.messages] == [message.sid]
    assert [r.status for r in fake.requests] == [429, 429, 201]


def _outcomes_with_server_errors(fake: FakeTwilio, client) -> list[int | tuple[int, int]]:
    fake.set_rules(server_error_fraction=0.5)
    outcomes: list[int | tuple[int, int]] = []
    for _ in range(20):
        try:
            _send(client)
            outcomes.append(201)
        except TwilioRestException as error:
            outcomes.append((error.status, error.code))
    return outcomes


def test_server_error_fraction_is_random_but_repeatable_with_a_seed(fake, client) -> None:
    first_run = _outcomes_with_server_errors(fake, client)
    created = len(fake.messages)
    fake.reset()
    second_run = _outcomes_with_server_errors(fake, client)

    assert set(first_run) == {201, (500, 20500)}
    assert first_run == second_run
    assert created == first_run.count(201)


def test_server_error_after_creating_hides_a_message_that_exists(fake, client) -> None:
    fake.set_rules(server_error_fraction=1.0, server_errors_after_creating=True)

    with pytest.raises(TwilioRestException) as failed:
        _send(client)
    listed = client.messages.list(to=ALICE)  # how a sender finds out: reads still work

    assert failed.value.status == 500
    [creation, _] = fake.requests
    assert creation.status == 500
    assert [m.sid for m in listed] == [creation.sid]


def test_injected_failures_hit_reads_only_when_asked(fake, client) -> None:
    message = _send(client)
    fake.set_rules(server_error_fraction=1.0)
    fetched = client.messages(message.sid).fetch()
    fake.set_rules(failures_include_reads=True)

    with pytest.raises(TwilioRestException) as failed:
        client.messages(message.sid).fetch()

    assert fetched.sid == message.sid
    assert (failed.value.status, failed.value.code) == (500, 20500)


def test_a_stalled_request_times_out_the_client_but_still_creates_the_message(fake) -> None:
    fake.set_rules(stall_fraction=1.0, stall_seconds=0.3)
    impatient = twilio_client_for(fake, timeout=0.05)

    with pytest.raises(requests.Timeout):
        _send(impatient)

    assert fake.wait_for_requests(1)
    assert fake.requests[0].status == 201
    assert len(fake.messages) == 1


def test_latency_range_is_accepted(fake, client) -> None:
    fake.set_rules(latency_ms=[1, 3])

    assert _send(client).status == "queued"
    assert fake.rules["latency_ms"] == [1.0, 3.0]


# --- fetching and listing ---------------------------------------------------------------


def test_fetch_returns_the_message_and_unknown_sids_are_20404(fake, client) -> None:
    message = _send(client)

    fetched = client.messages(message.sid).fetch()
    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()

    assert (fetched.sid, fetched.body) == (message.sid, message.body)
    assert (missing.value.status, missing.value.code) == (404, 20404)


def test_list_filters_by_to_and_date_sent(fake, client) -> None:
    first = _send(client, to=ALICE)
    second = _send(client, to=ALICE)
    _send(client, to=BOB)
    assert fake.wait_for_deliveries()
    now = datetime.now(UTC)

    to_alice = client.messages.list(to=ALICE)
    since_a_minute_ago = client.messages.list(to=ALICE, date_sent_after=now - timedelta(minutes=1))
    since_tomorrow = client.messages.list(to=ALICE, date_sent_after=now + timedelta(days=1))
    before_yesterday = client.messages.list(to=ALICE, date_sent_before=now - timedelta(days=1))
    today = client.messages.list(to=ALICE, date_sent=now.strftime("%Y-%m-%d"))

    assert [m.sid for m in to_alice] == [second.sid, first.sid]  # newest first
    assert [m.sid for m in since_a_minute_ago] == [second.sid, first.sid]
    assert since_tomorrow == []
    assert before_yesterday == []
    assert [m.sid for m in today] == [second.sid, first.sid]
    assert all(m.status == "delivered" for m in to_alice)


def test_queued_messages_have_no_date_sent_so_date_filters_skip_them() -> None:
    with FakeTwilio(status_delay_ms=None) as slow:
        client = twilio_client_for(slow)
        _send(client)

        listed = client.messages.list(to=ALICE, date_sent_after=datetime.now(UTC) - timedelta(1))

        assert listed == []
        assert len(client.messages.list(to=ALICE)) == 1


def test_list_pages_through_all_messages(fake, client) -> None:
    sent = [_send(client, body=f"Message {n}").sid for n in range(5)]

    listed = [m.sid for m in client.messages.list(to=ALICE, page_size=2)]

    assert listed == sent[::-1]
    pages = [r for r in fake.requests if r.method == "GET"]
    assert [r.query.get("PageSize") for r in pages] == ["2", "2", "2"]
    assert [r.query.get("Page") for r in pages] == [None, "1", "2"]
    assert pages[1].query["PageToken"] == "PA" + sent[3]


def test_list_envelope_is_twilios(fake, client) -> None:
    for _ in range(3):
        _send(client)

    payload = _raw(fake, "GET", _messages_path(fake), params={"To": ALICE, "PageSize": 2}).json()

    assert set(payload) == {
        "end",
        "first_page_uri",
        "messages",
        "next_page_uri",
        "page",
        "page_size",
        "previous_page_uri",
        "start",
        "uri",
    }
    assert (payload["page"], payload["page_size"], payload["start"], payload["end"]) == (0, 2, 0, 1)
    assert payload["next_page_uri"].startswith(_messages_path(fake) + "?To=%2B14155550101")
    assert payload["previous_page_uri"] is None


# --- what the fake records --------------------------------------------------------------


def test_request_log_holds_exactly_what_twilio_received(fake, client) -> None:
    fake.set_rules(callbacks=False)  # example.org is not there to answer

    message = _send(client, body="Hi Alice", status_callback="https://example.org/status")

    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == _messages_path(fake)
    assert request.auth_user == fake.account_sid
    assert request.form == {
        "To": ALICE,
        "From": SENDER,
        "Body": "Hi Alice",
        "StatusCallback": "https://example.org/status",
    }
    assert (request.status, request.sid, request.error_code) == (201, message.sid, None)
    assert abs(request.received_at - time.time()) < 5


def test_request_log_and_messages_are_readable_over_http(fake, client) -> None:
    _send(client, to=ALICE)
    _send(client, to=BOB)

    requests_to_bob = _raw(fake, "GET", "/_fake/requests", params={"To": BOB}).json()
    messages = _raw(fake, "GET", "/_fake/messages").json()["messages"]

    assert [r["form"]["To"] for r in requests_to_bob["requests"]] == [BOB]
    assert [m["to"] for m in messages] == [BOB, ALICE]
    assert fake.requests_to(BOB)[0].form["To"] == BOB


def test_control_api_changes_rules_and_resets(fake, client) -> None:
    changed = _raw(
        fake,
        "POST",
        "/_fake/rules",
        json={"creation_failures": {BOB: {"status": 400, "code": 21614}}},
    )
    with pytest.raises(TwilioRestException) as refused:
        _send(client, to=BOB)
    invalid = _raw(fake, "POST", "/_fake/rules", json={"rate_limit_fraction": 2})
    unknown = _raw(fake, "POST", "/_fake/rules", json={"make_it_rain": True})
    reset = _raw(fake, "POST", "/_fake/reset")
    health = _raw(fake, "GET", "/_fake/health").json()

    assert changed.status_code == 200
    assert changed.json()["creation_failures"][BOB]["code"] == 21614
    assert refused.value.code == 21614
    assert (invalid.status_code, unknown.status_code) == (400, 400)
    assert reset.status_code == 200
    assert (health["status"], health["messages"], health["requests"]) == ("ok", 0, 0)
    assert fake.rules["creation_failures"] == {}
    assert _send(client, to=BOB).status == "queued"


# --- HTTP plumbing ----------------------------------------------------------------------


def _basic_credentials(fake: FakeTwilio) -> str:
    return base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()


def _connect(fake: FakeTwilio) -> socket.socket:
    return socket.create_connection((fake.host, fake.port), timeout=5)


def _read_responses(connection: socket.socket, count: int) -> list[tuple[int, bytes]]:
    reader = connection.makefile("rb")
    responses = []
    for _ in range(count):
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        responses.append((status, reader.read(length)))
    return responses


def test_several_requests_share_one_keep_alive_connection(fake) -> None:
    request = b"GET /_fake/health HTTP/1.1\r\nHost: fake\r\n\r\n"

    with _connect(fake) as connection:
        answers = []
        for _ in range(3):
            connection.sendall(request)
            answers += _read_responses(connection, 1)

    assert [status for status, _ in answers] == [200, 200, 200]


def test_connection_close_and_http_10_end_the_connection(fake) -> None:
    for request in (
        b"GET /_fake/health HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n",
        b"GET /_fake/health HTTP/1.0\r\n\r\n",
    ):
        with _connect(fake) as connection:
            connection.sendall(request)
            [(status, _)] = _read_responses(connection, 1)
            assert status == 200
            assert connection.recv(1) == b""


def test_pipelined_requests_are_answered_in_order(fake) -> None:
    request = (
        "POST /2010-04-01/Accounts/{sid}/Messages.json HTTP/1.1\r\nHost: fake\r\n"
        "Authorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: {length}\r\n\r\n{body}"
    )
    auth = _basic_credentials(fake)
    bodies = [f"To=%2B1415555010{n}&From=%2B15005550006&Body=n{n}" for n in range(3)]
    wire = "".join(
        request.format(sid=fake.account_sid, auth=auth, length=len(body), body=body)
        for body in bodies
    )

    with _connect(fake) as connection:
        connection.sendall(wire.encode())
        responses = _read_responses(connection, 3)

    assert [status for status, _ in responses] == [201, 201, 201]
    assert [json.loads(body)["body"] for _, body in responses] == ["n0", "n1", "n2"]


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"this is not http\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: fake\r\nno colon here\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: fake\r\nBad Name: x\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nHost: fake\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nHost: fake\r\nContent-Length: 1, 2\r\n\r\nab", 400),
        (b"POST /x HTTP/1.1\r\nHost: fake\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"POST /x HTTP/1.1\r\nHost: fake\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        (b"GET /x HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 needs Host
        (b"GET /x HTTP/2.0\r\nHost: fake\r\n\r\n", 505),
        (b"GET x HTTP/1.1\r\nHost: fake\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nHost: fake\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"\xff\xfe\x00garbage\r\n\r\n", 400),
    ],
)
def test_malformed_http_gets_an_error_and_the_server_carries_on(fake, wire, status) -> None:
    with _connect(fake) as connection:
        connection.sendall(wire)
        [(answered, _)] = _read_responses(connection, 1)
        closed = connection.recv(1) == b""

    assert answered == status
    assert closed
    assert _raw(fake, "GET", "/_fake/health").status_code == 200


def test_mangled_requests_never_get_a_server_error(fake) -> None:
    valid = (
        f"POST {_messages_path(fake)} HTTP/1.1\r\nHost: fake\r\n"
        f"Authorization: Basic {_basic_credentials(fake)}\r\nContent-Length: 44\r\n\r\n"
        "To=%2B14155550101&From=%2B15005550006&Body=Hi"
    ).encode()
    rng = random.Random(3)
    statuses = set()
    for _ in range(150):
        wire = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(wire))
            wire[position : position + rng.randint(0, 3)] = rng.randbytes(rng.randint(0, 3))
        with _connect(fake) as connection:
            connection.sendall(bytes(wire))
            connection.shutdown(socket.SHUT_WR)  # a short body ends here, not in a wait
            answer = b"".join(iter(lambda: connection.recv(65536), b""))
        statuses.add(int(answer.split()[1]) if answer else None)

    assert not {status for status in statuses if status and status >= 500} - {505}
    assert _raw(fake, "GET", "/_fake/health").status_code == 200


def test_a_client_that_disconnects_mid_request_does_not_hurt_the_server(fake) -> None:
    with _connect(fake) as connection:
        connection.sendall(b"POST /x HTTP/1.1\r\nHost: fake\r\nContent-Length: 10\r\n\r\nab")
    with _connect(fake) as connection:
        connection.sendall(b"GET /_fake/heal")

    assert _raw(fake, "GET", "/_fake/health").status_code == 200


def test_head_requests_get_headers_without_a_body(fake) -> None:
    with _connect(fake) as connection:
        connection.sendall(b"HEAD /_fake/health HTTP/1.1\r\nHost: fake\r\n\r\n")
        connection.sendall(b"GET /_fake/health HTTP/1.1\r\nHost: fake\r\n\r\n")
        reader = connection.makefile("rb")
        head = b"".join(iter(reader.readline, b"\r\n"))
        next_status_line = reader.readline()

    assert head.startswith(b"HTTP/1.1 200 OK")
    assert next_status_line.startswith(b"HTTP/1.1 200 OK")  # not the HEAD's body


def test_unknown_paths_are_twilio_404s(fake) -> None:
    response = _raw(fake, "GET", "/2010-04-01/Accounts/AC1/Calls.json")

    assert response.status_code == 404
    assert response.json()["code"] == 20404


# --- status callbacks -------------------------------------------------------------------


class CallbackReceiver:
    """A tiny web server standing in for our webhook endpoint."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.received: list[tuple[str, dict[str, str], str]] = []
        self._answers = list(answers or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.received.append(
                    (self.path, dict(parse_qsl(body)), self.headers["X-Twilio-Signature"])
                )
                status = receiver._answers.pop(0) if receiver._answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/twilio/status?batch=7"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    yield receiver
    receiver.close()


def test_status_callbacks_are_signed_like_twilio(fake, client, receiver) -> None:
    message = _send(client, status_callback=receiver.url)

    assert fake.wait_for_deliveries()

    validator = RequestValidator(fake.auth_token)
    assert [fields["MessageStatus"] for _, fields, _ in receiver.received] == ["sent", "delivered"]
    for path, fields, signature in receiver.received:
        assert path == "/webhooks/twilio/status?batch=7"
        assert validator.validate(receiver.url, fields, signature)
        assert not validator.validate(receiver.url, {**fields, "To": BOB}, signature)
        assert fields["MessageSid"] == fields["SmsSid"] == message.sid
        assert fields["SmsStatus"] == fields["MessageStatus"]
        assert fields["AccountSid"] == fake.account_sid
        assert (fields["From"], fields["To"]) == (SENDER, ALICE)
        assert fields["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in fields
    assert re.fullmatch(r"\d{10}", receiver.received[1][1]["RawDlrDoneDate"])


@pytest.mark.parametrize(
    ("status", "error_code", "callback_statuses"),
    [
        ("undelivered", 30003, ["sent", "undelivered"]),
        ("undelivered", 30006, ["sent", "undelivered"]),
        ("failed", 30005, ["failed"]),
    ],
)
def test_failed_deliveries_call_back_with_the_error_code(
    fake, client, receiver, status, error_code, callback_statuses
) -> None:
    fake.fail_delivery(BOB, status=status, error_code=error_code)

    message = _send(client, to=BOB, status_callback=receiver.url)
    assert fake.wait_for_deliveries()

    received = [fields for _, fields, _ in receiver.received]
    assert [fields["MessageStatus"] for fields in received] == callback_statuses
    assert received[-1]["ErrorCode"] == str(error_code)
    fetched = client.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == (status, error_code)


def test_unreachable_callback_url_is_retried_logged_and_survived(fake, client) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{unused.getsockname()[1]}/status"

    message = _send(client, status_callback=dead_url)
    assert fake.wait_for_deliveries()

    attempts = fake.callbacks
    assert [(a.fields["MessageStatus"], a.attempt) for a in attempts] == [
        ("sent", 1),
        ("sent", 2),
        ("sent", 3),
        ("delivered", 1),
        ("delivered", 2),
        ("delivered", 3),
    ]
    assert all(a.status is None and a.error for a in attempts)
    assert client.messages(message.sid).fetch().status == "delivered"


def test_callback_answered_with_5xx_is_retried(fake, client) -> None:
    receiver = CallbackReceiver(answers=[503])
    try:
        _send(client, status_callback=receiver.url)
        assert fake.wait_for_deliveries()
    finally:
        receiver.close()

    assert [(a.fields["MessageStatus"], a.status) for a in fake.callbacks] == [
        ("sent", 503),
        ("sent", 200),
        ("delivered", 200),
    ]


def test_callbacks_can_be_turned_off(fake, client, receiver) -> None:
    fake.set_rules(callbacks=False)

    message = _send(client, status_callback=receiver.url)
    assert fake.wait_for_deliveries()

    assert receiver.received == []
    assert client.messages(message.sid).fetch().status == "delivered"


def test_reset_forgets_messages_and_stops_their_deliveries(fake, client, receiver) -> None:
    fake.set_rules(status_delay_ms=50)
    _send(client, status_callback=receiver.url)

    fake.reset()

    assert fake.wait_for_deliveries()
    assert fake.messages == []
    assert fake.requests == []


# --- running it -------------------------------------------------------------------------


def test_runs_as_a_process_and_stops_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "smsadmin.fakes.twilio", "--port", "0", "--latency-ms", "1-2"],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            line = process.stdout.readline()
            base_url = re.search(r"http://\S+", line).group(0)
            health = requests.get(base_url + "/_fake/health", timeout=5)
        finally:
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=10)

    assert health.json()["status"] == "ok"
    assert exit_code == 0


def test_throughput_sanity_check_is_printed(fake, capsys) -> None:
    """Not a timed test: prints what one keep-alive client gets, to notice a regression."""
    fake.set_rules(status_delay_ms=None)
    auth = "Basic " + _basic_credentials(fake)
    body = b"To=%2B14155550101&From=%2B15005550006&Body=Hello"
    request = (
        f"POST {_messages_path(fake)} HTTP/1.1\r\nHost: fake\r\nAuthorization: {auth}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    count = 500

    with _connect(fake) as connection:
        started = time.perf_counter()
        for _ in range(count):
            connection.sendall(request)
            _read_responses(connection, 1)
        elapsed = time.perf_counter() - started

    assert len(fake.messages) == count
    with capsys.disabled():
        sys.stdout.write(
            f"\nfake Twilio: {count / elapsed:.0f} creates/s on one keep-alive connection "
            "(client and server in one process)\n"
        )
