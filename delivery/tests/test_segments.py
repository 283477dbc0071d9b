"""Segment counting on the boundaries where carriers split a body into parts."""

from __future__ import annotations

import pytest

from delivery.segments import (
    GSM_BASIC_CHARACTERS,
    GSM_EXTENSION_CHARACTERS,
    SegmentInfo,
    analyze,
    gsm_replacement,
)

EMOJI = "\U0001f600"  # 😀, outside the Basic Multilingual Plane: a surrogate pair
# Written as escapes: they look like their ASCII twins, which is the whole problem.
LEFT_SINGLE_QUOTE = "\u2018"
RIGHT_SINGLE_QUOTE = "\u2019"
LEFT_DOUBLE_QUOTE = "\u201c"
RIGHT_DOUBLE_QUOTE = "\u201d"
EN_DASH = "\u2013"
EM_DASH = "\u2014"
ELLIPSIS = "\u2026"
NO_BREAK_SPACE = "\u00a0"
BULLET = "\u2022"


def test_gsm_alphabet_tables_have_the_standard_sizes() -> None:
    # 128 positions in the basic table, one of which (0x1B) is the escape.
    assert len(GSM_BASIC_CHARACTERS) == len(set(GSM_BASIC_CHARACTERS)) == 127
    assert len(GSM_EXTENSION_CHARACTERS) == 10
    assert not set(GSM_BASIC_CHARACTERS) & set(GSM_EXTENSION_CHARACTERS)


def test_every_basic_character_is_one_gsm_septet() -> None:
    info = analyze(GSM_BASIC_CHARACTERS)

    assert info.encoding == "GSM-7"
    assert info.units == 127
    assert info.non_gsm_characters == ()


@pytest.mark.parametrize("character", GSM_EXTENSION_CHARACTERS)
def test_every_extension_character_is_two_gsm_septets(character: str) -> None:
    assert analyze(character) == SegmentInfo("GSM-7", 2, 1, 160)


@pytest.mark.parametrize(
    ("length", "segments", "per_part_limit"),
    [(1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153)],
)
def test_gsm_body_splits_at_160_then_every_153(
    length: int, segments: int, per_part_limit: int
) -> None:
    assert analyze("a" * length) == SegmentInfo("GSM-7", length, segments, per_part_limit)


def test_eighty_euro_signs_fill_exactly_one_segment() -> None:
    assert analyze("€" * 80) == SegmentInfo("GSM-7", 160, 1, 160)


def test_eighty_one_euro_signs_need_two_segments() -> None:
    assert analyze("€" * 81) == SegmentInfo("GSM-7", 162, 2, 153)


def test_extension_character_straddling_the_153_boundary_moves_to_the_next_part() -> None:
    # 152 septets, then an escape pair that would sit on septets 153 and 154: the pair
    # cannot be split, so part one ends at 152 and the rest spills into a third part.
    body = "a" * 152 + "€" + "a" * 152
    info = analyze(body)

    assert info.units == 306  # 2 * 153: two parts if the pair could be split
    assert info.segments == 3
    assert info.encoding == "GSM-7"


def test_extension_character_ending_exactly_on_the_boundary_stays_in_the_part() -> None:
    body = "a" * 151 + "€" + "a" * 153
    assert analyze(body).units == 306
    assert analyze(body).segments == 2


@pytest.mark.parametrize(
    ("length", "segments", "per_part_limit"),
    [(70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67)],
)
def test_ucs2_body_splits_at_70_then_every_67(
    length: int, segments: int, per_part_limit: int
) -> None:
    body = "ж" * length  # Cyrillic: one UTF-16 unit each, not GSM

    info = analyze(body)

    assert (info.encoding, info.units, info.segments, info.per_part_limit) == (
        "UCS-2",
        length,
        segments,
        per_part_limit,
    )


def test_emoji_counts_two_units() -> None:
    info = analyze("Hi " + EMOJI)

    assert info.encoding == "UCS-2"
    assert info.units == 5
    assert info.segments == 1
    assert info.non_gsm_characters == ((EMOJI, None),)


