"""Waiting on a real worker in end-to-end tests: poll, and say what was left on timeout."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    from delivery.models import Message

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    statuses = Counter(Message.objects.values_list("status", flat=True))
    raise AssertionError(f"gave up waiting for {what}; messages by status: {dict(statuses)}")
