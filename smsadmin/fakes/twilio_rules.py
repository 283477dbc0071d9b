"""What the fake Twilio should do besides succeeding: latency, errors, stalls, callbacks.

The same rules are set from Python (``FakeTwilio.set_rules(...)``), from the command
line and over HTTP (``POST /_fake/rules`` with a JSON object), so they have one JSON
form, and each change names only the keys it changes::

    {
      "latency_ms": 50,                      # or [20, 80]: uniform in that range
      "creation_failures": {"+15005550001": {"status": 400, "code": 21211}},
      "delivery_failures": {"+15005550002": {"status": "undelivered", "error_code": 30003}},
      "rate_limit_next": 3,                  # the next 3 creations get 429 / 20429
      "rate_limit_fraction": 0.1,            # and then 10% of them
      "server_error_fraction": 0.05,         # 500 / 20500
      "server_errors_after_creating": false, # true: the 500 comes after the message exists
      "stall_fraction": 0.01, "stall_seconds": 30,
      "failures_include_reads": false,       # true: fetches and lists get 429/500/stalls too
      "callbacks": true,                     # POST status callbacks when asked to
      "status_delay_ms": 20                  # between queued -> sent -> delivered; null: never
    }

429s, 500s and stalls hit message creation only, unless ``failures_include_reads``: a
test of "Twilio answered 500 but created the message" needs the list call that finds it
to work. A stalled request is handled normally once the stall ends, so a client that
gave up still gets its message created, as with a slow Twilio.

Random choices use the fake's seeded generator, so a seeded fake fails the same
requests on every run that sends the same requests in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DELIVERY_FAILURE_STATUSES = ("undelivered", "failed")


class InvalidRules(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CreationFailure:
    """``POST Messages.json`` to this number is refused with this HTTP status and code."""

    status: int = 400
    code: int = 21211
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """The message is accepted, then ends ``undelivered`` (after ``sent``) or ``failed``."""

    status: str = "undelivered"
    error_code: int = 30003


@dataclass(slots=True)
class Decision:
    """What happens to one API request before it is handled."""

    delay_seconds: float = 0.0
    injected_status: int | None = None  # 429 or 500
    creates_message_first: bool = False  # a 500 that hides a message Twilio did create


@dataclass(slots=True)
class Rules:
    latency_ms: tuple[float, float] = (0.0, 0.0)
    creation_failures: dict[str, CreationFailure] = field(default_factory=dict)
    delivery_failures: dict[str, DeliveryFailure] = field(default_factory=dict)
    rate_limit_next: int = 0
    rate_limit_fraction: float = 0.0
    server_error_fraction: float = 0.0
    server_errors_after_creating: bool = False
    stall_fraction: float = 0.0
    stall_seconds: float = 30.0
    failures_include_reads: bool = False
    callbacks: bool = True
    status_delay_ms: float | None = 20.0

    def decide(self, rng: random.Random, *, is_creation: bool) -> Decision:
        """Latency, stall and injected error for the next API request (consumes counters)."""
        decision = Decision()
        low, high = self.latency_ms
        if high > 0:
            decision.delay_seconds = (low if low == high else rng.uniform(low, high)) / 1000
        if not is_creation and not self.failures_include_reads:
            return decision
        if self.stall_fraction and rng.random() < self.stall_fraction:
            decision.delay_seconds += self.stall_seconds
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            decision.injected_status = 429
        elif self.rate_limit_fraction and rng.random() < self.rate_limit_fraction:
            decision.injected_status = 429
        elif self.server_error_fraction and rng.random() < self.server_error_fraction:
            decision.injected_status = 500
            decision.creates_message_first = self.server_errors_after_creating
        return decision

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` (JSON form); raises :class:`InvalidRules` and changes nothing."""
        unknown = set(changes) - {rule.name for rule in fields(self)}
        if unknown:
            raise InvalidRules(f"unknown rules: {', '.join(sorted(unknown))}")
        parsed = {name: _PARSERS[name](value) for name, value in changes.items()}
        for name, value in parsed.items():
            setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": list(self.latency_ms),
            "creation_failures": {
                number: {"status": f.status, "code": f.code, "message": f.message}
                for number, f in self.creation_failures.items()
            },
            "delivery_failures": {
                number: {"status": f.status, "error_code": f.error_code}
                for number, f in self.delivery_failures.items()
            },
            "rate_limit_next": self.rate_limit_next,
            "rate_limit_fraction": self.rate_limit_fraction,
            "server_error_fraction": self.server_error_fraction,
            "server_errors_after_creating": self.server_errors_after_creating,
            "stall_fraction": self.stall_fraction,
            "stall_seconds": self.stall_seconds,
            "failures_include_reads": self.failures_include_reads,
            "callbacks": self.callbacks,
            "status_delay_ms": self.status_delay_ms,
        }


def _latency(value: Any) -> tuple[float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        low = high = float(value)
    elif isinstance(value, list | tuple) and len(value) == 2:
        low, high = (_number(part, "latency_ms") for part in value)
    else:
        raise InvalidRules("latency_ms must be milliseconds or [low, high]")
    if not 0 <= low <= high:
        raise InvalidRules("latency_ms must satisfy 0 <= low <= high")
    return low, high


def _creation_failures(value: Any) -> dict[str, CreationFailure]:
    failures = {}
    for number, spec in _mapping(value, "creation_failures").items():
        spec = _mapping(spec, "creation_failures entry")
        status = int(_number(spec.get("status", 400), "status"))
        if not 400 <= status <= 599:
            raise InvalidRules("a creation failure's status must be 4xx or 5xx")
        code = int(_number(spec.get("code", 21211), "code"))
        message = spec.get("message")
        failures[str(number)] = CreationFailure(
            status, code, None if message is None else str(message)
        )
    return failures


def _delivery_failures(value: Any) -> dict[str, DeliveryFailure]:
    failures = {}
    for number, spec in _mapping(value, "delivery_failures").items():
        spec = _mapping(spec, "delivery_failures entry")
        status = spec.get("status", "undelivered")
        if status not in DELIVERY_FAILURE_STATUSES:
            raise InvalidRules("a delivery failure's status is 'undelivered' or 'failed'")
        code = int(_number(spec.get("error_code", 30003), "error_code"))
        failures[str(number)] = DeliveryFailure(status, code)
    return failures


def _fraction(value: Any) -> float:
    fraction = _number(value, "fraction")
    if not 0 <= fraction <= 1:
        raise InvalidRules("fractions are between 0 and 1")
    return fraction


def _non_negative(value: Any) -> float:
    number = _number(value, "value")
    if number < 0:
        raise InvalidRules("counts and durations cannot be negative")
    return number


def _optional_delay(value: Any) -> float | None:
    return None if value is None else _non_negative(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidRules("expected true or false")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRules(f"{name} must be a number")
    return float(value)


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRules(f"{name} must be an object")
    return value


_PARSERS = {
    "latency_ms": _latency,
    "creation_failures": _creation_failures,
    "delivery_failures": _delivery_failures,
    "rate_limit_next": lambda value: int(_non_negative(value)),
    "rate_limit_fraction": _fraction,
    "server_error_fraction": _fraction,
    "server_errors_after_creating": _boolean,
    "stall_fraction": _fraction,
    "stall_seconds": _non_negative,
    "failures_include_reads": _boolean,
    "callbacks": _boolean,
    "status_delay_ms": _optional_delay,
}
