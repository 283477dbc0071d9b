"""What the fake Twilio knows: its messages, the requests it received, the callbacks it
sent and its rules, shared between its event loop and the test's thread.

Everything goes through one lock, held only for dictionary-sized work; readers get
copies, so a test can look at a message while the fake moves it to ``delivered``.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smsadmin.fakes.twilio_rules import CreationFailure, Decision, DeliveryFailure, Rules
from smsadmin.fakes.twilio_wire import FakeMessage, error_message, rfc2822


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request to a Twilio API path, as the fake received and answered it."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]  # a repeated field (MediaUrl) keeps its last value
    auth_user: str | None  # the Basic-auth user name presented, valid or not
    received_at: float  # seconds since the epoch
    status: int
    sid: str | None = None  # the message created or fetched
    error_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "form": self.form,
            "auth_user": self.auth_user,
            "received_at": self.received_at,
            "status": self.status,
            "sid": self.sid,
            "error_code": self.error_code,
        }


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One POST of a status callback; ``status`` is None when no HTTP answer came."""

    url: str
    fields: dict[str, str]
    signature: str
    attempt: int
    sent_at: float
    status: int | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "fields": self.fields,
            "signature": self.signature,
            "attempt": self.attempt,
            "sent_at": self.sent_at,
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class StatusChange:
    next_delay_seconds: float | None  # None: no further change
    callback_url: str | None  # where to post this change, if anywhere
    callback_fields: dict[str, str]


@dataclass(slots=True)
class _Log:
    requests: deque[RecordedRequest]
    callbacks: deque[CallbackAttempt]
    messages: dict[str, FakeMessage] = field(default_factory=dict)
    messages_by_to: dict[str, deque[FakeMessage]] = field(default_factory=dict)


class TwilioState:
    def __init__(self, *, rules: Rules, seed: int | None, max_records: int) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a request logged, a delivery done
        self._initial_rules = copy.deepcopy(rules)
        self._seed = seed
        self._max_records = max_records
        # Separate generators, so that creating messages never shifts which requests
        # the seeded rules fail.
        self._sid_random = random.Random(None if seed is None else f"sids-{seed}")  # noqa: S311
        self._generation = 0
        self._reset_locked(rules=True)

    # --- rules ------------------------------------------------------------------------
    def decide(self, *, is_creation: bool) -> Decision:
        with self._lock:
            return self._rules.decide(self._random, is_creation=is_creation)

    def failures_for(self, to: str) -> tuple[CreationFailure | None, DeliveryFailure | None]:
        with self._lock:
            return (
                self._rules.creation_failures.get(to),
                self._rules.delivery_failures.get(to),
            )

    def update_rules(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._rules.update(changes)
            return self._rules.to_json()

    def add_failures(
        self,
        creation: Mapping[str, CreationFailure] | None = None,
        delivery: Mapping[str, DeliveryFailure] | None = None,
    ) -> None:
        with self._lock:
            self._rules.creation_failures.update(creation or {})
            self._rules.delivery_failures.update(delivery or {})

    def rules_json(self) -> dict[str, Any]:
        with self._lock:
            return self._rules.to_json()

    # --- messages ---------------------------------------------------------------------
    def new_sid(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{self._sid_random.getrandbits(128):032x}"

    def add_message(self, message: FakeMessage) -> None:
        with self._lock:
            log = self._log
            if len(log.messages) >= self._max_records:
                oldest = log.messages.pop(next(iter(log.messages)))
                same_to = log.messages_by_to[oldest.to]
                same_to.popleft()  # the oldest overall is the oldest to its number too
                if not same_to:
                    del log.messages_by_to[oldest.to]
            log.messages[message.sid] = message
            log.messages_by_to.setdefault(message.to, deque()).append(message)

    def message(self, sid: str) -> FakeMessage | None:
        with self._lock:
            message = self._log.messages.get(sid)
            return copy.copy(message) if message else None

    def message_json(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            message = self._log.messages.get(sid)
            return message.to_json() if message else None

    def find_messages(
        self, to: str | None = None, matches: Callable[[FakeMessage], bool] | None = None
    ) -> list[FakeMessage]:
        """Copies of the messages (to ``to``, passing ``matches``), newest first."""
        with self._lock:
            if to is None:
                candidates = reversed(self._log.messages.values())
            else:
                candidates = reversed(self._log.messages_by_to.get(to, ()))
            return [copy.copy(m) for m in candidates if matches is None or matches(m)]

    def set_status(
        self,
        sid: str,
        status: str,
        *,
        generation: int,
        failure: DeliveryFailure | None = None,
        sender_for_service: str = "",
    ) -> StatusChange | None:
        """Move a message on; None when it is gone or the fake was reset meanwhile."""
        with self._lock:
            message = self._log.messages.get(sid)
            if message is None or generation != self._generation:
                return None
            now = time.time()
            message.status = status
            message.date_updated = now
            if status == "sent":
                message.date_sent = now
                message.from_ = message.from_ or sender_for_service
            if failure is not None and status in {"failed", "undelivered"}:
                message.error_code = failure.error_code
                message.error_message = error_message(failure.error_code)
            delay = self._rules.status_delay_ms
            url = message.status_callback if self._rules.callbacks else None
            return StatusChange(
                next_delay_seconds=None if delay is None else delay / 1000,
                callback_url=url,
                callback_fields=message.callback_fields() if url else {},
            )

    # --- logs -------------------------------------------------------------------------
    def record_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.requests.append(request)
            self._requests_recorded += 1
            self._changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: self._requests_recorded >= count, timeout)

    def requests(self, to: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            requests = list(self._log.requests)
        if to is None:
            return requests
        return [r for r in requests if to in (r.form.get("To"), r.query.get("To"))]

    def record_callback(self, attempt: CallbackAttempt) -> None:
        with self._lock:
            self._log.callbacks.append(attempt)

    def callbacks(self) -> list[CallbackAttempt]:
        with self._lock:
            return list(self._log.callbacks)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": "ok",
                "messages": len(self._log.messages),
                "requests": len(self._log.requests),
                "pending_deliveries": self._pending_deliveries,
                "time": rfc2822(time.time()),
            }

    # --- deliveries in flight ---------------------------------------------------------
    def begin_delivery(self) -> tuple[float, int] | None:
        """For a new message: the delay to its first status change and the generation to
        hand back later, counted as pending; None when statuses never change."""
        with self._lock:
            delay = self._rules.status_delay_ms
            if delay is None:
                return None
            self._pending_deliveries += 1
            return delay / 1000, self._generation

    def end_delivery(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._pending_deliveries -= 1
                if self._pending_deliveries == 0:
                    self._changed.notify_all()

    def wait_for_deliveries(self, timeout: float) -> bool:
        with self._lock:
            return self._changed.wait_for(lambda: self._pending_deliveries == 0, timeout)

    # --- reset ------------------------------------------------------------------------
    def reset(self, *, rules: bool = True) -> None:
        with self._lock:
            self._reset_locked(rules=rules)
            self._changed.notify_all()

    def _reset_locked(self, *, rules: bool) -> None:
        self._generation += 1  # deliveries scheduled before the reset see it and stop
        self._pending_deliveries = 0
        self._requests_recorded = 0
        self._log = _Log(deque(maxlen=self._max_records), deque(maxlen=self._max_records))
        if rules:
            self._rules = copy.deepcopy(self._initial_rules)
            self._random = random.Random(self._seed)  # noqa: S311 - chaos, not secrets
