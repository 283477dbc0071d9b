"""What an inbound text asks for: a STOP/START/HELP or JOIN keyword, or a stop request
in words.

A keyword is the whole message, as carriers and Twilio read it: case, surrounding
spaces and trailing punctuation do not matter, anything else does ("STOP ALL" and
"stopping by later" are not keywords). Texts that are not keywords but ask to stop in
so many words are only *flagged* for staff, because a pattern can be wrong; the lists
below are the one place to extend either. The join words (the daily message) are a
setting, ``DAILY_MESSAGE_JOIN_KEYWORDS``; a word that is also a STOP, START or HELP word
keeps that meaning, because those must always work.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings


class KeywordKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    JOIN = "join"  # the daily message; never one of Twilio's OptOutTypes


KEYWORDS: dict[KeywordKind, frozenset[str]] = {
    # Twilio's and the CTIA's standard opt-out words (REVOKE and OPTOUT since 2025).
    KeywordKind.OPT_OUT: frozenset(
        {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
    ),
    KeywordKind.OPT_IN: frozenset({"START", "YES", "UNSTOP"}),
    KeywordKind.HELP: frozenset({"HELP", "INFO"}),
}
_KIND_OF_WORD = {word: kind for kind, words in KEYWORDS.items() for word in words}

# Twilio's Advanced Opt-Out names the kind of keyword it matched (its own custom
# keywords and languages included) in the webhook's ``OptOutType`` field.
_KIND_OF_OPT_OUT_TYPE = {
    "STOP": KeywordKind.OPT_OUT,
    "START": KeywordKind.OPT_IN,
    "HELP": KeywordKind.HELP,
}


@dataclass(frozen=True, slots=True)
class Keyword:
    word: str  # as texted, upper case: "STOP", "UNSUBSCRIBE", or what Twilio matched
    kind: KeywordKind


def parse_keyword(body: str) -> Keyword | None:
    """The keyword the whole ``body`` is, or None."""
    word = _bare(body).upper()
    kind = _KIND_OF_WORD.get(word)
    if kind is None and word and word in _join_words():
        kind = KeywordKind.JOIN
    return Keyword(word=word, kind=kind) if kind else None


def _join_words() -> set[str]:
    # Read at each call: the setting may change (tests override it).
    return {word.strip().upper() for word in settings.DAILY_MESSAGE_JOIN_KEYWORDS}


def keyword_from_twilio(*, body: str, opt_out_type: str) -> Keyword | None:
    """The keyword of a text: Twilio's ``OptOutType`` when it sent one, else the body's.

    Twilio has already acted on its ``OptOutType`` (opted the number out, or in), so we
    follow it even for a word our own list does not know.
    """
    kind = _KIND_OF_OPT_OUT_TYPE.get(opt_out_type.strip().upper())
    if kind is None:
        return parse_keyword(body)
    parsed = parse_keyword(body)
    if parsed is not None and parsed.kind == kind:
        return parsed
    word = _bare(body).upper()
    return Keyword(word=word[:16] or opt_out_type.strip().upper(), kind=kind)


# --- Stop requests in words ----------------------------------------------------------
# Searched in the text lower-cased, with curly apostrophes straightened and spaces
# collapsed. A text is flagged when a request matches and no exception does.
_OBJECT = r"(?:me|us|my (?:number|phone|cell)|this (?:number|phone))"
_MESSAGES = r"(?:texts?|text messages|messages|msgs|sms)"
STOP_REQUEST_PATTERNS: tuple[str, ...] = (
    # "please stop texting me", "stop sending these", "how do I stop getting these"
    r"\b(?:stop|quit|cease)\s+(?:texting|txting|messaging|sending|contacting|getting|receiving)\b",
    rf"\b(?:stop|quit)\s+(?:the|these|your|all)\s+{_MESSAGES}\b",
    # "unsubscribe me", "I'd like to unsubscribe"
    r"\bunsubscribe\b",
    # "opt me out", "I want to opt out"
    r"\bopt(?:ing)?\s*-?\s*(?:me\s+)?out\b",
    # "remove me from this list", "take my number off", "delete me"
    rf"\b(?:remove|take|delete|drop)\s+{_OBJECT}\b",
    # "don't text me", "do not contact me again", "never message this number"
    rf"\b(?:don'?t|do not|never|no longer)\s+(?:text|txt|message|msg|sms|contact|send)"
    rf"(?:\s+(?:any\s+more\s+)?{_MESSAGES})?\s+(?:to\s+)?{_OBJECT}\b",
    # "no more texts", "no more messages please"
    rf"\bno more\s+{_MESSAGES}\b",
    # A keyword with words or emoji around it: "STOP ALL", "stop please", "STOP 🛑"
    r"^(?:stop|unsubscribe|quit|cancel)\s+(?:all|please|pls|plz|now|it|immediately)\s*$",
    r"^(?:stop|unsubscribe)\b[^\w]*$",
    r"^(?:please|pls|plz)\s+(?:stop|unsubscribe|cancel)\s*$",
    # Not our member at all: we must not keep texting a reassigned number.
    r"\bwrong (?:number|person)\b",
)
# Phrases in which those words do not ask us to stop.
STOP_REQUEST_EXCEPTIONS: tuple[str, ...] = (
    # "don't stop texting me", "never stop sending these", "can't stop getting excited"
    r"\b(?:don'?t|do not|never|can'?t|cannot|won'?t|wouldn'?t|not)\s+"
    r"(?:ever\s+)?(?:stop|quit|unsubscribe|remove|opt)",
    # "please don't take me off the list"
    r"\b(?:don'?t|do not|never)\s+(?:take|delete|drop)\b",
)
_STOP_REQUESTS = re.compile("|".join(f"(?:{pattern})" for pattern in STOP_REQUEST_PATTERNS))
_STOP_EXCEPTIONS = re.compile("|".join(f"(?:{pattern})" for pattern in STOP_REQUEST_EXCEPTIONS))


def looks_like_stop_request(body: str) -> bool:
    """Whether a text that is not a keyword still asks us to stop texting."""
    text = _bare(body).casefold().replace("\u2019", "'").replace("\u2018", "'")
    return bool(_STOP_REQUESTS.search(text)) and not _STOP_EXCEPTIONS.search(text)


_SPACES = re.compile(r"\s+")
_INVISIBLE_OR_COMBINING = frozenset({"Cf", "Mn", "Me"})


def _bare(body: str) -> str:
    """The text with spaces collapsed and trailing spaces and punctuation removed."""
    # NFKC folds full-width letters (some phones send them) and odd spaces to plain ones.
    # Invisible format characters (zero-width joiners, direction overrides and isolates)
    # and combining marks are dropped: a STOP dressed in them still means stop, and
    # honouring an opt-out is always the safe reading.
    decomposed = unicodedata.normalize("NFKD", body)
    bare = "".join(
        character
        for character in decomposed
        if unicodedata.category(character) not in _INVISIBLE_OR_COMBINING
    )
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", bare)).strip()
    end = len(text)
    while end and (text[end - 1] == " " or unicodedata.category(text[end - 1]).startswith("P")):
        end -= 1
    return text[:end]
