"""Contacts added or updated one by one or in bulk (the API), by the CSV import's rules.

A contact is upserted by phone: values given overwrite, values left out (``None``) leave
the stored ones as is, merge fields are merged. A new member joins the community pool
unless it is registered for an event or says otherwise. Opt-outs and suppressions are
never touched: upserting an opted-out phone does not opt it in.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from members.importing.rows import TIMEZONE_MAX_LENGTH
from members.importing.writers import IMPORT_LOCK_KEY, MERGED_FIELDS
from members.models import EventRegistration, Member

WRITE_BATCH_SIZE = 1000
# A new member created by a concurrent writer that does not take the import lock (a
# JOIN text) makes the insert fail; the next attempt finds it and updates it instead.
WRITE_ATTEMPTS = 3


@lru_cache(maxsize=1024)
def is_known_timezone(name: str) -> bool:
    """An IANA time zone name, as the CSV import accepts it."""
    if len(name) > TIMEZONE_MAX_LENGTH or "\x00" in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class ContactChanges:
    """One validated contact; ``None`` means: leave the stored value as is."""

    phone: str
    number_timezones: tuple[str, ...]
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    timezone: str | None = None
    is_community: bool | None = None
    is_daily_subscriber: bool | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    event_ids: frozenset[int] = frozenset()


@dataclass
class ContactsWritten:
    """Counted by phone: a phone given twice counts once (its last version was written)."""

    members: dict[str, Member]
    created_phones: set[str]

    @property
    def created(self) -> int:
        return len(self.created_phones)

    @property
    def updated(self) -> int:
        return len(self.members) - len(self.created_phones)


def upsert_contacts(*, contacts: Sequence[ContactChanges]) -> ContactsWritten:
    """Create or update the members of ``contacts`` (the last of a phone wins) and register
    them for their events, in one transaction and a few queries per thousand contacts."""
    latest = {contact.phone: contact for contact in contacts}
    if not latest:
        return ContactsWritten(members={}, created_phones=set())
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _write(latest)
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _write(latest: dict[str, ContactChanges]) -> ContactsWritten:
    if connection.vendor == "postgresql":
        # Merged one at a time with imports, which compute their merge from a snapshot.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])
    now = timezone.now()
    existing = _existing_members(list(latest))
    created: list[Member] = []
    changed: list[Member] = []
    for phone, contact in latest.items():
        member = existing.get(phone)
        if member is None:
            member = Member(
                phone=phone,
                is_community=not contact.event_ids,
                created_at=now,
                updated_at=now,
            )
            _apply(member, contact)
            created.append(member)
        elif _apply(member, contact):
            member.updated_at = now
            changed.append(member)
    Member.objects.bulk_create(created, batch_size=WRITE_BATCH_SIZE)
    # An upsert onto rows known to exist (and locked): a bulk_update() of CASE WHENs
    # took 15 s for 5,000 members, this takes a tenth of a second.
    Member.objects.bulk_create(
        changed,
        batch_size=WRITE_BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["phone"],
        update_fields=MERGED_FIELDS,
    )
    members = {**existing, **{member.phone: member for member in created}}
    _register(latest, members, now=now)
    return ContactsWritten(members=members, created_phones={member.phone for member in created})


def _existing_members(phones: list[str]) -> dict[str, Member]:
    members = Member.objects.select_for_update().filter(phone__in=phones)
    return {member.phone: member for member in members}


def _apply(member: Member, contact: ContactChanges) -> bool:
    """Set what ``contact`` gives on ``member``; whether anything changed."""
    before = [getattr(member, name) for name in MERGED_FIELDS]
    for name in (
        "first_name",
        "last_name",
        "email",
        "timezone",
        "is_community",
        "is_daily_subscriber",
    ):
        value = getattr(contact, name)
        if value is not None:
            setattr(member, name, value)
    if contact.fields:
        member.fields = {**member.fields, **contact.fields}
    member.number_timezones = list(contact.number_timezones)
    return before != [getattr(member, name) for name in MERGED_FIELDS]


def _register(
    latest: dict[str, ContactChanges], members: dict[str, Member], *, now: datetime
) -> None:
    registrations = [
        EventRegistration(event_id=event_id, member=members[phone], registered_at=now)
        for phone, contact in latest.items()
        for event_id in contact.event_ids
    ]
    EventRegistration.objects.bulk_create(
        registrations, batch_size=WRITE_BATCH_SIZE, ignore_conflicts=True
    )
