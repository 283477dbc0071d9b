"""How many SMS segments a body costs, and which characters make it expensive.

An SMS carries 140 bytes. A body written only with the GSM 03.38 alphabet travels as
7-bit septets (160 per SMS); a single character outside it switches the whole body to
UCS-2, i.e. UTF-16 code units (70 per SMS). A longer body is split into parts that each
lose room to the concatenation header: 153 septets or 67 code units per part.

Units: a GSM-7 character costs one septet, or two for the extension table (``€ [ ] { }``
...), which is sent as ESC plus the character. A UCS-2 character costs one UTF-16 code
unit, or two outside the Basic Multilingual Plane (most emoji), sent as a surrogate
pair. Neither pair may be split across parts, so parts are counted by packing, which can
need one part more than ``ceil(units / per_part)``.

An empty body has 0 segments: Twilio refuses it (error 21602) rather than billing it.

:func:`analyze` runs once per recipient at fan-out, so the work per character is done
by precompiled regular expressions and ``str``/``bytes`` methods, which run in C; Python
only loops once per part, to pack a long body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]
GSM_7: Final = "GSM-7"
UCS_2: Final = "UCS-2"

GSM_SINGLE_PART_UNITS: Final = 160
GSM_MULTIPART_UNITS: Final = 153
UCS2_SINGLE_PART_UNITS: Final = 70
UCS2_MULTIPART_UNITS: Final = 67

# GSM 03.38 default alphabet in table order, 16 a row; position 0x1B is the escape to
# the extension table and is not a character of its own, so it is left out.
GSM_BASIC_CHARACTERS: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM_EXTENSION_CHARACTERS: Final = "\f^{}\\[]~|€"

# Characters that force UCS-2 but have a GSM-7 look-alike that reads the same. Mostly
# what word processors and phones substitute on their own (smart quotes, dashes, the
# ellipsis, odd spaces). An empty replacement removes an invisible character.
GSM_REPLACEMENTS: Final[dict[str, str]] = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2035\u02bc\u02b9\u00b4`", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u2036\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2039\u203a", "'"),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u2026": "...",
    **dict.fromkeys(
        "\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
        "\u202f\u205f\u3000",
        " ",
    ),
    # Zero-width space, byte order mark, soft hyphen: invisible, so dropping them
    # changes nothing the reader sees. (Not U+200D: it joins emoji.)
    **dict.fromkeys("\u200b\ufeff\u00ad", ""),
    "\u2022": "-",  # bullet: "- item" is the plain-text list
    "\u2206": "Δ",  # increment sign, drawn like the Greek capital delta
    "\u2126": "Ω",  # ohm sign, drawn like the Greek capital omega
}


def _character_class(characters: str) -> str:
    return "".join(f"\\u{ord(character):04x}" for character in characters)


_NOT_GSM = re.compile(f"[^{_character_class(GSM_BASIC_CHARACTERS + GSM_EXTENSION_CHARACTERS)}]")
_GSM_EXTENSION = re.compile(f"[{_character_class(GSM_EXTENSION_CHARACTERS)}]")
_ESCAPE = "\x1b"
_ESCAPE_BEFORE_MATCH = "\x1b\\g<0>"  # a re.sub template: the escape, then the match
_REPLACEMENT_TABLE = str.maketrans(GSM_REPLACEMENTS)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What sending one body costs.

    ``per_part_limit`` is the room in each part: 160 or 70 when the body fits in one
    SMS, 153 or 67 when it is split. ``non_gsm_characters`` lists each character that
    forced UCS-2 once, in order of first appearance, with its suggested GSM-7
    replacement or ``None`` (empty for a GSM-7 body).
    """

    encoding: Encoding
    units: int
    segments: int
    per_part_limit: int
    non_gsm_characters: tuple[tuple[str, str | None], ...] = ()

    @property
    def is_gsm(self) -> bool:
        return self.encoding == GSM_7


def analyze(body: str) -> SegmentInfo:
    """Encoding, units and segments of ``body``, as a carrier would split it."""
    if _NOT_GSM.search(body) is None:
        return _analyze_gsm(body)
    return _analyze_ucs2(body)


def gsm_replacement(body: str) -> str:
    """``body`` with every character that has a GSM-7 look-alike replaced by it.

    Characters without one (emoji, most non-Latin scripts) are left alone, so the result
    may still need UCS-2: check it with :func:`analyze`.
    """
    return body.translate(_REPLACEMENT_TABLE)


def _analyze_gsm(body: str) -> SegmentInfo:
    extension_count = len(_GSM_EXTENSION.findall(body))
    units = len(body) + extension_count
    if units == 0:
        return _gsm_info(0, 0)
    if units <= GSM_SINGLE_PART_UNITS:
        return _gsm_info(units, 1)
    # The septets as sent, each extension character after its escape.
    septets = _GSM_EXTENSION.sub(_ESCAPE_BEFORE_MATCH, body) if extension_count else body
    return _gsm_info(units, _gsm_parts(septets))


def _analyze_ucs2(body: str) -> SegmentInfo:
    non_gsm = tuple(
        (character, GSM_REPLACEMENTS.get(character))
        for character in dict.fromkeys(_NOT_GSM.findall(body))
    )
    code_units = body.encode("utf-16-le")
    units = len(code_units) // 2
    if units <= UCS2_SINGLE_PART_UNITS:
        return SegmentInfo(UCS_2, units, 1, UCS2_SINGLE_PART_UNITS, non_gsm)
    return SegmentInfo(UCS_2, units, _ucs2_parts(code_units), UCS2_MULTIPART_UNITS, non_gsm)


def _gsm_parts(septets: str) -> int:
    parts = start = 0
    while start < len(septets):
        end = start + GSM_MULTIPART_UNITS
        if end < len(septets) and septets[end - 1] == _ESCAPE:
            end -= 1  # the escape moves to the next part with its character
        parts += 1
        start = end
    return parts


def _ucs2_parts(code_units: bytes) -> int:
    room = 2 * UCS2_MULTIPART_UNITS  # bytes
    parts = start = 0
    while start < len(code_units):
        end = start + room
        # Little-endian: a part's last byte is the high byte of its last code unit, and
        # D8-DB there means a lead surrogate, which moves on with its trail.
        if end < len(code_units) and 0xD8 <= code_units[end - 1] <= 0xDB:
            end -= 2
        parts += 1
        start = end
    return parts


_gsm_infos: dict[tuple[int, int], SegmentInfo] = {}
_CACHED_GSM_UNITS = 3200  # twice Twilio's 1,600-character limit: keeps the cache small


def _gsm_info(units: int, segments: int) -> SegmentInfo:
    # GSM-7 results carry no per-body data, so one shared instance per (units, segments)
    # saves building a frozen dataclass per recipient.
    info = _gsm_infos.get((units, segments))
    if info is None:
        per_part = GSM_SINGLE_PART_UNITS if segments <= 1 else GSM_MULTIPART_UNITS
        info = SegmentInfo(GSM_7, units, segments, per_part)
        if units <= _CACHED_GSM_UNITS:
            _gsm_infos[units, segments] = info
    return info
