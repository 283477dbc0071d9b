"""The contacts API's input checked: one contact object in, its values or its errors by
field out; and the shape of a bulk request.

Plain Python rather than a DRF serializer: a bulk request holds up to 10,000 contacts
and must validate in well under a second. The rules are the CSV import's
(``members.importing.rows``): the same lengths, email and time zone checks, merge field
keys named like import columns, and a blank value leaving the stored one as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from rest_framework import exceptions

from members.contacts import is_known_timezone
from members.importing.rows import (
    EMAIL_MAX_LENGTH,
    FIRST_NAME_MAX_LENGTH,
    LAST_NAME_MAX_LENGTH,
    MERGE_FIELD_MAX_LENGTH,
    RAW_PHONE_REPORTED_LENGTH,
    TIMEZONE_MAX_LENGTH,
    normalize_header,
)
from members.phones import InvalidPhoneNumber, normalize

CONTACT_FIELDS = (
    "phone",
    "first_name",
    "last_name",
    "email",
    "timezone",
    "community",
    "daily",
    "fields",
    "event",
)
PHONE_MAX_LENGTH = 64
EVENT_SLUG_MAX_LENGTH = 100
MERGE_FIELDS_MAX_COUNT = 100
MERGE_FIELD_KEY_MAX_LENGTH = 100

FieldErrors = dict[str, list[str]]


@dataclass
class ContactInput:
    """A valid contact, before its event slug is looked up."""

    phone: str
    number_timezones: tuple[str, ...]
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    timezone: str | None = None
    is_community: bool | None = None
    is_daily_subscriber: bool | None = None
    fields: dict[str, str] = field(default_factory=dict)
    event_slug: str | None = None


def validate_contact(data: Any, *, region: str) -> tuple[ContactInput | None, FieldErrors]:
    """The contact, or None and at least one error."""
    if not isinstance(data, dict):
        return None, {"non_field_errors": ["Expected a contact: a JSON object."]}
    errors: FieldErrors = {
        safe_text(str(name))[:100]: ["Unknown field."] for name in data.keys() - CONTACT_FIELDS
    }
    phone, zones = _phone(data.get("phone"), region, errors)
    first_name = _text(data, "first_name", FIRST_NAME_MAX_LENGTH, errors)
    last_name = _text(data, "last_name", LAST_NAME_MAX_LENGTH, errors)
    email = _text(data, "email", EMAIL_MAX_LENGTH, errors)
    if email is not None and "email" not in errors:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = ["Enter a valid email address."]
    timezone = _text(data, "timezone", TIMEZONE_MAX_LENGTH, errors)
    if timezone is not None and "timezone" not in errors and not is_known_timezone(timezone):
        errors["timezone"] = ["Unknown time zone: use an IANA name such as America/New_York."]
    is_community = _boolean(data, "community", errors)
    is_daily_subscriber = _boolean(data, "daily", errors)
    fields = _merge_fields(data.get("fields"), errors)
    event_slug = _text(data, "event", EVENT_SLUG_MAX_LENGTH, errors)
    if errors or phone is None:
        return None, errors
    return ContactInput(
        phone=phone,
        number_timezones=zones,
        first_name=first_name,
        last_name=last_name,
        email=email,
        timezone=timezone,
        is_community=is_community,
        is_daily_subscriber=is_daily_subscriber,
        fields=fields,
        event_slug=event_slug,
    ), {}


def read_bulk_request(data: Any, *, max_contacts: int) -> tuple[list[Any], str | None]:
    """The contacts (not yet validated) and the shared event slug of a bulk request;
    raises a ValidationError when the request itself is wrong."""
    if not isinstance(data, dict):
        raise exceptions.ValidationError(
            {"non_field_errors": ["Expected a JSON object with contacts."]}
        )
    errors: FieldErrors = {
        safe_text(str(name))[:100]: ["Unknown field."]
        for name in data.keys() - {"contacts", "event"}
    }
    rows = data.get("contacts")
    if not isinstance(rows, list):
        errors["contacts"] = ["Expected a list of contacts."]
    elif len(rows) > max_contacts:
        errors["contacts"] = [
            f"At most {max_contacts:,} contacts in one request (this has {len(rows):,})."
        ]
    shared_slug = _text(data, "event", EVENT_SLUG_MAX_LENGTH, errors)
    if errors:
        raise exceptions.ValidationError(errors)
    return rows, shared_slug  # type: ignore[return-value]


def reported_phone(data: Any) -> str | None:
    """The phone as the caller wrote it, for an error report (readable and short)."""
    raw = data.get("phone") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        return None
    raw = safe_text(raw)
    if len(raw) > RAW_PHONE_REPORTED_LENGTH:
        raw = raw[:RAW_PHONE_REPORTED_LENGTH] + "…"
    return raw


def safe_text(value: str) -> str:
    """``value`` without what cannot be stored or sent back (NUL, lone surrogates)."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _text(data: dict[str, Any], name: str, max_length: int, errors: FieldErrors) -> str | None:
    """A stripped string; None when left out, null or blank (leave as is)."""
    value = data.get(name)
    if value is None:
        return None
    problem = _text_problem(value, max_length)
    if problem:
        errors[name] = [problem]
        return None
    return value.strip() or None


def _text_problem(value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        return "Must be a string."
    if "\x00" in value:
        return "May not contain NUL characters."
    length = len(value.strip())
    if length > max_length:
        return f"At most {max_length} characters (this has {length})."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Not valid Unicode text (an unpaired surrogate)."
    return ""


def _phone(value: Any, region: str, errors: FieldErrors) -> tuple[str | None, tuple[str, ...]]:
    if value is None:
        errors["phone"] = ["This field is required."]
        return None, ()
    problem = _text_problem(value, PHONE_MAX_LENGTH)
    if problem:
        errors["phone"] = [problem]
        return None, ()
    try:
        normalized = normalize(value, region=region)
    except InvalidPhoneNumber as error:
        errors["phone"] = [error.message]
        return None, ()
    return normalized.e164, normalized.timezones


def _boolean(data: dict[str, Any], name: str, errors: FieldErrors) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    errors[name] = ["Must be true or false."]
    return None


def _merge_fields(value: Any, errors: FieldErrors) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors["fields"] = ["Must be an object of merge fields: names to text values."]
        return {}
    if len(value) > MERGE_FIELDS_MAX_COUNT:
        errors["fields"] = [
            f"At most {MERGE_FIELDS_MAX_COUNT} merge fields (this has {len(value)})."
        ]
        return {}
    problems: list[str] = []
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for raw_key, raw_value in value.items():
        label = safe_text(raw_key)[:MERGE_FIELD_KEY_MAX_LENGTH]
        key_problem = _text_problem(raw_key, MERGE_FIELD_KEY_MAX_LENGTH)
        key = normalize_header(raw_key) if not key_problem else ""
        if key_problem:
            problems.append(f"{label!r}: the name: {key_problem}")
            continue
        if not key:
            problems.append(f"{label!r}: a merge field needs a name.")
            continue
        if key in seen:
            problems.append(f"{label!r}: another name here means the same merge field {key!r}.")
            continue
        seen.add(key)
        if raw_value is None:
            continue
        value_problem = _text_problem(raw_value, MERGE_FIELD_MAX_LENGTH)
        if value_problem:
            problems.append(f"{label!r}: {value_problem}")
        elif raw_value.strip():
            fields[key] = raw_value.strip()
    if problems:
        errors["fields"] = problems
    return fields
