"""Running the fake OpenAI on its own: its command line and its ``/_fake/`` control API.

As a process (the local demo)::

    python -m smsadmin.fakes.openai --port 8082 --latency 0.5 \\
        --reply "Good morning, gardeners!" --default-reply "Have a lovely day."

It prints the URL and key to use (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``) and stops
cleanly on SIGINT/SIGTERM. While it runs, and also in tests, ``/_fake/`` is its control
API (a path OpenAI never uses, no auth, never recorded in the request log)::

    GET  /_fake/health       counts and settings; 200 while serving
    GET  /_fake/requests     the request log (never the API key)
    POST /_fake/replies      {"replies": ["..."], "refusal": "..."}: queue replies, then
                             a refusal (either may be left out)
    POST /_fake/failures     {"count": 2, "kind": "rate_limit"|"server_error"|"stall"}
    POST /_fake/settings     any of {"latency_seconds", "stall_seconds",
                             "retry_after_seconds"}
    POST /_fake/reset        forget requests, queued replies, failures and settings

Each endpoint calls the method of :class:`FakeOpenAI` that tests call, so the two ways
of controlling it cannot drift apart. A body that is not what the endpoint takes gets a
400 with ``{"error": "..."}`` and changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from smsadmin.fakes.http import Request, Response, json_response
from smsadmin.fakes.openai import (
    CONTROL_PREFIX,
    DEFAULT_API_KEY,
    DEFAULT_REPLY,
    FAILURE_KINDS,
    FakeOpenAI,
    RecordedRequest,
    checked_seconds,
)

DEFAULT_PORT = 8082
MAX_FAILURES = 10_000  # more than any test needs, few enough to keep in memory
SETTINGS = ("latency_seconds", "stall_seconds", "retry_after_seconds")

__all__ = ["control_response", "main"]


class InvalidControl(ValueError):
    """A control request that cannot be carried out; its text is the 400's ``error``."""


def control_response(fake: FakeOpenAI, request: Request) -> Response:
    """The answer to a request under ``/_fake/``."""
    action = request.path.removeprefix(CONTROL_PREFIX).rstrip("/")
    method = "GET" if request.method == "HEAD" else request.method
    endpoint = _ENDPOINTS.get((method, action))
    if endpoint is None:
        if any(action == known for _, known in _ENDPOINTS):
            return json_response(405, {"error": f"{method} is not allowed on {request.path}."})
        return json_response(404, {"error": f"There is no control endpoint {request.path}."})
    try:
        return json_response(200, endpoint(fake, request))
    except InvalidControl as error:
        return json_response(400, {"error": str(error)})


def _health(fake: FakeOpenAI, request: Request) -> dict[str, Any]:
    return fake.summary()


def _requests(fake: FakeOpenAI, request: Request) -> dict[str, Any]:
    return {"requests": [_request_json(recorded) for recorded in fake.requests]}


def _replies(fake: FakeOpenAI, request: Request) -> dict[str, Any]:
    body = _json_object(request, allowed={"replies", "refusal"})
    replies = body.get("replies", [])
    refusal = body.get("refusal")
    if not isinstance(replies, list) or not all(isinstance(text, str) for text in replies):
        raise InvalidControl('"replies" must be a list of texts.')
    if refusal is not None and not isinstance(refusal, str):
        raise InvalidControl('"refusal" must be a text.')
    if not replies and refusal is None:
        raise InvalidControl('Send "replies", a "refusal", or both.')
    fake.queue_replies(*replies)
    if refusal is not None:
        fake.queue_refusal(refusal)
    return fake.summary()


def _failures(fake: FakeOpenAI, request: Request) -> dict[str, Any]:
    body = _json_object(request, allowed={"count", "kind"})
    count = body.get("count", 1)
    kind = body.get("kind")
    if not _is_integer(count) or not 0 <= count <= MAX_FAILURES:
        raise InvalidControl(f'"count" must be a whole number from 0 to {MAX_FAILURES}.')
    if kind not in FAILURE_KINDS:
        raise InvalidControl(f'"kind" must be one of {", ".join(FAILURE_KINDS)}.')
    fake.fail_next(count, kind)
    return fake.summary()


def _settings(fake: FakeOpenAI, request: Request) -> dict[str, Any]:
    body = _json_object(request, allowed=set(SETTINGS))
    for name, value in body.items():  # every value is checked before any is applied
        try:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError
            checked_seconds(value, name)
        except ValueError:
            raise InvalidControl(f'"{name}" must be a number of seconds, 0 or more.') from None
    setters = {
        "latency_seconds": fake.set_latency,
        "stall_seconds": fake.set_stall_seconds,
        "retry_after_seconds": fake.set_retry_after,
    }
    for name, value in body.items():
        setters[name](value)
    return fake.summary()


def _reset(fake: FakeOpenAI, request: Request) -> dict[str, Any]:
    fake.reset()
    return fake.summary()


_ENDPOINTS: dict[tuple[str, str], Callable[[FakeOpenAI, Request], dict[str, Any]]] = {
    ("GET", "health"): _health,
    ("GET", "requests"): _requests,
    ("POST", "replies"): _replies,
    ("POST", "failures"): _failures,
    ("POST", "settings"): _settings,
    ("POST", "reset"): _reset,
}


def _json_object(request: Request, *, allowed: set[str]) -> dict[str, Any]:
    try:
        body = request.json()
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise InvalidControl("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidControl("The body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidControl(
            f"Unknown field {unknown[0]!r}: this endpoint takes {', '.join(sorted(allowed))}."
        )
    return body


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request_json(recorded: RecordedRequest) -> dict[str, Any]:
    # Not the headers or the body: what a demo checks is what the model was asked.
    return {
        "method": recorded.method,
        "path": recorded.path,
        "instructions": recorded.instructions,
        "input_text": recorded.input_text,
        "status": recorded.status,
        "failure": recorded.failure,
        "delay_seconds": recorded.delay_seconds,
    }


# --- the command line -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if not arguments.api_key:
            raise ValueError("the API key must not be empty")
        fake = FakeOpenAI(
            api_key=arguments.api_key,
            host=arguments.host,
            port=arguments.port,
            default_reply=arguments.default_reply,
        )
        fake.set_latency(arguments.latency)
    except ValueError as error:
        sys.stderr.write(f"fake openai: {error}\n")
        return 2
    fake.queue_replies(*arguments.reply)
    try:
        asyncio.run(_serve_until_signalled(fake))
    except OSError as error:  # the port is taken, the host is not ours...
        sys.stderr.write(f"fake openai: cannot listen on {arguments.host}:{arguments.port}: ")
        sys.stderr.write(f"{error.strerror or error}\n")
        return 1
    return 0


async def _serve_until_signalled(fake: FakeOpenAI) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    await fake.open()
    sys.stdout.write(f"Fake OpenAI listening on {fake.base_url} (key {fake.api_key})\n")
    sys.stdout.flush()
    await stopping.wait()
    await fake.close()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr, like the fake's other refusals, instead of the usage."""
        self.exit(2, f"fake openai: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m smsadmin.fakes.openai", description="Run the fake OpenAI server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the key clients must send")
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="wait before each answer"
    )
    parser.add_argument(
        "--reply",
        action="append",
        default=[],
        metavar="TEXT",
        help="answer the next request with TEXT (repeatable: answered in order)",
    )
    parser.add_argument(
        "--default-reply", default=DEFAULT_REPLY, metavar="TEXT", help="once the replies ran out"
    )
    return parser


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)
