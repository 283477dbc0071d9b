"""Twilio through the official SDK, asynchronously: many requests in flight, one pool."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from delivery.backends.base import (
    NotFoundAtProvider,
    OutgoingSms,
    ProviderUnavailable,
    SendOutcome,
    SendResult,
)


class TwilioBackend:
    """Create it inside the event loop that will use it (aiohttp's session belongs to it)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        status_callback_url: str,
        timeout: float,
        base_url: str = "",
        max_connections: int = 100,
    ) -> None:
        self._http = _DeadlineHttpClient(deadline=timeout)
        self._http.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections)
        )
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if base_url:
            self._client.api.base_url = base_url.rstrip("/")
        self._status_callback_url = status_callback_url

    async def send(self, sms: OutgoingSms) -> SendResult:
        parameters: dict[str, str] = {"to": sms.to, "body": sms.body}
        if self._status_callback_url:
            parameters["status_callback"] = self._status_callback_url
        if sms.sender.startswith("MG"):
            parameters["messaging_service_sid"] = sms.sender
        else:
            parameters["from_"] = sms.sender
        started = time.perf_counter()
        try:
            message = await self._client.messages.create_async(**parameters)
        except TwilioRestException as error:
            # 429: not taken, try again. 5xx: it may exist anyway, so reconcile before
            # sending again. Other 4xx: refused for good.
            if error.status == 429:
                outcome = SendOutcome.RETRY
            elif error.status >= 500:
                outcome = SendOutcome.UNKNOWN
            else:
                outcome = SendOutcome.FAILED
            return SendResult(
                outcome=outcome,
                duration_ms=_elapsed_ms(started),
                http_status=error.status,
                error_code=error.code,
                error_message=str(error.msg)[:255],
            )
        except aiohttp.ClientConnectorError as error:
            # The connection was never made: nothing reached Twilio.
            return SendResult(
                outcome=SendOutcome.RETRY,
                duration_ms=_elapsed_ms(started),
                error_message=f"connection failed: {error}"[:255],
            )
        except (TimeoutError, aiohttp.ClientError) as error:
            # The request may have reached Twilio: reconcile before sending it again.
            return SendResult(
                outcome=SendOutcome.UNKNOWN,
                duration_ms=_elapsed_ms(started),
                error_message=f"{type(error).__name__}: {error}"[:255],
            )
        return SendResult(
            outcome=SendOutcome.ACCEPTED,
            duration_ms=_elapsed_ms(started),
            provider_sid=message.sid,
            http_status=201,
        )

    async def find_sent(self, *, to: str, sender: str, body: str, since: datetime) -> str | None:
        # Twilio lists a number's messages newest first; a crashed send is recent.
        messages = await self._client.messages.list_async(to=to, limit=50)
        earliest = since - timedelta(minutes=1)
        for message in messages:
            same_sender = sender in (message.from_, message.messaging_service_sid)
            created = message.date_created
            if same_sender and message.body == body and (created is None or created >= earliest):
                return message.sid
        return None

    async def fetch_status(self, provider_sid: str) -> tuple[str, int | None]:
        try:
            message = await self._client.messages(provider_sid).fetch_async()
        except TwilioRestException as error:
            if error.status == 404:
                raise NotFoundAtProvider(provider_sid) from error
            raise ProviderUnavailable(f"Twilio answered {error.status}: {error.msg}") from error
        except (TimeoutError, aiohttp.ClientError) as error:
            raise ProviderUnavailable(str(error) or type(error).__name__) from error
        return message.status, message.error_code

    async def aclose(self) -> None:
        if self._http.session is not None:
            await self._http.session.close()


class _DeadlineHttpClient(AsyncTwilioHttpClient):
    """The SDK's async client ignores its own timeout and sends ``timeout=None``, which
    aiohttp reads as "wait forever": give every request our deadline."""

    def __init__(self, *, deadline: float) -> None:
        super().__init__(pool_connections=False)
        self._deadline = deadline

    async def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return await super().request(*args, timeout=timeout or self._deadline, **kwargs)


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
