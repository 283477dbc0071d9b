"""The one phone normaliser: raw text and a default region in, E.164 out, or a reason.

Every path that takes a phone number (CSV import, the admin, the API, webhooks) goes
through :func:`normalize`, so a member typed as ``(415) 555-2671`` and texting us from
``+14155552671`` is one person.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType, ValidationResult, phonenumberutil
from phonenumbers import timezone as phone_timezone
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

# Numbers of these kinds cannot receive a text message (or cost the sender money).
_REFUSED_TYPES = {
    PhoneNumberType.FIXED_LINE: "a landline, which cannot receive text messages",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UAN: "a company switchboard (UAN) number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
    PhoneNumberType.PAGER: "a pager number",
}
_UNKNOWN_ZONE = "Etc/Unknown"
_CLUTTER = str.maketrans("", "", " \t\u00a0-.()/")
# Imports repeat numbers, and their junk ("n/a", "call me"): each (text, region) is worked
# out once per process, a bounded number of them kept.
NORMALIZED_CACHE_SIZE = 16_384
CACHED_TEXT_MAX_LENGTH = 64  # a cell of junk may be long: never keep such text
# The way most US numbers are written: (415) 555-2671, 415-555-2671, 415.555.2671,
# +1 415 555 2671, 14155552671... phonenumbers.parse reads every text of this shape with
# the region US as +1 and its ten digits, nothing else (the area code cannot start with 0
# or 1, so no national prefix or leading zero is involved; there is no extension), and
# the test suite holds the two to it. Reading them here saves most of the parsing time.
_PLAIN_US_NUMBER = re.compile(
    r"(?:\+?1[ .-]?)?(?:\(([2-9][0-9]{2})\) ?|([2-9][0-9]{2})[ .-]?)([0-9]{3})[ .-]?([0-9]{4})",
    re.ASCII,
)

# phonenumbers types a +1 number twice: once to find its region (US is the first region of
# +1 and has no leading digits, so a number with a US type is a US number), then for the
# type itself. Where its helper is there and US comes first, a US type is the answer at
# once; otherwise (or for any other type) phonenumbers.number_type() decides.
_US_METADATA = PhoneMetadata.metadata_for_region("US")
_TYPE_UNDER = getattr(phonenumberutil, "_number_type_helper", None)
_US_FIRST_FOR_PLUS_ONE = (
    _TYPE_UNDER is not None
    and _US_METADATA is not None
    and _US_METADATA.leading_digits is None
    and phonenumberutil.COUNTRY_CODE_TO_REGION_CODE.get(1, ("",))[0] == "US"
)


class InvalidPhoneNumber(ValueError):
    """Raised with a stable ``code`` (for reports and the API) and a sentence for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class NormalizedPhone:
    e164: str
    timezones: tuple[str, ...]


def normalize(raw: str | None, *, region: str) -> NormalizedPhone:
    """Return the number in E.164 with its time zones, or raise :class:`InvalidPhoneNumber`.

    ``region`` (ISO 3166 code, e.g. ``US``) is used for numbers written without a ``+``
    country code. Spreadsheets often drop the ``+``: a string of digits that is not a
    number of ``region`` but is a valid international number is taken as the latter.
    """
    text = _clean(raw)
    if not text:
        raise InvalidPhoneNumber("empty", "No phone number.")
    region = region.upper()
    if len(text) > CACHED_TEXT_MAX_LENGTH:
        return _normalize_text(text, region)
    result = _normalized(text, region)
    if isinstance(result, NormalizedPhone):
        return result
    raise InvalidPhoneNumber(*result)


@lru_cache(maxsize=NORMALIZED_CACHE_SIZE)
def _normalized(text: str, region: str) -> NormalizedPhone | tuple[str, str]:
    """The number, or the code and message of the reason it is refused (an exception
    object is not kept: raised again, it would carry its old traceback)."""
    try:
        return _normalize_text(text, region)
    except InvalidPhoneNumber as error:
        return error.code, error.message


def _normalize_text(text: str, region: str) -> NormalizedPhone:
    try:
        number = _parse(text, region)
    except phonenumbers.NumberParseException as error:
        number = _retry_as_international(text)
        if number is None:
            raise _parse_error(error, region) from None
    number_type = _number_type(number)
    if number_type == PhoneNumberType.UNKNOWN:
        retried = _retry_as_international(text)
        if retried is None:
            raise _invalid_number_error(number)
        number = retried
        number_type = phonenumbers.number_type(number)
    if number_type in _REFUSED_TYPES:
        raise InvalidPhoneNumber("unsupported_type", f"This is {_REFUSED_TYPES[number_type]}.")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return NormalizedPhone(e164=e164, timezones=_timezones(number, number_type, e164))


def normalize_phone(raw: str | None, *, region: str) -> str:
    """Return the number in E.164, or raise :class:`InvalidPhoneNumber`."""
    return normalize(raw, region=region).e164


def timezones_for_phone(e164: str) -> tuple[str, ...]:
    """Time zones of an already normalised number (empty when unknown)."""
    number = phonenumbers.parse(e164, None)
    return _timezones(number, phonenumbers.number_type(number), e164)


