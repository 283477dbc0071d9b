"""One CSV record in, a validated row for the writers out, or the reason it is rejected.

Validated rows are plain tuples in the staging table's column order (see ``ValidRow``):
the database writer streams them to COPY as they are, and a million of them cost no
per-row objects.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, TypeAlias

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from members.importing.reader import ImportRefused, RawRow
from members.models import Member
from members.phones import InvalidPhoneNumber, normalize

PHONE_HEADERS = ("phone", "mobile", "phone_number", "cell")
TIMEZONE_HEADERS = ("timezone", "time_zone")
MERGE_FIELD_MAX_LENGTH = 1000
RAW_PHONE_REPORTED_LENGTH = 100
_TRUE = frozenset({"yes", "y", "true", "1"})
_FALSE = frozenset({"no", "n", "false", "0"})
_HEADER_SEPARATORS = re.compile(r"[\s\-]+")


def _max_length(field_name: str) -> int:
    max_length = Member._meta.get_field(field_name).max_length
    if max_length is None:
        raise TypeError(f"Member.{field_name} has no max_length to check imported values against.")
    return max_length


FIRST_NAME_MAX_LENGTH = _max_length("first_name")
LAST_NAME_MAX_LENGTH = _max_length("last_name")
EMAIL_MAX_LENGTH = _max_length("email")
TIMEZONE_MAX_LENGTH = _max_length("timezone")

# (line, phone, first_name, last_name, email, timezone, number_timezones as JSON text,
#  is_daily_subscriber, *merge field values). Blank values are None: "leave as is".
ValidRow: TypeAlias = tuple[Any, ...]
LINE, PHONE, FIRST_NAME, LAST_NAME, EMAIL, TIMEZONE, NUMBER_TIMEZONES, IS_DAILY = range(8)
FIRST_MERGE_VALUE = 8


class RowError(NamedTuple):
    """A rejected row: where it starts, the phone as written, and why."""

    line: int
    raw_phone: str
    reason: str


def normalize_header(name: str) -> str:
    """``" First Name"`` → ``"first_name"``: how columns are matched and merge fields keyed."""
    return _HEADER_SEPARATORS.sub("_", name.strip().lower())


@dataclass(frozen=True)
class ColumnMap:
    """Which cell of a record holds what, decided once from the header."""

    width: int
    phone: int
    first_name: int | None
    last_name: int | None
    email: int | None
    daily: int | None
    timezone: int | None
    merge_fields: tuple[tuple[str, int], ...]

    @property
    def merge_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.merge_fields)

    @classmethod
    def from_header(cls, raw_headers: Sequence[str]) -> ColumnMap:
        """Match the columns by name; raise :class:`ImportRefused` without a phone column."""
        names = [normalize_header(header) for header in raw_headers]
        positions: dict[str, int] = {}
        for position, name in enumerate(names):
            positions.setdefault(name, position)
        phone = next((positions[name] for name in PHONE_HEADERS if name in positions), None)
        if phone is None:
            found = ", ".join(repr(header) for header in raw_headers if header) or "none"
            raise ImportRefused(
                "No phone column: name one column phone, mobile, phone_number or cell. "
                f"Headers found: {found}."
            )
        timezone = next((positions[name] for name in TIMEZONE_HEADERS if name in positions), None)
        known = {
            "first_name": positions.get("first_name"),
            "last_name": positions.get("last_name"),
            "email": positions.get("email"),
            "daily": positions.get("daily"),
        }
        used = {phone, timezone, *known.values()}
        return cls(
            width=len(names),
            phone=phone,
            timezone=timezone,
            merge_fields=_merge_fields(names, used),
            **known,
        )


def _merge_fields(names: list[str], used: set[int | None]) -> tuple[tuple[str, int], ...]:
    """Every other column, keyed by its name; repeated or blank names get a number."""
    merge_fields: list[tuple[str, int]] = []
    taken: set[str] = set()
    for position, name in enumerate(names):
        if position in used:
            continue
        key = name or f"column_{position + 1}"
        suffix = 2
        while key in taken:
            key, suffix = f"{name or 'column'}_{suffix}", suffix + 1
        taken.add(key)
        merge_fields.append((key, position))
    return tuple(merge_fields)


class RowValidator:
    """Turns records into :data:`ValidRow` tuples or :class:`RowError`.

    Holds only plain data, so that it can be handed to validation worker processes.
    """

    def __init__(self, columns: ColumnMap, *, region: str) -> None:
        self.columns = columns
        self.region = region

    def validate_batch(self, raw_rows: Sequence[RawRow]) -> tuple[list[ValidRow], list[RowError]]:
        valid: list[ValidRow] = []
        errors: list[RowError] = []
        validate = self.validate
        for line, cells, problem in raw_rows:
            result = validate(line, cells, problem)
            if type(result) is tuple:  # a RowError is a NamedTuple, not exactly a tuple
                valid.append(result)
            elif result is not None:
                errors.append(result)  # type: ignore[arg-type]
        return valid, errors

    def validate(
        self, line: int, cells: list[str], problem: str = ""
    ) -> ValidRow | RowError | None:
        """The row's validated values, its error, or None for a row of blank cells."""
        columns = self.columns
        if len(cells) < columns.width:
            cells = cells + [""] * (columns.width - len(cells))
        raw_phone = cells[columns.phone]
        if problem:
            return _row_error(line, raw_phone, problem)
        if len(cells) > columns.width and any(cell.strip() for cell in cells[columns.width :]):
            return _row_error(
                line,
                raw_phone,
                f"too many cells: {len(cells)} where the header has {columns.width} "
                "(a delimiter inside a value that is not in quotes?)",
            )
        reasons: list[str] = []
        phone = zones = None
        try:
            normalized = normalize(raw_phone, region=self.region)
            phone, zones = normalized.e164, _zones_json(normalized.timezones)
        except InvalidPhoneNumber as error:
            if error.code == "empty" and not any(cell.strip() for cell in cells):
                return None
            reasons.append(error.message)
        first_name = _text(cells, columns.first_name, "first_name", FIRST_NAME_MAX_LENGTH, reasons)
        last_name = _text(cells, columns.last_name, "last_name", LAST_NAME_MAX_LENGTH, reasons)
        email = _email(cells, columns.email, reasons)
        timezone = _timezone(cells, columns.timezone, reasons)
        is_daily = _daily(cells, columns.daily, reasons)
        merge_values = [
            _text(cells, position, key, MERGE_FIELD_MAX_LENGTH, reasons)
            for key, position in columns.merge_fields
        ]
        if reasons:
            return _row_error(line, raw_phone, "; ".join(reasons))
        return (line, phone, first_name, last_name, email, timezone, zones, is_daily, *merge_values)


