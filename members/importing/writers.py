"""Writers: validated rows in, members (and registrations) in the database out.

Both writers do the same thing and report the same counts (the tests run each on the
same cases):

- rows with the same phone: the last one in the file wins, the others are duplicates;
- a new phone creates a member, a known phone updates it: non-blank values overwrite,
  blank ones never erase, merge fields are merged;
- without an event the members are put in the community pool; with one, every row is
  registered for it and a member created by the import stays out of the community pool;
- opt-outs and suppressions are never touched, only counted;
- ``dry_run`` computes the same counts and writes nothing.

:class:`PostgresWriter` streams rows into a temporary table with COPY while the file is
still being validated and then merges them with one statement. :class:`PortableWriter`
works on any database, a chunk at a time, through the ORM.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import IO, Any, Protocol, Self

from django.db import connection, transaction
from django.utils import timezone

from members.importing.rows import (
    EMAIL,
    FIRST_MERGE_VALUE,
    FIRST_NAME,
    IS_DAILY,
    LAST_NAME,
    LINE,
    NUMBER_TIMEZONES,
    PHONE,
    TIMEZONE,
    ValidRow,
)
from members.models import Event, EventRegistration, Member, OptOut, Suppression


@dataclass
class WriteCounts:
    """Counted by phone (after duplicates in the file are dropped)."""

    created: int = 0
    updated: int = 0
    registered: int = 0
    opted_out: int = 0
    suppressed: int = 0


class MemberWriter(Protocol):
    """What the import service needs from a writer; a writer is used once."""

    def __init__(self, *, merge_keys: Sequence[str], event_slug: str, dry_run: bool) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
    def write(self, rows: Sequence[ValidRow]) -> None: ...
    def finish(self) -> WriteCounts: ...


def writer_for_database() -> type[MemberWriter]:
    return PostgresWriter if connection.vendor == "postgresql" else PortableWriter


def event_name_from_slug(slug: str) -> str:
    """``"summer-picnic-2025"`` → ``"Summer picnic 2025"``: staff can rename it later."""
    return slug.replace("-", " ").replace("_", " ").strip().capitalize() or slug


def _import_event(event_slug: str, *, dry_run: bool) -> Event | None:
    if not event_slug:
        return None
    if dry_run:
        return Event.objects.filter(slug=event_slug).first()
    event, _ = Event.objects.get_or_create(
        slug=event_slug, defaults={"name": event_name_from_slug(event_slug)}
    )
    return event


# Any fixed number that no other advisory lock of the project uses.
IMPORT_LOCK_KEY = 4_711_202_511

# SQL_IDENTIFIERS_NOTE: the SQL below is assembled from table names (model metadata), the
# generated staging table's name and numbered column names only; every value is a query
# parameter.


class PostgresWriter:
    """COPY into a temporary staging table, then one upsert (PostgreSQL only).

    Everything happens in one transaction, opened on entry: a file refused half-way
    (too many rows) or a crash leaves the database as it was.
    """

    def __init__(self, *, merge_keys: Sequence[str], event_slug: str, dry_run: bool) -> None:
        self.merge_keys = tuple(merge_keys)
        self.event_slug = event_slug
        self.dry_run = dry_run
        # Unique per writer: tests import twice inside one (never committed) transaction.
        self.staging_table = f"member_import_{id(self):x}"
        self._atomic = transaction.atomic()
        self._copy_context: Any = None
        self._copy: Any = None
        self._rows_staged = 0

    def __enter__(self) -> Self:
        self._atomic.__enter__()
        try:
            self._cursor = connection.cursor()
            merge_columns = "".join(
                f", merge_{position} text" for position in range(len(self.merge_keys))
            )
            self._cursor.execute(
                f"CREATE TEMPORARY TABLE {self.staging_table} ("
                "line integer NOT NULL, phone text NOT NULL, first_name text, "
                "last_name text, email text, timezone text, number_timezones jsonb NOT NULL, "
                f"is_daily_subscriber boolean{merge_columns}) ON COMMIT DROP"
            )
            self._copy_context = self._cursor.copy(f"COPY {self.staging_table} FROM STDIN")
            self._copy = self._copy_context.__enter__()
        except BaseException as error:
            self._atomic.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def write(self, rows: Sequence[ValidRow]) -> None:
        write_row = self._copy.write_row
        for row in rows:
            write_row(row)
        self._rows_staged += len(rows)

    def finish(self) -> WriteCounts:
        self._copy_context.__exit__(None, None, None)
        self._copy_context = None
        cursor = self._cursor
        # Imports merge one at a time: the upsert's snapshot, taken after the lock, then
        # sees every member an import that finished meanwhile created.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])
        event = _import_event(self.event_slug, dry_run=self.dry_run)
        # Let the DISTINCT ON sort of a big file happen in memory rather than on disk
        # (about 200 bytes a row), within bounds, for this transaction only.
        sort_megabytes = min(256, max(64, self._rows_staged * 200 // 2**20))
        cursor.execute(f"SET LOCAL work_mem = '{sort_megabytes}MB'")
        counts = self._count_without_writing(event) if self.dry_run else self._upsert(event)
        counts.opted_out = self._count_active_blocks(OptOut._meta.db_table)
        counts.suppressed = self._count_active_blocks(Suppression._meta.db_table)
        cursor.execute(f"DROP TABLE {self.staging_table}")
        return counts

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._copy_context is not None:
                # Ends the COPY with an error: PostgreSQL discards what it received.
                self._copy_context.__exit__(exc_type, exc, traceback)
            self._cursor.close()
        finally:
            self._atomic.__exit__(exc_type, exc, traceback)

    def _upsert(self, event: Event | None) -> WriteCounts:
        member_table = Member._meta.db_table
        # The merged row is computed against the existing member in the SELECT, so that
        # "blank leaves as is" holds for every column, is_daily_subscriber included.
        is_community = "true" if event is None else "COALESCE(existing.is_community, false)"
        registrations = ""
        registered_count = "0"
        parameters: dict[str, Any] = {"now": timezone.now(), **self._merge_key_parameters()}
        if event is not None:
            registrations = f""",
            registered AS (
                INSERT INTO {EventRegistration._meta.db_table} (event_id, member_id, registered_at)
                SELECT %(event_id)s, id, %(now)s FROM upserted
                ON CONFLICT (event_id, member_id) DO NOTHING
                RETURNING 1
            )"""  # noqa: S608 - see SQL_IDENTIFIERS_NOTE
            registered_count = "(SELECT count(*) FROM registered)"
            parameters["event_id"] = event.pk
        # The byte order ("C") sorts phones several times faster than the database's
        # collation, and finds the same duplicates: text is equal only when its bytes are.
        self._cursor.execute(
            f"""
            WITH latest AS (
                SELECT DISTINCT ON (phone COLLATE "C") * FROM {self.staging_table}
                ORDER BY phone COLLATE "C", line DESC
            ),
            merged AS (
                SELECT
                    staged.phone,
                    COALESCE(staged.first_name, existing.first_name, '') AS first_name,
                    COALESCE(staged.last_name, existing.last_name, '') AS last_name,
                    COALESCE(staged.email, existing.email, '') AS email,
                    COALESCE(existing.fields, '{{}}'::jsonb) || {self._fields_expression()}
                        AS fields,
                    COALESCE(staged.timezone, existing.timezone, '') AS timezone,
                    staged.number_timezones,
                    {is_community} AS is_community,
                    COALESCE(staged.is_daily_subscriber, existing.is_daily_subscriber, false)
                        AS is_daily_subscriber
                FROM latest AS staged
                LEFT JOIN {member_table} AS existing ON existing.phone = staged.phone
            ),
            upserted AS (
                INSERT INTO {member_table} AS member (
                    phone, first_name, last_name, email, fields, timezone, number_timezones,
                    is_community, is_daily_subscriber, created_at, updated_at
                )
                SELECT
                    phone, first_name, last_name, email, fields, timezone, number_timezones,
                    is_community, is_daily_subscriber, %(now)s, %(now)s
                FROM merged
                ON CONFLICT (phone) DO UPDATE SET
                    first_name = EXCLUDED.first_name,
                    last_name = EXCLUDED.last_name,
                    email = EXCLUDED.email,
                    fields = EXCLUDED.fields,
                    timezone = EXCLUDED.timezone,
                    number_timezones = EXCLUDED.number_timezones,
                    is_community = EXCLUDED.is_community,
                    is_daily_subscriber = EXCLUDED.is_daily_subscriber,
                    updated_at = EXCLUDED.updated_at
                -- xmax is 0 on a row version that an INSERT (not an UPDATE) created.
                RETURNING member.id, (member.xmax = 0) AS is_created
            ){registrations}
            SELECT
                count(*) FILTER (WHERE is_created),
                count(*) FILTER (WHERE NOT is_created),
                {registered_count}
            FROM upserted
            """,  # noqa: S608 - see SQL_IDENTIFIERS_NOTE
            parameters,
        )
        created, updated, registered = self._cursor.fetchone()
        return WriteCounts(created=created, updated=updated, registered=registered)

    def _count_without_writing(self, event: Event | None) -> WriteCounts:
        self._cursor.execute(
            f"""
            SELECT
                count(*) FILTER (WHERE existing.id IS NULL),
                count(*) FILTER (WHERE existing.id IS NOT NULL),
                count(*) FILTER (WHERE registration.id IS NULL)
            FROM (SELECT DISTINCT phone FROM {self.staging_table}) AS staged
            LEFT JOIN {Member._meta.db_table} AS existing ON existing.phone = staged.phone
            LEFT JOIN {EventRegistration._meta.db_table} AS registration
                ON registration.member_id = existing.id AND registration.event_id = %s
            """,  # noqa: S608 - see SQL_IDENTIFIERS_NOTE
            [event.pk if event else None],
        )
        created, updated, registrable = self._cursor.fetchone()
        return WriteCounts(
            created=created, updated=updated, registered=registrable if self.event_slug else 0
        )

    def _count_active_blocks(self, table: str) -> int:
        self._cursor.execute(
            f"SELECT count(*) FROM {table} WHERE lifted_at IS NULL "  # noqa: S608 - see SQL_IDENTIFIERS_NOTE
            f"AND phone IN (SELECT phone FROM {self.staging_table})"
        )
        return self._cursor.fetchone()[0]

    def _merge_key_parameters(self) -> dict[str, str]:
        return {f"merge_key_{position}": key for position, key in enumerate(self.merge_keys)}

    def _fields_expression(self) -> str:
        """The row's non-blank merge fields as a jsonb object."""
        if not self.merge_keys:
            return "'{}'::jsonb"
        pairs = [
            f"%(merge_key_{position})s::text, staged.merge_{position}"
            for position in range(len(self.merge_keys))
        ]
        # A function takes at most 100 arguments: build the object 50 pairs at a time.
        objects = [
            f"jsonb_build_object({', '.join(pairs[start : start + 50])})"
            for start in range(0, len(pairs), 50)
        ]
        return f"jsonb_strip_nulls({' || '.join(objects)})"


