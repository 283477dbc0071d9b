"""A small asyncio HTTP/1.1 client that POSTs forms, for the fakes' webhooks.

Webhooks (Twilio's status callbacks) are many small POSTs to one or two URLs, so the
client keeps idle connections per origin and reuses them, like the real services do.
It reads ``Content-Length``, chunked and read-until-close responses and throws the
response body away: a webhook's answer is only its status code.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

MAX_RESPONSE_HEAD_BYTES = 64 * 1024
MAX_IDLE_CONNECTIONS_PER_ORIGIN = 16

Origin = tuple[str, str, int]  # scheme, host, port


class WebhookError(Exception):
    """The POST got no HTTP answer (refused, reset, timed out, garbled)."""


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class WebhookClient:
    def __init__(self, *, timeout_seconds: float = 5.0, user_agent: str = "fake") -> None:
        self._timeout_seconds = timeout_seconds
        self._user_agent = user_agent
        self._idle: defaultdict[Origin, list[_Connection]] = defaultdict(list)
        self._ssl_context: ssl.SSLContext | None = None

    async def post_form(
        self, url: str, fields: Mapping[str, str], *, headers: Mapping[str, str] | None = None
    ) -> int:
        """POST ``fields`` form-encoded to ``url``; return the response status code."""
        parts = urlsplit(url)
        try:
            port = parts.port or _default_port(parts.scheme)
        except ValueError as error:
            raise WebhookError(f"bad port in {url!r}") from error
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise WebhookError(f"not an http(s) URL: {url!r}")
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = urlencode(fields).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = (
            f"POST {target} HTTP/1.1\r\n"
            f"Host: {parts.netloc.rpartition('@')[2]}\r\n"  # never the user:password@
            f"User-Agent: {self._user_agent}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{extra}\r\n"
        ).encode("latin-1") + body
        try:
            async with asyncio.timeout(self._timeout_seconds):
                return await self._exchange(origin, request)
        except TimeoutError as error:
            raise WebhookError(f"no answer within {self._timeout_seconds} s") from error
        except (
            OSError,  # refused, reset, TLS failures
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,  # a garbled answer
        ) as error:
            raise WebhookError(f"{type(error).__name__}: {error}") from error

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.writer.close()
        self._idle.clear()

    async def _exchange(self, origin: Origin, request: bytes) -> int:
        idle = self._idle[origin]
        while idle:
            connection = idle.pop()
            try:
                return await self._send(origin, connection, request)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                # The server may close an idle connection just as we reuse it; a fresh
                # connection tells that apart from a server that is really down.
                if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                    raise
        return await self._send(origin, await self._connect(origin), request)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            context = self._ssl_context = self._ssl_context or ssl.create_default_context()
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, limit=MAX_RESPONSE_HEAD_BYTES
        )
        return _Connection(reader, writer)

    async def _send(self, origin: Origin, connection: _Connection, request: bytes) -> int:
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            status, is_reusable = await _read_response(connection.reader)
        except BaseException:  # timeouts and cancellation too: never pool a used socket
            connection.writer.close()
            raise
        idle = self._idle[origin]
        if is_reusable and len(idle) < MAX_IDLE_CONNECTIONS_PER_ORIGIN:
            idle.append(connection)
        else:
            connection.writer.close()
        return status


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status code, and whether the connection can carry another request."""
    while True:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        status_text = rest[:3]
        if not version.startswith("HTTP/1.") or not _is_ascii_number(status_text):
            raise WebhookError(f"malformed status line {status_line!r}")
        status = int(status_text)
        if status >= 200:
            break  # 1xx answers are interim: the real one follows
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()

    is_reusable = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        await _skip_chunked_body(reader)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not _is_ascii_number(length):
            raise WebhookError(f"invalid Content-Length {length!r}")
        await reader.readexactly(int(length))
    elif status in {204, 304}:
        pass
    else:
        await reader.read()  # the body runs until the server closes the connection
        is_reusable = False
    return status, is_reusable


async def _skip_chunked_body(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as error:
            raise WebhookError(f"malformed chunk size {size_line!r}") from error
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields
            return
        await reader.readexactly(size + 2)


def _is_ascii_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
