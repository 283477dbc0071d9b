"""Archive expired rows day by day, then delete exactly the rows of each verified part."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import Count
from django.db.models.functions import TruncDate

from delivery.archive import parts
from delivery.archive.kinds import ArchiveKind

logger = logging.getLogger(__name__)

DELETE_CHUNK_SIZE = 5_000


@dataclass
class ArchiveRun:
    """What one run did for one kind: parts written and verified, parts that did not
    verify (their rows stay), and rows deleted per model label (with cascades)."""

    parts: int = 0
    failed_parts: int = 0
    deleted: Counter[str] = field(default_factory=Counter)


def archive_storage() -> Storage:
    return storages["archive"]


def archive_and_delete(*, kind: ArchiveKind, expired: models.QuerySet[Any]) -> ArchiveRun:
    """Archive the ``expired`` rows of this kind, then delete them once verified."""
    storage = archive_storage()
    run = ArchiveRun()
    for day in _days(expired, kind.day_field):
        _archive_day(
            storage, kind=kind, day=day, rows=_on_day(expired, kind.day_field, day), run=run
        )
    return run


def parts_to_write(*, kind: ArchiveKind, expired: models.QuerySet[Any]) -> int:
    """How many parts archiving ``expired`` would write (for a dry run)."""
    per_day = (
        expired.order_by()
        .annotate(day=TruncDate(kind.day_field, tzinfo=UTC))
        .values("day")
        .annotate(rows=Count("pk"))
    )
    return sum(math.ceil(each["rows"] / settings.ARCHIVE_PART_ROWS) for each in per_day)


def _archive_day(
    storage: Storage, *, kind: ArchiveKind, day: date, rows: models.QuerySet[Any], run: ArchiveRun
) -> None:
    folder = parts.day_folder(kind.name, day)
    taken: set[int] = set()
    # First what earlier runs left: rows of a verified part still here (a run stopped
    # before or during its delete, or a restore put them back) go now, without a second
    # copy; a part that never verified is rewritten.
    for number, files in sorted(parts.list_parts(storage, folder).items()):
        if parts.MANIFEST_SUFFIX not in files:
            continue  # never verified, so no row was deleted on its account: rewritten
        try:
            part = parts.read_part(storage, folder, number)
        except parts.PartError as error:
            if error.ids is not None and _all_present(kind, error.ids):
                continue  # nothing of it was deleted: safe to rewrite
            # Some of its rows may exist only there: leave the day alone until someone looks.
            logger.error(
                "Archive part %s/%04d does not verify (%s) and some of its rows are no longer "
                "in the database; the day is skipped, its rows stay.",
                folder,
                number,
                error,
            )
            run.failed_parts += 1
            return
        taken.add(number)
        run.deleted.update(delete_archived(rows, part.ids))

    numbers = (number for number in count(1) if number not in taken)
    for ids in _chunks_of_ids(rows, settings.ARCHIVE_PART_ROWS):
        number = next(numbers)
        encoded = parts.encode_part(kind.rows(ids), kind=kind.name, day=day, number=number)
        parts.write_part(storage, folder, number, encoded)
        try:
            part = parts.read_part(storage, folder, number, expected=encoded.manifest)
        except parts.PartError as error:
            logger.error(
                "Archive part %s/%04d did not verify after writing (%s); its rows stay.",
                folder,
                number,
                error,
            )
            run.failed_parts += 1
            return
        run.parts += 1
        run.deleted.update(delete_archived(rows, part.ids))


def delete_archived(rows: models.QuerySet[Any], ids: list[int]) -> Counter[str]:
    """Delete exactly these ids (and what cascades), in short chunks; rows no longer
    matching ``rows`` stay."""
    deleted: Counter[str] = Counter()
    for start in range(0, len(ids), DELETE_CHUNK_SIZE):
        chunk = ids[start : start + DELETE_CHUNK_SIZE]
        _, per_model = rows.filter(pk__in=chunk).only("pk").delete()
        deleted.update(per_model)
    return deleted


def _all_present(kind: ArchiveKind, ids: list[int]) -> bool:
    return kind.model._default_manager.filter(pk__in=ids).count() == len(set(ids))


def _days(expired: models.QuerySet[Any], day_field: str) -> list[date]:
    return list(
        expired.order_by()
        .annotate(day=TruncDate(day_field, tzinfo=UTC))
        .values_list("day", flat=True)
        .distinct()
        .order_by("day")
    )


def _on_day(expired: models.QuerySet[Any], day_field: str, day: date) -> models.QuerySet[Any]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return expired.filter(
        **{f"{day_field}__gte": start, f"{day_field}__lt": start + timedelta(days=1)}
    )


def _chunks_of_ids(queryset: models.QuerySet[Any], size: int) -> Iterator[list[int]]:
    """Ascending chunks of ids, each read after the previous one was dealt with."""
    last_id = 0
    while ids := list(
        queryset.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:size]
    ):
        yield ids
        last_id = ids[-1]