def _clean(raw: str | None) -> str:
    text = (raw or "").strip()
    if text.startswith("'"):  # spreadsheets' "keep this as text" marker
        text = text[1:]
    if text.lower().startswith("tel:"):
        text = text[4:]
    return text.strip()


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(text, region)``, quicker for the common US shapes."""
    if region == "US" and (match := _PLAIN_US_NUMBER.fullmatch(text)):
        area_code = match[1] or match[2]
        return phonenumbers.PhoneNumber(
            country_code=1, national_number=int(area_code + match[3] + match[4])
        )
    return phonenumbers.parse(text, region)


def _number_type(number: phonenumbers.PhoneNumber) -> int:
    """``phonenumbers.number_type(number)``, typing a US number once instead of twice."""
    if _US_FIRST_FOR_PLUS_ONE and number.country_code == 1:
        national = phonenumbers.national_significant_number(number)
        number_type = _TYPE_UNDER(national, _US_METADATA)  # type: ignore[misc]
        if number_type != PhoneNumberType.UNKNOWN:
            return number_type
    return phonenumbers.number_type(number)


def _retry_as_international(text: str) -> phonenumbers.PhoneNumber | None:
    digits = text.translate(_CLUTTER)
    if not digits.isdigit() or len(digits) < 10:
        return None
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.number_type(number) == PhoneNumberType.UNKNOWN:
        return None
    return number


def _parse_error(error: phonenumbers.NumberParseException, region: str) -> InvalidPhoneNumber:
    kind = phonenumbers.NumberParseException
    if error.error_type == kind.INVALID_COUNTRY_CODE:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            return InvalidPhoneNumber(
                "invalid_country_code",
                f"No country code, and the default region {region!r} is not a known region.",
            )
        return InvalidPhoneNumber("invalid_country_code", "Unknown country calling code.")
    if error.error_type in (kind.TOO_SHORT_NSN, kind.TOO_SHORT_AFTER_IDD):
        return InvalidPhoneNumber("too_short", "Too short to be a phone number.")
    if error.error_type == kind.TOO_LONG:
        return InvalidPhoneNumber("too_long", "Too long to be a phone number.")
    return InvalidPhoneNumber("not_a_number", "Not a phone number.")


def _invalid_number_error(number: phonenumbers.PhoneNumber) -> InvalidPhoneNumber:
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        return InvalidPhoneNumber("invalid_country_code", "Unknown country calling code.")
    number_region = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code)
    )
    if possible == ValidationResult.INVALID_LENGTH:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(number_region)
        lengths = metadata.general_desc.possible_length if metadata else ()
        digits = len(phonenumbers.national_significant_number(number))
        if lengths and digits < min(lengths):
            possible = ValidationResult.TOO_SHORT
        elif lengths and digits > max(lengths):
            possible = ValidationResult.TOO_LONG
    if possible == ValidationResult.TOO_SHORT:
        return InvalidPhoneNumber("too_short", "Too short to be a phone number.")
    if possible == ValidationResult.TOO_LONG:
        return InvalidPhoneNumber("too_long", "Too long to be a phone number.")
    return InvalidPhoneNumber(
        "invalid_for_region", f"Not a valid phone number in {_country_name(number_region)}."
    )


def _country_name(region: str) -> str:
    names = _country_names().get(region, {})
    name = names.get("en", "")
    if name.startswith("*"):  # the data's alias: "same as in that language"
        name = names.get(name[1:], "")
    return name or region


@cache
def _country_names() -> dict[str, dict[str, str]]:
    """phonenumbers' country names (2 MB), loaded on the first invalid number.

    ``import phonenumbers.geodata.locale`` would first run the package's ``__init__``,
    which loads every prefix's place names: 100 MB more in each import process, for one
    country's name. The module alone needs only ``phonenumbers.util``.
    """
    path = Path(phonenumbers.__file__).parent / "geodata" / "locale.py"
    spec = importlib.util.spec_from_file_location("phonenumbers.geodata.locale", path)
    if spec is None or spec.loader is None:
        return {}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LOCALE_DATA


def _timezones(number: phonenumbers.PhoneNumber, number_type: int, e164: str) -> tuple[str, ...]:
    # The zones of a number are those of its longest known prefix: its first digits for
    # geographic kinds, its country code for the others (most mobiles). A direct lookup
    # in phonenumbers' table, without working the number's type out a second time.
    if phone_timezone.is_number_type_geographical(number_type, number.country_code):
        digits = e164[1:]
    else:
        digits = str(number.country_code)
    # No known prefix is longer than the longest one that starts with the same digit:
    # the digits after it never change the answer, and numbers sharing the rest share it.
    return _zones_of_prefix(digits[: _LONGEST_ZONE_PREFIX.get(digits[:1], 0)])


def _longest_zone_prefixes() -> dict[str, int]:
    """The length of the longest prefix of the zone table, by first digit."""
    longest: dict[str, int] = {}
    for prefix in TIMEZONE_DATA:
        longest[prefix[:1]] = max(len(prefix), longest.get(prefix[:1], 0))
    return longest


_LONGEST_ZONE_PREFIX = _longest_zone_prefixes()
ZONE_PREFIXES_KEPT = 32_768


@lru_cache(maxsize=ZONE_PREFIXES_KEPT)
def _zones_of_prefix(digits: str) -> tuple[str, ...]:
    for length in range(min(len(digits), TIMEZONE_LONGEST_PREFIX), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return tuple(zone for zone in zones if zone != _UNKNOWN_ZONE)
    return ()
