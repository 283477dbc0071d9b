"""Send a batch's due messages: many requests in flight, one shared rate limit.

One event loop per call. A producer claims messages in chunks (database work runs on
one thread of its own, since Django's ORM is synchronous), senders take them off a
queue, wait for the sender's rate limit and call the backend, and a flusher writes the
outcomes back in batches. Transient errors are retried here a few times with back-off;
a message still failing goes back to ``pending`` for later, up to SMS_MAX_ATTEMPTS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from delivery.backends import OutgoingSms, SendOutcome, SendResult, SmsBackend, create_backend
from delivery.claims import (
    AttemptRecord,
    ClaimedMessage,
    SendRecord,
    claim_due_messages,
    record_results,
)
from delivery.models import Attempt, Batch
from delivery.ratelimit import (
    LocalRateLimiter,
    RateLimiter,
    create_rate_limiter,
    rate_for,
    window_for,
)
from members.models import OptOut, Suppression
from smsadmin.metrics import recording as metrics

logger = logging.getLogger(__name__)

# Tries inside one round before a transiently failing message is put back for later.
IN_ROUND_TRIES = 3
FLUSH_EVERY_SECONDS = 0.05
BLOCK_CHECK_EVERY_SECONDS = 0.25


@dataclass
class SendSummary:
    claimed: int = 0
    accepted: int = 0
    failed: int = 0
    retry_later: int = 0
    skipped: int = 0
    rate_limit_waits: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)

    def add(self, record: SendRecord) -> None:
        if record.outcome == SendOutcome.ACCEPTED:
            self.accepted += 1
        elif record.outcome == SendOutcome.SKIPPED:
            self.skipped += 1
        elif record.outcome == SendOutcome.FAILED:
            self.failed += 1
        else:
            self.retry_later += 1


def send_due_messages(*, batch_id: int, max_messages: int) -> SendSummary:
    """Claim and send up to ``max_messages`` due messages of one batch; return a summary."""
    return asyncio.run(_BatchSender(batch_id=batch_id, max_messages=max_messages).run())


class _BatchSender:
    def __init__(self, *, batch_id: int, max_messages: int) -> None:
        self.batch_id = batch_id
        self.max_messages = max_messages
        self.concurrency = settings.SMS_SEND_CONCURRENCY
        self.chunk_size = settings.SMS_SEND_CHUNK_SIZE
        self.summary = SendSummary()
        self._database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery-db")
        self._done: list[SendRecord] = []
        self._stopping = asyncio.Event()
        # Phones opted out or suppressed since this run began: a STOP that arrives while a
        # message waits in the queue still stops it (the claim checked the phone earlier).
        self._started_at = timezone.now()
        self._newly_opted_out: set[str] = set()
        self._newly_suppressed: set[str] = set()

    async def run(self) -> SendSummary:
        sender = await self._in_database(
            lambda: Batch.objects.values_list("sender", flat=True).filter(pk=self.batch_id).first()
        )
        if sender is None:
            self._database.shutdown()
            return self.summary
        # Claim about two seconds of sending at a time: a worker that dies holds little,
        # and what it held is reconciled after the lease.
        rate = rate_for(sender)
        self.chunk_size = max(1, min(self.chunk_size, int(rate * 2)))
        # More requests in flight than a second's worth would only wait on the limiter.
        self.concurrency = max(1, min(self.concurrency, int(rate) + 4))
        self.backend: SmsBackend = create_backend()
        self.limiter: RateLimiter = create_rate_limiter()  # type: ignore[assignment]
        self.permits = _GroupedPermits(self.limiter)
        queue: asyncio.Queue[ClaimedMessage | None] = asyncio.Queue(maxsize=self.chunk_size)
        flusher = asyncio.create_task(self._flush_periodically())
        watcher = asyncio.create_task(self._watch_new_blocks())
        senders = [asyncio.create_task(self._sender(queue)) for _ in range(self.concurrency)]
        producer = asyncio.create_task(self._produce(queue))
        try:
            await asyncio.gather(producer, *senders)
        except BaseException:
            # A sender died (Redis gone under the rate limiter...): stop the rest, or the
            # producer would wait for ever on a full queue and hold the worker's slot.
            # Claimed messages not sent stay "sending" and are reconciled, never resent.
            for task in (producer, *senders):
                task.cancel()
            await asyncio.gather(producer, *senders, return_exceptions=True)
            raise
        finally:
            # Stop the flusher by asking, never by cancelling: a cancelled write still
            # waiting for the database thread would be dropped, leaving rows in "sending".
            self._stopping.set()
            await flusher
            watcher.cancel()
            await self._flush()
            await self.backend.aclose()
            await self.limiter.aclose()
            # The database thread's own connection, not this thread's.
            await self._in_database(lambda: connection.close())
            self._database.shutdown()
        self.summary.rate_limit_waits = self.limiter.waits
        return self.summary

    async def _in_database(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._database, lambda: function(*args, **kwargs))

    async def _produce(self, queue: asyncio.Queue[ClaimedMessage | None]) -> None:
        while self.summary.claimed < self.max_messages:
            limit = min(self.chunk_size, self.max_messages - self.summary.claimed)
            claimed = await self._in_database(
                claim_due_messages, batch_id=self.batch_id, limit=limit
            )
            if not claimed:
                break
            self.summary.claimed += len(claimed)
            for message in claimed:
                await queue.put(message)
        # The senders stop on these. Not in a ``finally``: when the producer fails or is
        # cancelled (a sender died), run() cancels the senders, and waiting here for room
        # in a queue nobody reads any more would hang the task until its time limit.
        for _ in range(self.concurrency):
            await queue.put(None)

    async def _sender(self, queue: asyncio.Queue[ClaimedMessage | None]) -> None:
        while (message := await queue.get()) is not None:
            record = await self._send_one(message)
            self.summary.add(record)
            self._done.append(record)

    async def _send_one(self, message: ClaimedMessage) -> SendRecord:
        sms = OutgoingSms(
            message_id=message.id, to=message.phone, sender=message.sender, body=message.body
        )
        attempts: list[AttemptRecord] = []
        if message.must_reconcile:
            # An earlier try may have reached the provider: never send before knowing.
            started_at = timezone.now()
            found = await self._look_up(sms, message)
            if found is None:
                return SendRecord(message=message, outcome=SendOutcome.UNKNOWN, attempts=[])
            if found:
                result = SendResult(
                    outcome=SendOutcome.ACCEPTED,
                    duration_ms=0,
                    provider_sid=found,
                    error_message=_FOUND_AT_PROVIDER,
                )
                return _record(message, result, [_attempt_record(started_at, result)])
        result = SendResult(outcome=SendOutcome.RETRY, duration_ms=0)
        for try_number in range(1, IN_ROUND_TRIES + 1):
            # Before the rate limiter too: a released message should not use up a permit.
            if self._claim_too_old(message):
                return SendRecord(message=message, outcome=SendOutcome.RELEASED, attempts=attempts)
            await self.permits.acquire(message.sender, message.segments)
            if self._blocked_since_claim(message):  # checked last thing before sending
                return SendRecord(message=message, outcome=SendOutcome.SKIPPED, attempts=attempts)
            if self._claim_too_old(message):
                return SendRecord(message=message, outcome=SendOutcome.RELEASED, attempts=attempts)
            started_at = timezone.now()
            result = await self.backend.send(sms)
            metrics.observe_provider_send(result=result, claimed_at=message.claimed_at)
            if result.outcome == SendOutcome.UNKNOWN:
                result = await self._resolve_unknown(sms, message, result)
            attempts.append(_attempt_record(started_at, result))
            if result.outcome != SendOutcome.RETRY:
                break
            if try_number < IN_ROUND_TRIES:
                await asyncio.sleep(_backoff_seconds(try_number))
        return _record(message, result, attempts)

    async def _look_up(self, sms: OutgoingSms, message: ClaimedMessage) -> str | None:
        """The provider SID of this message if the provider has it, "" if it has not,
        None if the provider could not tell us."""
        try:
            sid = await self.backend.find_sent(
                to=sms.to, sender=sms.sender, body=sms.body, since=message.claimed_at
            )
        except Exception:
            logger.warning("Could not look message %s up at the provider", message.id)
            return None
        return sid or ""

    async def _resolve_unknown(
        self, sms: OutgoingSms, message: ClaimedMessage, result: SendResult
    ) -> SendResult:
        """After a timeout or a 5xx, ask the provider whether it took the message."""
        found = await self._look_up(sms, message)
        if found:
            return SendResult(
                outcome=SendOutcome.ACCEPTED,
                duration_ms=result.duration_ms,
                provider_sid=found,
                http_status=result.http_status,
                error_message=_FOUND_AT_PROVIDER,
            )
        if found == "":
            return SendResult(
                outcome=SendOutcome.RETRY,
                duration_ms=result.duration_ms,
                http_status=result.http_status,
                error_code=result.error_code,
                error_message=result.error_message,
            )
        return result  # still unknown: held back until the provider can answer

    def _claim_too_old(self, message: ClaimedMessage) -> bool:
        """Past half its lease a claim is not sent: once the lease is over, reconcile may
        ask the provider about the message and, not finding it, queue it again for
        another worker; a send started now could land after that look-up and the text go
        out twice. Released instead (pending again; the write is guarded by the claim), it
        goes out once, from whoever claims it next. Half the lease leaves the other half
        for a request already under way to reach the provider."""
        age = timezone.now() - message.claimed_at
        return age >= timedelta(seconds=settings.SMS_SENDING_LEASE_SECONDS / 2)

    def _blocked_since_claim(self, message: ClaimedMessage) -> bool:
        if message.phone in self._newly_suppressed:
            return True
        # The answer to a STOP goes to the phone that just opted out.
        return message.phone in self._newly_opted_out and not message.is_compliance_reply

    async def _watch_new_blocks(self) -> None:
        while True:
            await asyncio.sleep(BLOCK_CHECK_EVERY_SECONDS)
            opted_out, suppressed = await self._in_database(
                _blocks_created_since, self._started_at - timedelta(seconds=5)
            )
            self._newly_opted_out |= opted_out
            self._newly_suppressed |= suppressed

    async def _flush_periodically(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), FLUSH_EVERY_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        await self._in_database(record_results, done)
        await self._in_database(metrics.count_send_records, done, batch_id=self.batch_id)


_FOUND_AT_PROVIDER = "found at the provider"


# Sends granted together at most: each costs about half a millisecond of CPU to go out,
# and the last should leave within the limiter's few milliseconds of guard after the grant.
# Under a limit below 100 segments a second per send of a group, sends are granted one by
# one, as a group may hold back room in the window that a smaller send could have used.
_GROUP_SIZE = 8
_SEGMENTS_PER_SECOND_PER_GROUPED_SEND = 100


class _GroupedPermits:
    """The shared rate limit, asked once for all the sends that wait at the same moment.

    The limiter lets one caller per sender and process talk to Redis at a time, and a
    busy event loop stretches each of those round trips: asked once per message, it caps a
    process at a few hundred sends a second whatever the limit. Here the sends that are
    waiting when a request goes out are granted together by the next one (a few at a time),
    for their total segments (never more than the window holds, so the limiter counts them
    exactly), and each goes out as soon as it is granted, as before.

    Once the limit binds (the limiter made a request wait), requests go one send at a time
    again until one is granted at once: a group waits for room for all of it while the
    room for a part goes unused. Under a low limit (where one request per send is no
    bottleneck) sends are always granted one by one, exactly as the limiter would alone.
    """

    def __init__(self, limiter: RateLimiter | LocalRateLimiter) -> None:
        self._limiter = limiter
        self._waiting: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._granters: dict[str, asyncio.Task[None]] = {}

    async def acquire(self, sender: str, segments: int) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(sender, deque()).append((segments, granted))
        if sender not in self._granters:
            self._granters[sender] = asyncio.create_task(self._grant(sender))
        await granted

    async def _grant(self, sender: str) -> None:
        limit, _ = window_for(rate_for(sender))
        largest_group = max(1, min(_GROUP_SIZE, limit // _SEGMENTS_PER_SECOND_PER_GROUPED_SEND))
        group_size = 1
        waiting = self._waiting[sender]
        try:
            while waiting:
                group: list[asyncio.Future[None]] = []
                total = 0
                # The limiter counts a message longer than the window as the whole window.
                while (
                    waiting
                    and len(group) < group_size
                    and (cost := min(max(1, waiting[0][0]), limit)) + total <= limit
                ):
                    total += cost
                    group.append(waiting.popleft()[1])
                waits = self._limiter.waits
                try:
                    await self._limiter.acquire(sender, total)
                except BaseException as error:
                    # Every waiter fails as its own acquire would have (e.g. Redis is down).
                    for granted in [*group, *(future for _, future in waiting)]:
                        _fail(granted, error)
                    waiting.clear()
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    return
                for granted in group:
                    if not granted.done():
                        granted.set_result(None)
                group_size = 1 if self._limiter.waits > waits else largest_group
        finally:
            del self._granters[sender]


def _fail(granted: asyncio.Future[None], error: BaseException) -> None:
    if granted.done():
        return
    if isinstance(error, asyncio.CancelledError):
        granted.cancel()
    else:
        granted.set_exception(error)


def _record(
    message: ClaimedMessage, result: SendResult, attempts: list[AttemptRecord]
) -> SendRecord:
    return SendRecord(
        message=message,
        outcome=result.outcome,
        attempts=attempts,
        provider_sid=result.provider_sid,
        error_code=result.error_code,
        error_message="" if result.outcome == SendOutcome.ACCEPTED else result.error_message,
    )


def _attempt_record(started_at: Any, result: SendResult) -> AttemptRecord:
    outcome = {
        SendOutcome.ACCEPTED: Attempt.Outcome.ACCEPTED,
        SendOutcome.FAILED: Attempt.Outcome.FAILED,
        SendOutcome.UNKNOWN: Attempt.Outcome.UNKNOWN,
    }.get(result.outcome, Attempt.Outcome.RETRY)
    if result.outcome == SendOutcome.ACCEPTED and result.error_message == _FOUND_AT_PROVIDER:
        outcome = Attempt.Outcome.RECONCILED
    return AttemptRecord(
        started_at=started_at,
        duration_ms=result.duration_ms,
        outcome=outcome,
        http_status=result.http_status,
        error_code=result.error_code,
        error_message=result.error_message,
    )


def _blocks_created_since(since: datetime) -> tuple[set[str], set[str]]:
    """Phones opted out / suppressed (still active) since ``since``: two indexed reads."""
    return (
        set(OptOut.objects.active().filter(created_at__gte=since).values_list("phone", flat=True)),
        set(
            Suppression.objects.active()
            .filter(created_at__gte=since)
            .values_list("phone", flat=True)
        ),
    )


def _backoff_seconds(try_number: int) -> float:
    return min(8.0, 0.5 * 2 ** (try_number - 1)) * (0.5 + random.random())  # noqa: S311
