"""A fake Twilio: an HTTP server that speaks Twilio's Messages API, for tests, the
sending benchmark and the local demo.

It answers the real ``twilio`` SDK with Twilio's paths, Basic auth (account SID + auth
token, or API key SID + secret), form-encoded requests, JSON resources and error bodies,
then moves each message ``queued → sent → delivered`` (or ``failed``/``undelivered``)
and POSTs status callbacks signed like Twilio's (``X-Twilio-Signature``). It records
every request so that tests can assert on exactly what Twilio would have received, and
misbehaves on demand (latency, per-number errors, 429 bursts, 500s, stalls): see
:mod:`smsadmin.fakes.twilio_rules` for the rules.

In tests::

    with FakeTwilio(latency_ms=0) as fake:
        client = twilio_client_for(fake)
        message = client.messages.create(to="+14155552671", from_="+15005550006", body="Hi")
        assert fake.requests[0].form["Body"] == "Hi"

Pointing the real SDK at it by hand: ``client = Client(account_sid, auth_token)`` then
``client.api.base_url = fake.base_url``. Clear ``TWILIO_EDGE`` and ``TWILIO_REGION``
(or pass ``environment={}``): with either set, the SDK rewrites the host name into
``api.<edge>.<region>.twilio.com`` form, which breaks ``127.0.0.1:port``. Any
``http_client`` works (``TwilioHttpClient(timeout=...)``, ``AsyncTwilioHttpClient``):
only the base URL changes.

Where Twilio's behaviour is easy to get wrong, the fake copies it:

- ``date_sent`` is null until the message is ``sent``, and the ``DateSent`` filters
  skip messages without one. To find a message created a moment ago (after a 500 or a
  timeout), list by ``To`` (newest first) and look at ``date_created``.
- A Messaging Service message starts ``accepted`` with ``from`` null and
  ``num_segments`` "0"; both are filled in when it is sent.
- A 500 may hide a message that was created (``server_errors_after_creating``), and a
  client that timed out on a stalled request still gets its message created.
- List pages carry ``next_page_uri`` with a ``PageToken``, so paging is stable while
  new messages arrive.

As a process (the benchmark, the demo)::

    python -m smsadmin.fakes.twilio --port 8081 --latency-ms 50 \\
        --account-sid AC... --auth-token ...

It prints the URL it listens on and stops cleanly on SIGINT/SIGTERM. While it runs,
``/_fake/`` is its control API (a path Twilio never uses, no auth)::

    GET  /_fake/health              counts; 200 while serving
    GET  /_fake/requests[?To=...]   the request log
    GET  /_fake/messages[?To=...]   messages in Twilio's JSON, newest first
    GET  /_fake/callbacks           every status-callback attempt and its answer
    GET  /_fake/rules               the current rules
    POST /_fake/rules               change rules: a JSON object of the keys to change
    POST /_fake/reset               forget messages and logs, restore the starting rules
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from smsadmin.fakes.background import BackgroundLoop, BackgroundServer
from smsadmin.fakes.http import HttpServer
from smsadmin.fakes.twilio_api import TwilioApi
from smsadmin.fakes.twilio_rules import CreationFailure, DeliveryFailure, Rules
from smsadmin.fakes.twilio_state import CallbackAttempt, RecordedRequest, TwilioState
from smsadmin.fakes.twilio_wire import FakeMessage

if TYPE_CHECKING:
    from twilio.rest import Client

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "fake" * 8  # a well-known token: the fake guards nothing
DEFAULT_MAX_RECORDS = 200_000

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "CallbackAttempt",
    "FakeMessage",
    "FakeTwilio",
    "RecordedRequest",
    "main",
    "twilio_client_for",
]


class FakeTwilio(BackgroundServer):
    """The fake Twilio, run in a background thread (``start()``/``stop()`` or ``with``).

    ``latency_ms`` is a number or a ``(low, high)`` range; ``status_delay_ms`` is the
    time between status changes (``None`` keeps messages ``queued``); ``rules`` takes
    any other rule in its JSON form. ``max_records`` bounds the request log, callback
    log and message store (oldest forgotten first) for long benchmarks.
    """

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        api_keys: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float | tuple[float, float] = 0,
        callbacks: bool = True,
        status_delay_ms: float | None = 20,
        seed: int | None = None,
        rules: Mapping[str, Any] | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        initial_rules = Rules()
        initial_rules.update(
            {
                "latency_ms": latency_ms,
                "callbacks": callbacks,
                "status_delay_ms": status_delay_ms,
                **(rules or {}),
            }
        )
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self._state = TwilioState(rules=initial_rules, seed=seed, max_records=max_records)
        self._api = TwilioApi(
            self._state, account_sid=account_sid, auth_token=auth_token, api_keys=api_keys or {}
        )
        self._server = HttpServer(self._api.handle)
        self._loop = BackgroundLoop(name="fake-twilio")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- running ----------------------------------------------------------------------
    async def open(self) -> None:
        """Start serving on the running event loop (what ``start()`` does in its thread)."""
        await self._server.start(self.host, self.port)
        self.port = self._server.port

    async def close(self) -> None:
        await self._server.close()
        await self._api.close()

    # --- what it received and did -----------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request to a Twilio API path, oldest first."""
        return self._state.requests()

    def requests_to(self, to: str) -> list[RecordedRequest]:
        """Requests whose ``To`` (form field or query parameter) is ``to``."""
        return self._state.requests(to)

    @property
    def messages(self) -> list[FakeMessage]:
        """Copies of the messages created, newest first (as Twilio lists them)."""
        return self._state.find_messages()

    def message(self, sid: str) -> FakeMessage | None:
        return self._state.message(sid)

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        """Every status-callback POST attempt, in the order they were made."""
        return self._state.callbacks()

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        """Block until every message reached its final status and its callbacks were
        answered (or given up on); False if ``timeout`` seconds passed first."""
        return self._state.wait_for_deliveries(timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` API requests were answered since the start or the last
        reset (e.g. one a worker sends in the background); False on timeout."""
        return self._state.wait_for_requests(count, timeout)

    # --- changing its behaviour -------------------------------------------------------
    @property
    def rules(self) -> dict[str, Any]:
        return self._state.rules_json()

    def set_rules(self, **changes: Any) -> None:
        """Change rules by name, e.g. ``set_rules(server_error_fraction=0.1)``."""
        self._state.update_rules(changes)

    def fail_numbers(
        self, *numbers: str, status: int = 400, code: int = 21211, message: str | None = None
    ) -> None:
        """Refuse messages to ``numbers`` at creation with ``status`` and Twilio ``code``."""
        failure = CreationFailure(status, code, message)
        self._state.add_failures(creation=dict.fromkeys(numbers, failure))

    def fail_delivery(
        self, *numbers: str, status: str = "undelivered", error_code: int = 30003
    ) -> None:
        """Accept messages to ``numbers``, then end them ``status`` with ``error_code``."""
        if status not in {"undelivered", "failed"}:
            raise ValueError("status must be 'undelivered' or 'failed'")
        failure = DeliveryFailure(status, error_code)
        self._state.add_failures(delivery=dict.fromkeys(numbers, failure))

    def rate_limit_next(self, count: int) -> None:
        """Answer the next ``count`` message creations with 429 (code 20429)."""
        self._state.update_rules({"rate_limit_next": count})

    def reset(self, *, rules: bool = True) -> None:
        """Forget messages and logs; with ``rules``, also restore the starting rules."""
        self._state.reset(rules=rules)


def twilio_client_for(
    fake: FakeTwilio,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
) -> Client:
    """A real ``twilio.rest.Client`` that talks to ``fake`` (its credentials by default)."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client = Client(
        username or fake.account_sid,
        password or fake.auth_token,
        account_sid=fake.account_sid,
        environment={},  # no TWILIO_EDGE / TWILIO_REGION host rewriting
        http_client=TwilioHttpClient(timeout=timeout),
    )
    client.api.base_url = fake.base_url
    return client


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        rules = json.loads(arguments.rules) if arguments.rules else {}
        fake = FakeTwilio(
            account_sid=arguments.account_sid,
            auth_token=arguments.auth_token,
            api_keys=dict(key.split(":", 1) for key in arguments.api_key),
            host=arguments.host,
            port=arguments.port,
            latency_ms=_latency_argument(arguments.latency_ms),
            callbacks=not arguments.no_callbacks,
            status_delay_ms=None if arguments.status_delay_ms < 0 else arguments.status_delay_ms,
            seed=arguments.seed,
            rules=rules,
            max_records=arguments.max_records,
        )
    except ValueError as error:
        sys.stderr.write(f"fake twilio: {error}\n")
        return 2
    asyncio.run(_serve_until_signalled(fake))
    return 0


async def _serve_until_signalled(fake: FakeTwilio) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    await fake.open()
    sys.stdout.write(f"Fake Twilio listening on {fake.base_url} (account {fake.account_sid})\n")
    sys.stdout.flush()
    await stopping.wait()
    await fake.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m smsadmin.fakes.twilio", description="Run the fake Twilio server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="SK...:SECRET",
        help="an API key SID and its secret that may also authenticate (repeatable)",
    )
    parser.add_argument("--latency-ms", default="0", help="milliseconds, or a range: 20-80")
    parser.add_argument(
        "--status-delay-ms",
        type=float,
        default=20,
        help="time between queued, sent and delivered; negative: never change",
    )
    parser.add_argument("--no-callbacks", action="store_true", help="never POST callbacks")
    parser.add_argument("--seed", type=int, default=None, help="make random failures repeat")
    parser.add_argument("--rules", default="", help="more rules as a JSON object")
    parser.add_argument("--max-records", type=int, default=DEFAULT_MAX_RECORDS)
    return parser


def _latency_argument(text: str) -> float | tuple[float, float]:
    low, separator, high = text.partition("-")
    return (float(low), float(high)) if separator else float(low)


if __name__ == "__main__":
    raise SystemExit(main())
