"""Load one day's archived rows back into their tables, for an investigation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from delivery.archive import parts
from delivery.archive.archiving import archive_storage
from delivery.archive.kinds import ArchiveKind

logger = logging.getLogger(__name__)


@dataclass
class DayRestore:
    """Rows put back, rows skipped (their id is already in the table, or they would
    break a unique constraint), and parts passed over because they do not verify."""

    parts: int = 0
    restored: int = 0
    skipped: int = 0
    unverified_parts: list[str] = field(default_factory=list)


def restore_day(*, kind: ArchiveKind, day: date) -> DayRestore:
    """Restore every verified part of this kind and day; idempotent. A row found in two
    parts is loaded once."""
    storage = archive_storage()
    folder = parts.day_folder(kind.name, day)
    result = DayRestore()
    seen: set[int] = set()
    for number, files in sorted(parts.list_parts(storage, folder).items()):
        if parts.MANIFEST_SUFFIX not in files:
            continue  # a part written by a run that stopped before it was verified
        try:
            part = parts.read_part(storage, folder, number)
        except parts.PartError as error:
            logger.warning("Archive part %s/%04d does not verify: %s", folder, number, error)
            result.unverified_parts.append(parts.data_name(folder, number))
            continue
        rows: list[dict[str, Any]] = [row for row in part.rows if row["id"] not in seen]
        seen.update(row["id"] for row in rows)
        counts = kind.restore(rows)
        result.parts += 1
        result.restored += counts.restored
        result.skipped += counts.skipped + len(part.rows) - len(rows)
    return result
