"""Checks a candidate daily message must pass before it is sent to members.

:func:`check_message` returns the first problem as a :class:`Rejection` with a stable
``code`` (for logs and tests) and a ``reason`` a person can read, or ``None`` when the
message may be sent. The checks run cheapest first, so a message that is obviously
wrong is never compared against the recent ones.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from delivery.segments import analyze

_PUNCTUATION_TABLE = str.maketrans(dict.fromkeys(string.punctuation, " "))
_WHITESPACE = re.compile(r"\s+")

_SCHEME_OR_WWW = re.compile(r"https?://|\bwww\.", re.IGNORECASE)
# A bare domain is only a link when it ends in a top-level domain people actually type;
# matching any "word.word" would reject ordinary sentences written without a space after
# the full stop ("Rest well.Tomorrow").
_BARE_DOMAIN = re.compile(
    r"\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
    r"(?:com|org|net|edu|gov|info|biz|io|co|uk|us|ca|au|nz|ie|de|fr|es|it|nl|eu|in"
    r"|me|ly|app|dev|page|site|online|link|tv|to|gl|gd|xyz|shop|club)\b",
    re.IGNORECASE,
)
# Seven or more digits, optionally split by the separators people write numbers with,
# or a "+" straight before a digit (an international prefix).
_PHONE_NUMBER = re.compile(r"\d(?:[\s().-]*\d){6,}|\+\s*\d")

_NON_SPACE = re.compile(r"\S+")
_TRAILING_PUNCTUATION = ".,;:!?)\"'"
_QUOTED_TEXT_LENGTH = 40
# Above this similarity to a recent message, a new one reads as a repeat.
SIMILARITY_THRESHOLD = 0.6


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    reason: str


def normalize_for_comparison(text: str) -> str:
    """``text`` casefolded, punctuation turned into spaces, whitespace collapsed."""
    without_punctuation = text.casefold().translate(_PUNCTUATION_TABLE)
    return _WHITESPACE.sub(" ", without_punctuation).strip()


def similarity(a: str, b: str) -> float:
    """How alike two messages read, from 0 (nothing shared) to 1 (the same words).

    The larger of two measures on the normalised texts: the ``SequenceMatcher`` ratio
    catches a light rewording that keeps most characters in order, and the Jaccard
    similarity of the word sets catches the same words shuffled into a new order, which
    the character ratio scores low.
    """
    normalized_a = normalize_for_comparison(a)
    normalized_b = normalize_for_comparison(b)
    if normalized_a == normalized_b:
        return 1.0
    if not normalized_a or not normalized_b:
        return 0.0
    words_a = set(normalized_a.split())
    words_b = set(normalized_b.split())
    word_overlap = len(words_a & words_b) / len(words_a | words_b)
    character_ratio = SequenceMatcher(None, normalized_a, normalized_b, autojunk=False).ratio()
    return max(word_overlap, character_ratio)


def check_message(
    text: str,
    *,
    recent: Sequence[str],
    max_segments: int = 1,
    allow_unicode: bool = False,
    similarity_threshold: float = SIMILARITY_THRESHOLD,
) -> Rejection | None:
    """The first reason ``text`` must not be sent, or ``None`` when it may be.

    ``recent`` holds the messages sent lately; ``text`` is rejected when it is more
    than ``similarity_threshold`` alike to any of them.
    """
    if not text.strip():
        return Rejection("empty", "The message is empty.")

    info = analyze(text)
    if not info.is_gsm and not allow_unicode:
        described = ", ".join(
            repr(character) if replacement is None else f"{character!r} (use {replacement!r})"
            for character, replacement in info.non_gsm_characters
        )
        return Rejection("not_gsm", f"Characters outside the GSM-7 alphabet: {described}.")

    if info.segments > max_segments:
        return Rejection(
            "too_long",
            f"The message needs {info.segments} {info.encoding} segments "
            f"({info.units} units); at most {max_segments} allowed.",
        )

    link = _SCHEME_OR_WWW.search(text) or _BARE_DOMAIN.search(text)
    if link is not None:
        # Name the whole link, not only the part that gave it away ("www.").
        whole = _NON_SPACE.match(text, link.start()).group(0).rstrip(_TRAILING_PUNCTUATION)
        return Rejection("link", f"The message contains a link: {whole!r}.")

    phone_number = _PHONE_NUMBER.search(text)
    if phone_number is not None:
        return Rejection(
            "phone_number", f"The message contains a phone number: {phone_number.group(0)!r}."
        )

    for earlier in recent:
        score = similarity(text, earlier)
        if score > similarity_threshold:
            return Rejection(
                "too_similar",
                f"The message is {score:.0%} similar to a recent one: {_truncate(earlier)!r}.",
            )
    return None


def _truncate(text: str) -> str:
    if len(text) <= _QUOTED_TEXT_LENGTH:
        return text
    return text[: _QUOTED_TEXT_LENGTH - 3].rstrip() + "..."
