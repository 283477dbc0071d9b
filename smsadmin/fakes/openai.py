"""A fake OpenAI: an HTTP server that speaks the Responses API, for tests.

It answers the real ``openai`` SDK with OpenAI's paths, Bearer auth, JSON bodies,
Responses objects and error bodies (``{"error": {"message", "type", "param", "code"}}``).
It records every request so that tests can assert on exactly what OpenAI would have
received (the API key itself is never recorded), and misbehaves on demand: latency,
429s with ``retry-after``, 500s, stalls longer than the client's timeout, refusals.

In tests::

    with FakeOpenAI() as fake:
        fake.queue_replies("Good morning, gardeners!")
        client = openai_client_for(fake)
        response = client.responses.create(model="gpt-4.1-mini", input="Write a greeting")
        assert response.output_text == "Good morning, gardeners!"
        assert fake.requests[0].input_text == "Write a greeting"

Served: ``POST /v1/responses`` and ``GET /v1/models``; anything else is a 404 in
OpenAI's error shape, except ``/_fake/``, a control API OpenAI never uses (no auth, not
recorded). As a process (the local demo), controlled over HTTP: see
:mod:`smsadmin.fakes.openai_control`::

    python -m smsadmin.fakes.openai --port 8082 --reply "Good morning, gardeners!"
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from smsadmin.fakes.background import BackgroundLoop, BackgroundServer
from smsadmin.fakes.http import HttpServer, Request, Response, json_response

if TYPE_CHECKING:
    from openai import OpenAI

DEFAULT_API_KEY = "sk-fake-" + "0" * 40  # a well-known key: the fake guards nothing
DEFAULT_REPLY = "Good morning! Wishing you a bright and peaceful day."
DEFAULT_REFUSAL = "I'm sorry, but I can't help with that."
DEFAULT_MODELS = ("gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini")
CONTROL_PREFIX = "/_fake/"

FailureKind = Literal["rate_limit", "server_error", "stall"]
FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_REPLY",
    "FakeOpenAI",
    "RecordedRequest",
    "openai_client_for",
]


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    text: str
    is_refusal: bool = False


@dataclass(slots=True)
class RecordedRequest:
    """One request as OpenAI would have received it; ``status`` is what it was answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names; the key in ``authorization`` is masked
    body: Any  # the parsed JSON body, None when there was none or it was not JSON
    instructions: str
    input_text: str
    delay_seconds: float = 0.0
    failure: FailureKind | None = None
    status: int | None = None  # None while the request is still being answered

    @property
    def prompt(self) -> str:
        """Instructions and input as one text, as the model would read them."""
        return "\n\n".join(part for part in (self.instructions, self.input_text) if part)


@dataclass(slots=True)
class _Behaviour:
    replies: deque[ScriptedReply] = field(default_factory=deque)
    failures: deque[FailureKind] = field(default_factory=deque)
    latency_seconds: float = 0.0
    stall_seconds: float = 30.0
    retry_after_seconds: float = 1.0


