"""Keywords are the whole text; stop requests in words are recognised, and only those."""

from __future__ import annotations

import pytest

from delivery.keywords import (
    KEYWORDS,
    Keyword,
    KeywordKind,
    keyword_from_twilio,
    looks_like_stop_request,
    parse_keyword,
)

OPT_OUT, OPT_IN, HELP = KeywordKind.OPT_OUT, KeywordKind.OPT_IN, KeywordKind.HELP
JOIN = KeywordKind.JOIN


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        *[(word, OPT_OUT) for word in ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END"]],
        *[(word, OPT_OUT) for word in ["QUIT", "REVOKE", "OPTOUT"]],
        *[(word, OPT_IN) for word in ["START", "YES", "UNSTOP"]],
        *[(word, HELP) for word in ["HELP", "INFO"]],
    ],
)
def test_every_keyword_is_recognised_in_any_case(word, kind):
    for variant in (word, word.lower(), word.capitalize()):
        assert parse_keyword(variant) == Keyword(word=word, kind=kind)


def test_the_keyword_lists_are_exactly_the_documented_ones():
    assert {kind: set(words) for kind, words in KEYWORDS.items()} == {
        OPT_OUT: {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"},
        OPT_IN: {"START", "YES", "UNSTOP"},
        HELP: {"HELP", "INFO"},
    }


@pytest.mark.parametrize(
    "body",
    [
        " stop ",
        "Stop.",
        "STOP!",
        "stop!!!",
        "\tStop ?\n",
        "sToP,",
        "STOP…",
        "\uff33\uff34\uff2f\uff30",
    ],  # full-width,
)
def test_spaces_case_and_trailing_punctuation_do_not_matter(body):
    assert parse_keyword(body) == Keyword(word="STOP", kind=OPT_OUT)


@pytest.mark.parametrize(
    "body",
    [
        "STOP ALL",
        "stopping by later",
        "stop by the booth",
        "Please stop",
        "STOP 🛑",
        ".stop",
        "STO P",
        "opt out",
        "yes please",
        "help me find the venue",
        "",
        "   ",
    ],
)
def test_anything_but_the_whole_keyword_is_not_a_keyword(body):
    assert parse_keyword(body) is None


@pytest.mark.parametrize(
    ("opt_out_type", "body", "expected"),
    [
        ("STOP", "ARRET", Keyword(word="ARRET", kind=OPT_OUT)),
        ("STOP", "stop", Keyword(word="STOP", kind=OPT_OUT)),
        ("start", "UNSTOP", Keyword(word="UNSTOP", kind=OPT_IN)),
        ("HELP", "AIDE", Keyword(word="AIDE", kind=HELP)),
        ("STOP", "", Keyword(word="STOP", kind=OPT_OUT)),
    ],
)
def test_twilio_opt_out_type_decides_the_kind(opt_out_type, body, expected):
    assert keyword_from_twilio(body=body, opt_out_type=opt_out_type) == expected


@pytest.mark.parametrize("opt_out_type", ["", "  ", "SOMETHING"])
def test_without_a_known_opt_out_type_the_body_decides(opt_out_type):
    assert keyword_from_twilio(body="Stop.", opt_out_type=opt_out_type) == Keyword(
        word="STOP", kind=OPT_OUT
    )
    assert keyword_from_twilio(body="see you there", opt_out_type=opt_out_type) is None


@pytest.mark.parametrize(
    ("body", "word"),
    [("JOIN", "JOIN"), ("join", "JOIN"), (" Daily! ", "DAILY"), ("daily.", "DAILY")],
)
def test_the_default_join_words_are_join_keywords(settings, body, word):
    settings.DAILY_MESSAGE_JOIN_KEYWORDS = ["JOIN", "DAILY"]

    assert parse_keyword(body) == Keyword(word=word, kind=JOIN)
    assert parse_keyword(f"{body} us") is None


def test_the_join_words_are_read_from_the_setting_at_each_call(settings):
    settings.DAILY_MESSAGE_JOIN_KEYWORDS = ["sunshine "]

    assert parse_keyword("Sunshine!") == Keyword(word="SUNSHINE", kind=JOIN)
    assert parse_keyword("join") is None


def test_a_join_word_that_is_a_compliance_word_keeps_its_compliance_meaning(settings):
    settings.DAILY_MESSAGE_JOIN_KEYWORDS = ["STOP", "START", "HELP", "JOIN"]

    assert parse_keyword("stop") == Keyword(word="STOP", kind=OPT_OUT)
    assert parse_keyword("start") == Keyword(word="START", kind=OPT_IN)
    assert parse_keyword("help") == Keyword(word="HELP", kind=HELP)
    assert parse_keyword("join") == Keyword(word="JOIN", kind=JOIN)


def test_an_empty_text_is_no_join_keyword_even_with_a_blank_join_word(settings):
    settings.DAILY_MESSAGE_JOIN_KEYWORDS = ["", " "]

    assert parse_keyword("") is None
    assert parse_keyword(" ! ") is None


@pytest.mark.parametrize(
    ("opt_out_type", "expected"),
    [("", Keyword(word="JOIN", kind=JOIN)), ("STOP", Keyword(word="JOIN", kind=OPT_OUT))],
)
def test_twilio_never_names_join_so_the_body_decides_unless_twilio_matched(
    settings, opt_out_type, expected
):
    settings.DAILY_MESSAGE_JOIN_KEYWORDS = ["JOIN"]

    assert keyword_from_twilio(body="Join", opt_out_type=opt_out_type) == expected


@pytest.mark.parametrize(
    "body",
    [
        "please stop texting me",
        "Stop sending me these",
        "how do I stop getting these?",
        "unsubscribe me",
        "I'd like to unsubscribe please",
        "remove me from this list",
        "Take me off your list",
        "please delete my number",
        "don't text me",
        "Don\u2019t text me again",
        "do not contact me",
        "Do not send me any more messages",
        "never message this number again",
        "no more texts please",
        "opt me out",
        "I want to opt-out",
        "STOP ALL",
        "stop please",
        "Please stop!",
        "STOP 🛑",
        "Wrong number",
    ],
)
def test_stop_requests_in_words_are_recognised(body):
    assert looks_like_stop_request(body)


@pytest.mark.parametrize(
    "body",
    [
        "can't stop smiling",
        "stopping by later",
        "I'll stop by the booth at noon",
        "don't stop sending these, I love them!",
        "I will never stop texting you",
        "please don't remove me from the list",
        "Don't take me off the list!",
        "I love these texts, never unsubscribe",
        "Please cancel my RSVP for Saturday",
        "See you at the end of the day",
        "Is the picnic still on?",
        "Thanks!",
        "who is this?",
        "",
    ],
)
def test_ordinary_texts_are_not_stop_requests(body):
    assert not looks_like_stop_request(body)


@pytest.mark.parametrize(
    "body",
    ["\u200dSTOP\u200d", "\u202eSTOP", "S\u0301TOP", "\u2066STOP\u2069", "ST\u200bOP"],
    ids=["zero-width-joiners", "rtl-override", "combining-mark", "isolates", "zero-width-space"],
)
def test_stop_dressed_in_invisible_or_combining_characters_is_still_stop(body):
    keyword = parse_keyword(body)

    assert keyword is not None
    assert (keyword.word, keyword.kind) == ("STOP", KeywordKind.OPT_OUT)
