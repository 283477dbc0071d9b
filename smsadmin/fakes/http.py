"""A small HTTP/1.1 server on asyncio streams, for the fakes of outside services.

It exists because the fakes must be cheap: the fake Twilio is the far end of the sending
benchmark on the same cores as the code under test. It does just what the SDKs need:
one request at a time per connection (so pipelined requests are answered in order),
``Content-Length`` bodies, keep-alive, ``Expect: 100-continue``. Anything it cannot
parse gets a 4xx/5xx answer and the connection is closed, because after a framing
error the next request cannot be found reliably; the server itself never falls over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
# A connection that sends nothing (no next request, or not the rest of this one) for
# this long is closed. Longer than the usual client pool's idle time.
IDLE_TIMEOUT_SECONDS = 75.0
SWEEP_INTERVAL_SECONDS = 5.0
LINGER_SECONDS = 1.0

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_DIGITS = re.compile(r"[0-9]+")  # not \d: that takes any script's digits
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lower-case; repeats are joined by ", "."""

    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    keep_alive: bool = True

    def query_params(self) -> dict[str, str]:
        return dict(parse_form(self.query.encode("latin-1"))) if self.query else {}

    def form_items(self) -> list[tuple[str, str]]:
        """The body as ``application/x-www-form-urlencoded`` pairs, repeats kept."""
        return parse_form(self.body) if self.body else []

    def json(self) -> object:
        """The body as JSON; raises ``ValueError`` when it is not."""
        return json.loads(self.body or b"null")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def parse_form(data: bytes) -> list[tuple[str, str]]:
    """``b"a=1&b=x+y%21"`` as ``[("a", "1"), ("b", "x y!")]``, blank values kept.

    Like ``urllib.parse.parse_qsl`` (escapes are UTF-8, invalid bytes replaced), about
    twice as fast on the short forms SDKs send: it splits and unescapes bytes once.
    """
    items = []
    for pair in data.replace(b"+", b" ").split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            items.append(
                (
                    unquote_to_bytes(name).decode("utf-8", "replace"),
                    unquote_to_bytes(value).decode("utf-8", "replace"),
                )
            )
    return items


def json_response(status: int, payload: object) -> Response:
    return Response(status, json.dumps(payload).encode())


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """The request cannot be read; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HttpServer:
    """Serves ``handler`` on a TCP port; ``close()`` also ends kept-alive connections."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        # Connections waiting for the client, and since when (loop time). One sweep every
        # few seconds closes idle ones: cheaper than a timer per request.
        self._reading_since: dict[asyncio.StreamWriter, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, limit=MAX_HEAD_BYTES, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._schedule_sweep()

    async def close(self) -> None:
        if self._server is None:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._server.close()
        # Since Python 3.12, wait_closed() waits for open connections: end them first.
        for writer in list(self._connections):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    def _schedule_sweep(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(
            SWEEP_INTERVAL_SECONDS, self._close_idle_connections
        )

    def _close_idle_connections(self) -> None:
        deadline = asyncio.get_running_loop().time() - IDLE_TIMEOUT_SECONDS
        for writer, since in list(self._reading_since.items()):
            if since < deadline:
                writer.transport.abort()
        self._schedule_sweep()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connections.add(writer)
        try:
            await self._serve_requests(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or went quiet: nothing to answer
        except Exception:
            logger.exception("HTTP connection failed")
        finally:
            self._connections.discard(writer)
            self._reading_since.pop(writer, None)
            writer.close()

    async def _serve_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._reading_since[writer] = loop.time()
            try:
                request = await read_request(reader, writer)
            except BadRequest as error:
                message = json.dumps({"error": error.reason}).encode()
                writer.write(render(Response(error.status, message), keep_alive=False))
                await writer.drain()
                await _discard_input(reader, writer)
                return
            if request is None:
                return
            del self._reading_since[writer]  # the handler may take long on purpose
            try:
                response = await self._handler(request)
            except Exception:
                logger.exception("Handler failed on %s %s", request.method, request.path)
                response = json_response(500, {"error": "internal error in the fake"})
            writer.write(
                render(
                    response,
                    keep_alive=request.keep_alive,
                    include_body=request.method != "HEAD",
                )
            )
            await writer.drain()
            if not request.keep_alive:
                return


async def _discard_input(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and drop what the client still sends, for a moment, before closing.

    Closing a socket with unread input makes the kernel send a reset, which can destroy
    the error response before the client reads it (a "lingering close").
    """
    if writer.can_write_eof():
        writer.write_eof()
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(LINGER_SECONDS):
            while await reader.read(MAX_HEAD_BYTES):
                pass


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    """The next request on the connection, or ``None`` when the client closed it."""
    head = await _read_head(reader)
    if head is None:
        return None
    request = parse_head(head)
    length = _content_length(request.headers)
    if length:
        if request.headers.get("expect", "").lower() == "100-continue":
            writer.write(_CONTINUE)
        try:
            request.body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as error:
            raise BadRequest(400, "body shorter than Content-Length") from error
    return request


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if error.partial.strip():
                raise BadRequest(400, "connection closed inside the request head") from error
            return None
        except asyncio.LimitOverrunError as error:
            raise BadRequest(431, "request head too large") from error
        # RFC 9112 2.2: ignore empty lines before a request line.
        head = head.lstrip(b"\r\n")
        if head:
            return head


def parse_head(head: bytes) -> Request:
    """Parse a request line and header fields (``head`` ends with an empty line)."""
    lines = head.decode("latin-1").split("\r\n")[:-2]
    request_line = lines[0]
    parts = request_line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    version_match = _VERSION.fullmatch(version)
    if version_match is None:
        raise BadRequest(400, "malformed HTTP version")
    if version_match.group(1) != "1":
        raise BadRequest(505, "only HTTP/1.x is supported")
    if not target.startswith("/") or any(character in target for character in "\r\n\t#"):
        raise BadRequest(400, "request target must be an absolute path")

    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "malformed header field")
        if "\r" in value or "\n" in value:
            raise BadRequest(400, "bare CR or LF in a header field")
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value

    is_http_11 = version_match.group(2) != "0"
    if is_http_11 and "host" not in headers:
        raise BadRequest(400, "HTTP/1.1 request without Host")
    if "transfer-encoding" in headers:
        raise BadRequest(501, "Transfer-Encoding is not supported; send Content-Length")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if is_http_11 else "keep-alive" in connection
    path, _, query = target.partition("?")
    return Request(method, path, query, version, headers, keep_alive=keep_alive)


def _content_length(headers: dict[str, str]) -> int:
    value = headers.get("content-length")
    if value is None:
        return 0
    # A repeated header arrives joined: accept it only when every copy agrees.
    values = {part.strip() for part in value.split(",")}
    if len(values) != 1 or not _DIGITS.fullmatch(single := values.pop()):
        raise BadRequest(400, "invalid Content-Length")
    length = int(single)
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, "body too large")
    return length


_reasons = {status.value: status.phrase for status in HTTPStatus}
_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache  # the Date header changes once a second: format it once a second
    now = int(time.time())
    cached = _date_cache
    if cached[0] != now:
        cached = _date_cache = (now, formatdate(now, usegmt=True))
    return cached[1]


def render(response: Response, *, keep_alive: bool, include_body: bool = True) -> bytes:
    """The response as bytes on the wire (``include_body=False`` answers a HEAD)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in response.headers)
    head = (
        f"HTTP/1.1 {response.status} {_reasons.get(response.status, 'Unknown')}\r\n"
        f"Date: {_http_date()}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
        f"{extra}\r\n"
    )
    return head.encode("latin-1") + (response.body if include_body else b"")