class FakeOpenAI(BackgroundServer):
    """The fake OpenAI, run in a background thread (``start()``/``stop()`` or ``with``).

    Its controls may be called from any thread while it serves.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        default_reply: str = DEFAULT_REPLY,
        models: tuple[str, ...] = DEFAULT_MODELS,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.default_reply = default_reply
        self.models = models
        self._lock = threading.Lock()
        self._behaviour = _Behaviour()
        self._requests: list[RecordedRequest] = []
        self._server = HttpServer(self._handle)
        self._loop = BackgroundLoop(name="fake-openai")

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url``."""
        return f"http://{self.host}:{self.port}/v1"

    # --- running ----------------------------------------------------------------------
    async def open(self) -> None:
        await self._server.start(self.host, self.port)
        self.port = self._server.port

    async def close(self) -> None:
        await self._server.close()

    # --- what it received -------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request, oldest first."""
        with self._lock:
            return list(self._requests)

    def summary(self) -> dict[str, Any]:
        """Counts and settings, as ``GET /_fake/health`` shows them."""
        with self._lock:
            behaviour = self._behaviour
            return {
                "status": "ok",
                "requests": len(self._requests),
                "queued_replies": len(behaviour.replies),
                "queued_failures": len(behaviour.failures),
                "latency_seconds": behaviour.latency_seconds,
                "stall_seconds": behaviour.stall_seconds,
                "retry_after_seconds": behaviour.retry_after_seconds,
            }

    # --- changing its behaviour -------------------------------------------------------
    def queue_replies(self, *texts: str) -> None:
        """Answer the next requests with these texts, in order (then the default reply)."""
        with self._lock:
            self._behaviour.replies.extend(ScriptedReply(text) for text in texts)

    def queue_refusal(self, refusal: str = DEFAULT_REFUSAL) -> None:
        """Answer the next request with a ``refusal`` content item instead of text."""
        with self._lock:
            self._behaviour.replies.append(ScriptedReply(refusal, is_refusal=True))

    def fail_next(self, count: int, kind: FailureKind) -> None:
        """Fail the next ``count`` requests: 429 with ``retry-after``, 500, or a stall
        of ``stall_seconds`` (after which the request is answered normally)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}: use {', '.join(FAILURE_KINDS)}")
        if count < 0:
            raise ValueError("the count of failures must be 0 or more")
        with self._lock:
            self._behaviour.failures.extend([kind] * count)

    def set_latency(self, seconds: float) -> None:
        """Wait this long before answering every request."""
        checked_seconds(seconds, "latency")
        with self._lock:
            self._behaviour.latency_seconds = seconds

    def set_stall_seconds(self, seconds: float) -> None:
        checked_seconds(seconds, "stall")
        with self._lock:
            self._behaviour.stall_seconds = seconds

    def set_retry_after(self, seconds: float) -> None:
        """The ``retry-after`` a 429 carries (the SDK waits that long before retrying)."""
        checked_seconds(seconds, "retry-after")
        with self._lock:
            self._behaviour.retry_after_seconds = seconds

    def reset(self) -> None:
        """Forget requests, scripted replies, failures and settings."""
        with self._lock:
            self._behaviour = _Behaviour()
            self._requests.clear()

    # --- serving ----------------------------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            # Imported here because the control module is built on this one.
            from smsadmin.fakes.openai_control import control_response

            return control_response(self, request)
        recorded = _record(request)
        with self._lock:
            self._requests.append(recorded)
            is_authorized = request.headers.get("authorization") == f"Bearer {self.api_key}"
            # A request with a wrong key is refused before any injected failure.
            failures = self._behaviour.failures
            failure = failures.popleft() if is_authorized and failures else None
            delay = self._behaviour.latency_seconds
            if failure == "stall":
                delay += self._behaviour.stall_seconds
            retry_after = self._behaviour.retry_after_seconds
        recorded.failure = failure
        recorded.delay_seconds = delay
        if delay:
            await asyncio.sleep(delay)
        response = self._answer(request, recorded, is_authorized, failure, retry_after)
        recorded.status = response.status
        response.headers.append(("x-request-id", f"req_{uuid.uuid4().hex}"))
        return response

    def _answer(
        self,
        request: Request,
        recorded: RecordedRequest,
        is_authorized: bool,
        failure: FailureKind | None,
        retry_after: float,
    ) -> Response:
        route = (request.method, request.path.rstrip("/"))
        if route not in {("POST", "/v1/responses"), ("GET", "/v1/models")}:
            return _error(
                404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
            )
        if not is_authorized:
            return _authentication_error(request.headers.get("authorization"))
        if failure == "rate_limit":
            response = _error(
                429,
                "Rate limit reached for requests. Please try again in a moment.",
                "requests",
                code="rate_limit_exceeded",
            )
            response.headers += [
                ("retry-after", f"{retry_after:g}"),
                ("retry-after-ms", f"{retry_after * 1000:g}"),
            ]
            return response
        if failure == "server_error":
            return _error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
            )
        if route == ("GET", "/v1/models"):
            return json_response(200, _model_list(self.models))
        body = recorded.body
        if not isinstance(body, dict):
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if not isinstance(body.get("model"), str):
            return _error(
                400, "Missing required parameter: 'model'.", "invalid_request_error", param="model"
            )
        if "input" not in body:
            return _error(
                400, "Missing required parameter: 'input'.", "invalid_request_error", param="input"
            )
        with self._lock:
            queued = self._behaviour.replies
            reply = queued.popleft() if queued else ScriptedReply(self.default_reply)
        return json_response(200, response_object(body, reply, prompt=recorded.prompt))


def response_object(body: dict[str, Any], reply: ScriptedReply, *, prompt: str) -> dict[str, Any]:
    """A completed Responses API object answering ``body`` with ``reply``."""
    if reply.is_refusal:
        content = {"type": "refusal", "refusal": reply.text}
    else:
        content = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
    input_tokens, output_tokens = _tokens(prompt), _tokens(reply.text)
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "status": "completed",
                "role": "assistant",
                "content": [content],
            }
        ],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def input_text(value: object) -> str:
    """The text of a Responses ``input``: a string, or a list of message items whose
    ``content`` is a string or a list of ``input_text`` parts. Messages are joined by
    newlines; non-text parts (images, files) are left out."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return ""
    texts = []
    for item in value:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return "\n".join(texts)


def checked_seconds(seconds: float, name: str) -> float:
    """``seconds`` if it is a usable delay, else ``ValueError`` naming the setting."""
    try:
        is_usable = math.isfinite(seconds) and seconds >= 0
    except (TypeError, OverflowError):  # not a number; an integer too big for a float
        is_usable = False
    if not is_usable:
        raise ValueError(f"the {name} must be a number of seconds, 0 or more")
    return seconds


def openai_client_for(
    fake: FakeOpenAI,
    *,
    api_key: str | None = None,
    timeout: float = 10.0,
    max_retries: int = 0,
) -> OpenAI:
    """A real ``openai.OpenAI`` client that talks to ``fake`` (its key by default)."""
    from openai import OpenAI

    return OpenAI(
        api_key=api_key or fake.api_key,
        base_url=fake.base_url,
        timeout=timeout,
        max_retries=max_retries,
    )


def _record(request: Request) -> RecordedRequest:
    headers = dict(request.headers)
    if "authorization" in headers:
        scheme, _, _ = headers["authorization"].partition(" ")
        headers["authorization"] = f"{scheme} ***"
    try:
        body = request.json() if request.body else None
    except ValueError:
        body = None
    fields = body if isinstance(body, dict) else {}
    instructions = fields.get("instructions")
    return RecordedRequest(
        method=request.method,
        path=request.path,
        headers=headers,
        body=body,
        instructions=instructions if isinstance(instructions, str) else "",
        input_text=input_text(fields.get("input")),
    )


def _error(
    status: int, message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> Response:
    return json_response(
        status, {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def _authentication_error(authorization: str | None) -> Response:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme != "Bearer" or not key:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return _error(401, message, "invalid_request_error")
    shown = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}" if len(key) > 7 else key
    message = (
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return _error(401, message, "invalid_request_error", code="invalid_api_key")


def _model_list(models: tuple[str, ...]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}
            for model in models
        ],
    }


def _tokens(text: str) -> int:
    """A rough token count (about four characters a token), like OpenAI's for English."""
    return max(1, len(text) // 4) if text else 0


if __name__ == "__main__":
    from smsadmin.fakes.openai_control import main

    raise SystemExit(main())