def test_emoji_straddling_the_67_boundary_moves_to_the_next_part() -> None:
    # 66 + 2 + 66 = 134 units: two parts of 67 by division, but the surrogate pair
    # would sit on units 67 and 68, so part one ends after 66 units.
    body = "a" * 66 + EMOJI + "a" * 66

    info = analyze(body)

    assert info.units == 134
    assert info.segments == 3


def test_emoji_ending_exactly_on_the_67_boundary_stays_in_the_part() -> None:
    body = "a" * 65 + EMOJI + "a" * 67

    assert analyze(body).units == 134
    assert analyze(body).segments == 2


def test_seventy_units_with_an_emoji_fit_one_segment() -> None:
    assert analyze("a" * 68 + EMOJI).segments == 1
    assert analyze("a" * 69 + EMOJI).segments == 2


def test_one_non_gsm_character_forces_ucs2_for_the_whole_body() -> None:
    body = "a" * 100 + RIGHT_SINGLE_QUOTE

    info = analyze(body)

    assert info.encoding == "UCS-2"
    assert info.units == 101
    assert info.segments == 2  # a GSM-7 body of 101 would have been one segment
    assert info.non_gsm_characters == ((RIGHT_SINGLE_QUOTE, "'"),)


def test_non_gsm_characters_are_listed_once_in_order_with_suggestions() -> None:
    body = (
        f"{LEFT_DOUBLE_QUOTE}Don{RIGHT_SINGLE_QUOTE}t{RIGHT_DOUBLE_QUOTE} {EN_DASH} "
        f"it{RIGHT_SINGLE_QUOTE}s{ELLIPSIS} great{NO_BREAK_SPACE}news {EMOJI} "
        f"{LEFT_DOUBLE_QUOTE}ok{RIGHT_DOUBLE_QUOTE}"
    )

    info = analyze(body)

    assert info.non_gsm_characters == (
        (LEFT_DOUBLE_QUOTE, '"'),
        (RIGHT_SINGLE_QUOTE, "'"),
        (RIGHT_DOUBLE_QUOTE, '"'),
        (EN_DASH, "-"),
        (ELLIPSIS, "..."),
        (NO_BREAK_SPACE, " "),
        (EMOJI, None),
    )


def test_gsm_replacement_turns_smart_punctuation_into_gsm() -> None:
    body = (
        f"{LEFT_SINGLE_QUOTE}Hi{RIGHT_SINGLE_QUOTE} {EM_DASH} "
        f"{LEFT_DOUBLE_QUOTE}see you{RIGHT_DOUBLE_QUOTE} at 5{ELLIPSIS} {BULLET} bring water"
    )

    replaced = gsm_replacement(body)

    assert replaced == "'Hi' - \"see you\" at 5... - bring water"
    assert analyze(replaced).encoding == "GSM-7"


def test_gsm_replacement_leaves_characters_without_a_look_alike() -> None:
    assert gsm_replacement("Привет " + EMOJI) == "Привет " + EMOJI


def test_gsm_characters_outside_ascii_stay_gsm() -> None:
    info = analyze("£5 für Café Ñandú? ¿Sí? Ærø Δ§")  # ú and í are not GSM (ù, ì are)

    assert info.encoding == "UCS-2"
    assert [character for character, _ in info.non_gsm_characters] == ["ú", "í"]
    assert analyze("£5 für Café Ñandu? ¿Si? Ærø Δ§").encoding == "GSM-7"


def test_line_breaks_count_as_one_septet_each() -> None:
    assert analyze("a\r\nb\nc").units == 6
    assert analyze("a" * 158 + "\r\n").segments == 1
    assert analyze("a" * 159 + "\r\n").segments == 2


def test_form_feed_is_an_extension_character() -> None:
    assert analyze("\f").units == 2


def test_empty_body_is_zero_segments() -> None:
    # Twilio refuses an empty body (21602) rather than billing a segment.
    assert analyze("") == SegmentInfo("GSM-7", 0, 0, 160)
