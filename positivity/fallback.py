"""The library of hand-written daily messages, used when no fresh one can be made."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_LIBRARY_PATH = Path(__file__).with_name("fallback_messages.txt")


@cache
def load_fallback_library() -> tuple[str, ...]:
    """Every message in ``fallback_messages.txt``, in file order, blank lines skipped."""
    lines = _LIBRARY_PATH.read_text(encoding="utf-8").splitlines()
    return tuple(stripped for line in lines if (stripped := line.strip()))
