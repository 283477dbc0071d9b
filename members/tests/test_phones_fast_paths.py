"""The normaliser's shortcuts (a cache, a quick read of plain US numbers, typing a US
number once, zones by prefix) give exactly what phonenumbers itself gives."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from members import phones
from members.phones import InvalidPhoneNumber, normalize

PLAIN_US_SHAPES = [
    "({area}) {exchange}-{line}",
    "({area}){exchange}-{line}",
    "{area}-{exchange}-{line}",
    "{area}.{exchange}.{line}",
    "{area} {exchange} {line}",
    "{area}{exchange}{line}",
    "{area}.{exchange}-{line}",
    "1{area}{exchange}{line}",
    "1-{area}-{exchange}-{line}",
    "1 ({area}) {exchange}-{line}",
    "+1{area}{exchange}{line}",
    "+1 {area} {exchange} {line}",
    "+1-{area}-{exchange}-{line}",
    "+1 ({area}) {exchange}-{line}",
    "+1.{area}.{exchange}.{line}",
]


def plain_us_texts(count: int, seed: int = 20251202) -> list[str]:
    """Every shape with random digits: real, unassigned, toll-free and premium area
    codes, exchanges and lines starting with any digit."""
    generator = random.Random(seed)
    texts = []
    for index in range(count):
        texts.append(
            PLAIN_US_SHAPES[index % len(PLAIN_US_SHAPES)].format(
                area=generator.randint(200, 999),
                exchange=f"{generator.randint(0, 999):03d}",
                line=f"{generator.randint(0, 9999):04d}",
            )
        )
    return texts


def test_plain_us_numbers_are_read_exactly_as_phonenumbers_reads_them():
    for text in plain_us_texts(6000):
        assert phones._PLAIN_US_NUMBER.fullmatch(text), text  # the quick read is taken
        assert phones._parse(text, "US") == phonenumbers.parse(text, "US"), text


@pytest.mark.parametrize(
    "text",
    [
        "1415555267",  # ten digits starting with the national prefix
        "+4155552671",  # a + without the country code
        "(115) 555-2671",  # an area code starting with 1
        "(015) 555-2671",
        "0415 555 2671",
        "415 555 2671 ext. 4",
        "+1 212 555 0123 ext. 4",
        "\u0664\u0661\u0665\u0665\u0665\u0665\u0662\u0666\u0667\u0661",  # Arabic-Indic digits
        "415  555 2671",
        "(415 555-2671",
        "011 44 7911 123456",
    ],
)
def test_other_texts_are_left_to_phonenumbers(text):
    assert phones._PLAIN_US_NUMBER.fullmatch(text) is None


def test_plain_us_shapes_in_another_region_are_left_to_phonenumbers():
    for text in plain_us_texts(50):
        assert phones._parse(text, "GB") == phonenumbers.parse(text, "GB")


@pytest.mark.parametrize(
    "text",
    [
        "+14155552671",  # US
        "+12045550123",  # Canada
        "+18765550123",  # Jamaica
        "+16715550123",  # Guam
        "+18005550123",  # toll-free
        "+19005550123",  # premium rate
        "+11234567890",  # no such area code
        "+447911123456",  # not +1
    ],
)
def test_a_number_is_typed_as_phonenumbers_types_it(text):
    number = phonenumbers.parse(text, None)
    assert phones._number_type(number) == phonenumbers.number_type(number)


def test_random_plus_one_numbers_are_typed_as_phonenumbers_types_them():
    assert phones._US_FIRST_FOR_PLUS_ONE  # else the shortcut is off, and this tests nothing
    for text in plain_us_texts(3000, seed=7):
        number = phonenumbers.parse(text, "US")
        assert phones._number_type(number) == phonenumbers.number_type(number), text


def test_a_refused_text_seen_again_raises_a_new_exception_with_the_same_reason():
    phones._normalized.cache_clear()
    with pytest.raises(InvalidPhoneNumber) as first:
        normalize("call me", region="US")
    with pytest.raises(InvalidPhoneNumber) as second:
        normalize("call me", region="US")
    assert first.value is not second.value
    assert (second.value.code, second.value.message) == ("not_a_number", "Not a phone number.")
    assert phones._normalized.cache_info().hits == 1


def test_a_number_seen_again_comes_from_the_cache_with_the_same_value():
    phones._normalized.cache_clear()
    first = normalize("(415) 555-2671", region="US")
    assert normalize(" (415) 555-2671 ", region="us") == first
    assert phones._normalized.cache_info().hits == 1


def test_the_cache_tells_regions_apart():
    assert normalize("07911 123456", region="GB").e164 == "+447911123456"
    with pytest.raises(InvalidPhoneNumber):
        normalize("07911 123456", region="US")


def test_a_long_text_is_never_kept_in_the_cache():
    phones._normalized.cache_clear()
    junk = "not a number " * 10
    assert len(junk) > phones.CACHED_TEXT_MAX_LENGTH
    for _ in range(2):
        with pytest.raises(InvalidPhoneNumber) as refused:
            normalize(junk, region="US")
        assert refused.value.code == "not_a_number"
    assert phones._normalized.cache_info().currsize == 0


def reference_normalize(raw: str, region: str) -> tuple[str, tuple[str, ...]] | str:
    """The normaliser as it was before its shortcuts, phonenumbers all the way: the
    E.164 number and its zones, or the code of the refusal."""
    text = phones._clean(raw)
    if not text:
        return "empty"
    region = region.upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        number = phones._retry_as_international(text)
        if number is None:
            return phones._parse_error(error, region).code
    number_type = phonenumbers.number_type(number)
    if number_type == phonenumbers.PhoneNumberType.UNKNOWN:
        retried = phones._retry_as_international(text)
        if retried is None:
            return phones._invalid_number_error(number).code
        number, number_type = retried, phonenumbers.number_type(retried)
    if number_type in phones._REFUSED_TYPES:
        return "unsupported_type"
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.timezone.is_number_type_geographical(number_type, number.country_code):
        digits = e164[1:]
    else:
        digits = str(number.country_code)
    for length in range(min(len(digits), phones.TIMEZONE_LONGEST_PREFIX), 0, -1):
        zones = phones.TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return e164, tuple(zone for zone in zones if zone != "Etc/Unknown")
    return e164, ()


def mixed_texts(count: int, seed: int) -> list[str]:
    """US numbers in every shape, junk, and numbers of other countries."""
    generator = random.Random(seed)
    others = ["07911 123456", "+44 7911 123456", "447911123456", "06 12 34 56 78", "n/a", "123"]
    others += ["call me", "555-1234", "+1 900 555 1234", "+999 123 456 789", "011 44 7911 123456"]
    texts = plain_us_texts(count, seed=seed)
    for index in range(0, count, 7):
        texts[index] = generator.choice(others)
    return texts


@pytest.mark.parametrize("region", ["US", "GB", "CA"])
def test_normalised_numbers_and_refusals_are_those_of_phonenumbers_alone(region):
    phones._normalized.cache_clear()
    for text in mixed_texts(4000, seed=11) * 2:  # twice: from the caches the second time
        try:
            normalized = normalize(text, region=region)
        except InvalidPhoneNumber as refused:
            found: tuple[str, tuple[str, ...]] | str = refused.code
        else:
            found = (normalized.e164, normalized.timezones)
        assert found == reference_normalize(text, region), text
