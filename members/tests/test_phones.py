"""The phone normaliser on a table of numbers from several regions, good and bad."""

from __future__ import annotations

import pytest

from members.phones import InvalidPhoneNumber, normalize, normalize_phone, timezones_for_phone

VALID = [
    # raw, default region, E.164
    ("(415) 555-2671", "US", "+14155552671"),
    ("415.555.2671", "US", "+14155552671"),
    ("415 555 2671", "US", "+14155552671"),
    ("1-415-555-2671", "US", "+14155552671"),
    ("+1 415 555 2671", "US", "+14155552671"),
    ("14155552671", "US", "+14155552671"),
    ("  +1 (212) 555-0199  ", "US", "+12125550199"),
    ("'+14155552671", "US", "+14155552671"),  # a spreadsheet's text marker
    ("tel:+1-415-555-2671", "US", "+14155552671"),
    ("+1 212 555 0123 ext. 4", "US", "+12125550123"),  # an extension cannot get a text
    ("011 44 7911 123456", "US", "+447911123456"),  # US international dialling prefix
    ("07911 123456", "GB", "+447911123456"),
    ("+44 7911 123456", "GB", "+447911123456"),
    ("00 44 7911 123456", "GB", "+447911123456"),
    ("447911123456", "US", "+447911123456"),  # the + lost in a spreadsheet
    ("+44 7911 123456", "US", "+447911123456"),
    ("01512 3456789", "DE", "+4915123456789"),
    ("+49 151 23456789", "FR", "+4915123456789"),
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("+33 7 81 23 45 67", "US", "+33781234567"),
    ("98765 43210", "IN", "+919876543210"),
    ("+91 98765-43210", "US", "+919876543210"),
    ("0803 123 4567", "NG", "+2348031234567"),
    ("+234 803 123 4567", "GB", "+2348031234567"),
    ("0712 345678", "KE", "+254712345678"),
    ("+254 712 345 678", "US", "+254712345678"),
    ("(11) 91234-5678", "BR", "+5511912345678"),
    ("+55 11 91234 5678", "US", "+5511912345678"),
    ("0412 345 678", "AU", "+61412345678"),
    ("+61 412 345 678", "GB", "+61412345678"),
    ("415-555-2671", "us", "+14155552671"),  # region in lower case
]

INVALID = [
    # raw, default region, reason code
    ("", "US", "empty"),
    ("   ", "US", "empty"),
    (None, "US", "empty"),
    ("call me", "US", "not_a_number"),
    ("n/a", "US", "not_a_number"),
    ("123", "US", "too_short"),
    ("555-1234", "US", "invalid_for_region"),  # no area code
    ("12345678901234567890", "US", "too_long"),
    ("+999 123 456 789", "US", "invalid_country_code"),
    ("415 555 2671", "ZZ", "invalid_country_code"),  # unknown default region
    ("+1 900 555 1234", "US", "unsupported_type"),  # premium rate
    ("020 7946 0958", "GB", "unsupported_type"),  # London landline
    ("030 1234567", "DE", "unsupported_type"),  # Berlin landline
    ("01 23 45 67 89", "FR", "unsupported_type"),  # Paris landline
    ("0909 123 4567", "GB", "unsupported_type"),  # premium rate
    ("+44 20", "GB", "too_short"),
    ("0412", "AU", "too_short"),
    ("+61 412 345 678 9991", "AU", "too_long"),
    ("+1 123 456 7890", "US", "invalid_for_region"),  # area codes never start with 1
]


@pytest.mark.parametrize(("raw", "region", "expected"), VALID)
def test_valid_number_is_normalised_to_e164(raw, region, expected):
    assert normalize_phone(raw, region=region) == expected


@pytest.mark.parametrize(("raw", "region", "code"), INVALID)
def test_invalid_number_is_refused_with_its_reason(raw, region, code):
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalize_phone(raw, region=region)
    assert refused.value.code == code
    assert str(refused.value) == refused.value.message
    assert refused.value.message.endswith(".")


def test_the_table_covers_at_least_forty_inputs_from_nine_regions():
    regions = {region.upper() for _, region, _ in VALID + INVALID}
    assert len(VALID) + len(INVALID) >= 40
    assert {"US", "GB", "DE", "FR", "IN", "NG", "KE", "BR", "AU"} <= regions


def test_invalid_number_message_names_the_country():
    with pytest.raises(InvalidPhoneNumber) as refused:
        normalize_phone("+1 123 456 7890", region="US")
    assert refused.value.message == "Not a valid phone number in United States."


def test_landline_refusal_says_it_cannot_receive_texts():
    with pytest.raises(InvalidPhoneNumber, match="landline, which cannot receive text"):
        normalize_phone("020 7946 0958", region="GB")


@pytest.mark.parametrize(
    ("raw", "region", "zones"),
    [
        ("(415) 555-2671", "US", ("America/Los_Angeles",)),
        ("(212) 555-0199", "US", ("America/New_York",)),
        ("06 12 34 56 78", "FR", ("Europe/Paris",)),
        ("0803 123 4567", "NG", ("Africa/Lagos",)),
    ],
)
def test_single_zone_numbers_get_their_zone(raw, region, zones):
    assert normalize(raw, region=region).timezones == zones


def test_number_spanning_several_zones_keeps_them_all():
    zones = normalize("0412 345 678", region="AU").timezones
    assert {"Australia/Perth", "Australia/Sydney", "Australia/Brisbane"} <= set(zones)


def test_unknown_zone_is_never_reported():
    for raw, region, _ in VALID:
        assert "Etc/Unknown" not in normalize(raw, region=region).timezones


def test_zones_of_a_stored_number_match_the_normaliser():
    assert timezones_for_phone("+14155552671") == ("America/Los_Angeles",)
    assert timezones_for_phone("+447911123456") == normalize("07911 123456", region="GB").timezones


def test_naming_the_country_of_an_invalid_number_leaves_the_place_names_unloaded():
    """phonenumbers' place names are 100 MB in every import process: a country's name
    needs only its (small) locale table."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from members.phones import InvalidPhoneNumber, normalize\n"
        "try:\n"
        "    normalize('555-1234', region='US')\n"
        "except InvalidPhoneNumber as error:\n"
        "    print(error.message)\n"
        "print(sorted(name for name in sys.modules if name.startswith('phonenumbers.geodata')))\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["Not a valid phone number in United States.", "[]"]