class PortableWriter:
    """The same merge through the ORM, a chunk of rows at a time (SQLite, the demo).

    Rows are spooled to a temporary file while the file is read, because a later row
    may replace an earlier one with the same phone; only the last row of each phone is
    then applied. Memory grows with the number of distinct phones (a dict of them).
    """

    chunk_size = 1000

    def __init__(self, *, merge_keys: Sequence[str], event_slug: str, dry_run: bool) -> None:
        self.merge_keys = tuple(merge_keys)
        self.event_slug = event_slug
        self.dry_run = dry_run
        self._last_line_by_phone: dict[str, int] = {}
        self._pending: list[ValidRow] = []
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed on exit

    def __enter__(self) -> Self:
        return self

    def write(self, rows: Sequence[ValidRow]) -> None:
        last_line_by_phone = self._last_line_by_phone
        for row in rows:
            last_line_by_phone[row[PHONE]] = row[LINE]
        self._pending.extend(rows)
        if len(self._pending) >= self.chunk_size:
            self._spool_pending()

    def finish(self) -> WriteCounts:
        self._spool_pending()
        self._spool.seek(0)
        counts = WriteCounts()
        with transaction.atomic():
            event = _import_event(self.event_slug, dry_run=self.dry_run)
            now = timezone.now()
            while True:
                try:
                    chunk: list[ValidRow] = pickle.load(self._spool)  # noqa: S301 - our own file
                except EOFError:
                    break
                latest = [row for row in chunk if self._last_line_by_phone[row[PHONE]] == row[LINE]]
                if latest:
                    self._apply(latest, event=event, now=now, counts=counts)
        return counts

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._spool.close()

    def _spool_pending(self) -> None:
        if self._pending:
            pickle.dump(self._pending, self._spool, protocol=pickle.HIGHEST_PROTOCOL)
            self._pending = []

    def _apply(
        self, rows: list[ValidRow], *, event: Event | None, now: datetime, counts: WriteCounts
    ) -> None:
        phones = [row[PHONE] for row in rows]
        existing = {member.phone: member for member in Member.objects.filter(phone__in=phones)}
        created: list[Member] = []
        updated: list[Member] = []
        for row in rows:
            member = existing.get(row[PHONE])
            if member is None:
                member = Member(
                    phone=row[PHONE],
                    is_community=not self.event_slug,
                    created_at=now,
                )
                created.append(member)
            else:
                if not self.event_slug:
                    member.is_community = True
                updated.append(member)
            self._merge(member, row, now=now)
        counts.created += len(created)
        counts.updated += len(updated)
        counts.opted_out += OptOut.objects.active().filter(phone__in=phones).count()
        counts.suppressed += Suppression.objects.active().filter(phone__in=phones).count()
        if not self.dry_run:
            Member.objects.bulk_create(created)
            Member.objects.bulk_update(updated, fields=MERGED_FIELDS)
        if self.event_slug:
            counts.registered += self._register(created, updated, event=event, now=now)

    def _merge(self, member: Member, row: ValidRow, *, now: datetime) -> None:
        for field_name, position in (
            ("first_name", FIRST_NAME),
            ("last_name", LAST_NAME),
            ("email", EMAIL),
            ("timezone", TIMEZONE),
            ("is_daily_subscriber", IS_DAILY),
        ):
            if row[position] is not None:
                setattr(member, field_name, row[position])
        new_fields = {
            key: value
            for key, value in zip(self.merge_keys, row[FIRST_MERGE_VALUE:], strict=True)
            if value is not None
        }
        member.fields = {**member.fields, **new_fields}
        member.number_timezones = _zones_from_json(row[NUMBER_TIMEZONES])
        member.updated_at = now

    def _register(
        self, created: list[Member], updated: list[Member], *, event: Event | None, now: datetime
    ) -> int:
        if event is None:  # a dry run for an event that does not exist yet
            return len(created) + len(updated)
        already_registered = set(
            EventRegistration.objects.filter(
                event=event, member__in=[member.pk for member in updated]
            ).values_list("member_id", flat=True)
        )
        if self.dry_run:
            return len(created) + len(updated) - len(already_registered)
        registrations = [
            EventRegistration(event=event, member=member, registered_at=now)
            for member in [*created, *updated]
            if member.pk not in already_registered
        ]
        EventRegistration.objects.bulk_create(registrations)
        return len(registrations)


MERGED_FIELDS = [
    "first_name",
    "last_name",
    "email",
    "fields",
    "timezone",
    "number_timezones",
    "is_community",
    "is_daily_subscriber",
    "updated_at",
]

_ZONES_CACHE: dict[str, list[str]] = {}


def _zones_from_json(text: str) -> list[str]:
    zones = _ZONES_CACHE.get(text)
    if zones is None:
        zones = _ZONES_CACHE[text] = json.loads(text)
    return list(zones)
