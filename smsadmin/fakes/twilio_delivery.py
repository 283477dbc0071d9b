"""What happens to a message after the fake Twilio accepted it.

Each status change (``queued → sent → delivered``, or ``failed``, or ``sent →
undelivered``) comes ``status_delay_ms`` after the previous one. When the message has a
``StatusCallback`` and callbacks are on, each change is POSTed there, signed with the
account's auth token like Twilio's webhooks; a callback that gets no answer or a 5xx is
retried twice, then logged and given up, and the next change waits for it.

Messages without callbacks cost two timer entries on the event loop; no task at all.
"""

from __future__ import annotations

import asyncio
import logging
import time

from smsadmin.fakes.http_client import WebhookClient, WebhookError
from smsadmin.fakes.twilio_rules import DeliveryFailure
from smsadmin.fakes.twilio_state import CallbackAttempt, StatusChange, TwilioState
from smsadmin.fakes.twilio_wire import FakeMessage, twilio_signature

logger = logging.getLogger(__name__)

# A message sent through a Messaging Service gets its sender when it leaves: this one.
MESSAGING_SERVICE_SENDER = "+15005550006"
CALLBACK_RETRY_DELAYS_SECONDS = (0.1, 0.5)  # after the first attempt: three in all
MAX_CALLBACKS_IN_FLIGHT = 32


class Deliveries:
    def __init__(self, state: TwilioState, *, auth_token: str) -> None:
        self._state = state
        self._auth_token = auth_token
        self._webhooks = WebhookClient(user_agent="TwilioProxy/1.1")
        self._callback_slots: asyncio.Semaphore | None = None
        self._background_tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._background_tasks):
            task.cancel()
        await self._webhooks.close()

    def start(self, message: FakeMessage, failure: DeliveryFailure | None) -> None:
        """Schedule the message's status changes (and callbacks) from now on."""
        schedule = self._state.begin_delivery()
        if schedule is None:
            return
        delay, generation = schedule
        if failure is None:
            steps: tuple[str, ...] = ("sent", "delivered")
        elif failure.status == "failed":
            steps = ("failed",)
        else:
            steps = ("sent", failure.status)
        asyncio.get_running_loop().call_later(
            delay, self._advance, message.sid, steps, failure, generation
        )

    def _advance(
        self,
        sid: str,
        steps: tuple[str, ...],
        failure: DeliveryFailure | None,
        generation: int,
    ) -> None:
        change = self._state.set_status(
            sid,
            steps[0],
            generation=generation,
            failure=failure,
            sender_for_service=MESSAGING_SERVICE_SENDER,
        )
        if change is None:
            self._state.end_delivery(generation)
        elif change.callback_url:
            task = asyncio.get_running_loop().create_task(
                self._post_then_continue(sid, steps, failure, generation, change)
            )
            self._background_tasks.add(task)
            task.add_done_callback(self._background_tasks.discard)
        else:
            self._continue(sid, steps, failure, generation, change.next_delay_seconds)

    def _continue(
        self,
        sid: str,
        steps: tuple[str, ...],
        failure: DeliveryFailure | None,
        generation: int,
        delay: float | None,
    ) -> None:
        if len(steps) == 1 or delay is None:
            self._state.end_delivery(generation)
            return
        asyncio.get_running_loop().call_later(
            delay, self._advance, sid, steps[1:], failure, generation
        )

    async def _post_then_continue(
        self,
        sid: str,
        steps: tuple[str, ...],
        failure: DeliveryFailure | None,
        generation: int,
        change: StatusChange,
    ) -> None:
        # Waiting for one callback before the next keeps them in order (sent before
        # delivered), which is what Twilio does most of the time.
        try:
            await self._post_callback(str(change.callback_url), change.callback_fields)
        finally:
            self._continue(sid, steps, failure, generation, change.next_delay_seconds)

    async def _post_callback(self, url: str, fields: dict[str, str]) -> None:
        if self._callback_slots is None:
            self._callback_slots = asyncio.Semaphore(MAX_CALLBACKS_IN_FLIGHT)
        signature = twilio_signature(self._auth_token, url, fields)
        headers = {"X-Twilio-Signature": signature}
        for attempt, pause in enumerate((0.0, *CALLBACK_RETRY_DELAYS_SECONDS), start=1):
            if pause:
                await asyncio.sleep(pause)
            sent_at = time.time()
            try:
                async with self._callback_slots:  # a slow receiver must not get thousands
                    status = await self._webhooks.post_form(url, fields, headers=headers)
            except WebhookError as error:
                logger.warning("Status callback to %s failed: %s", url, error)
                self._state.record_callback(
                    CallbackAttempt(url, fields, signature, attempt, sent_at, None, str(error))
                )
                continue
            self._state.record_callback(
                CallbackAttempt(url, fields, signature, attempt, sent_at, status)
            )
            if status < 500:
                return
            logger.warning("Status callback to %s answered %s", url, status)
        logger.error("Gave up on a status callback to %s for %s", url, fields["MessageSid"])