def _row_error(line: int, raw_phone: str, reason: str) -> RowError:
    if len(raw_phone) > RAW_PHONE_REPORTED_LENGTH:  # junk: keep the reports readable
        raw_phone = raw_phone[:RAW_PHONE_REPORTED_LENGTH] + "…"
    return RowError(line, raw_phone, reason)


def _text(
    cells: list[str], position: int | None, name: str, max_length: int, reasons: list[str]
) -> str | None:
    if position is None:
        return None
    value = cells[position].strip()
    if not value:
        return None
    if len(value) > max_length:
        reasons.append(f"field too long: {name} has {len(value)} characters (at most {max_length})")
    return value


def _email(cells: list[str], position: int | None, reasons: list[str]) -> str | None:
    value = _text(cells, position, "email", EMAIL_MAX_LENGTH, reasons)
    if value is not None and not _is_valid_email(value):
        reasons.append("invalid email")
    return value


def _timezone(cells: list[str], position: int | None, reasons: list[str]) -> str | None:
    if position is None:
        return None
    value = cells[position].strip()
    if not value:
        return None
    if not _is_known_timezone(value):
        reasons.append(f"unknown time zone: {value[:TIMEZONE_MAX_LENGTH]}")
    return value


def _daily(cells: list[str], position: int | None, reasons: list[str]) -> bool | None:
    if position is None:
        return None
    value = cells[position].strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    reasons.append("invalid daily value: use yes or no")
    return None


def _email_validator() -> EmailValidator:
    """Django's email validator (the one EmailField uses), with its regexes compiled now.

    They are lazy objects: every use goes through a proxy, which made checking an email
    cost more than the rest of a row's checks together.
    """
    validator = EmailValidator()
    for name in ("user_regex", "domain_regex", "literal_regex"):
        lazy = getattr(validator, name)
        setattr(validator, name, re.compile(lazy.pattern, lazy.flags))
    return validator


_validate_email = _email_validator()


def _is_valid_email(value: str) -> bool:
    try:
        _validate_email(value)
    except ValidationError:
        return False
    return True


@lru_cache(maxsize=1024)
def _is_known_timezone(name: str) -> bool:
    if len(name) > TIMEZONE_MAX_LENGTH:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=4096)
def _zones_json(zones: tuple[str, ...]) -> str:
    # Few distinct tuples exist (the normaliser caches them by prefix), so a million rows
    # share a handful of JSON strings.
    return json.dumps(list(zones))
