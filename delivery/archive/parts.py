"""Archive parts: one gzip JSON Lines object of rows and a small manifest beside it.

``messages/2025/04/27/part-0001.jsonl.gz`` holds up to ``ARCHIVE_PART_ROWS`` rows, one JSON
object a line, sorted by id; ``part-0001.manifest.json`` says how many rows, which ids and
the SHA-256 of the uncompressed lines. A part counts only when both read back and agree.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.utils import timezone

FORMAT_VERSION = 1
DATA_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"
_PART_FILE = re.compile(r"^part-(\d{4,})(\.jsonl\.gz|\.manifest\.json)$")


class PartError(Exception):
    """A part that is missing, unreadable or disagrees with its manifest.

    ``ids`` are the ids it claims to hold when they could still be read (from the
    manifest, else from the data), or None.
    """

    def __init__(self, message: str, *, ids: list[int] | None = None) -> None:
        super().__init__(message)
        self.ids = ids


@dataclass(frozen=True)
class EncodedPart:
    data: bytes
    manifest: dict[str, Any]


@dataclass(frozen=True)
class VerifiedPart:
    number: int
    manifest: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def ids(self) -> list[int]:
        return self.manifest["ids"]


def day_folder(kind: str, day: date) -> str:
    return f"{kind}/{day:%Y/%m/%d}"


def data_name(folder: str, number: int) -> str:
    return f"{folder}/part-{number:04d}{DATA_SUFFIX}"


def manifest_name(folder: str, number: int) -> str:
    return f"{folder}/part-{number:04d}{MANIFEST_SUFFIX}"


def ids_checksum(ids: list[int]) -> str:
    """SHA-256 of the sorted ids, comma-separated."""
    return hashlib.sha256(",".join(str(i) for i in sorted(ids)).encode()).hexdigest()


def encode_part(rows: list[dict[str, Any]], *, kind: str, day: date, number: int) -> EncodedPart:
    rows = sorted(rows, key=lambda row: row["id"])
    content = b"".join(
        json.dumps(row, default=_to_json, sort_keys=True, ensure_ascii=False).encode() + b"\n"
        for row in rows
    )
    ids = [row["id"] for row in rows]
    manifest = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "day": day.isoformat(),
        "part": number,
        "rows": len(rows),
        "content_sha256": hashlib.sha256(content).hexdigest(),
        "ids_sha256": ids_checksum(ids),
        "ids": ids,
        "written_at": timezone.now().isoformat(),
    }
    # mtime=0: the same rows always compress to the same bytes.
    return EncodedPart(data=gzip.compress(content, mtime=0), manifest=manifest)


def write_part(storage: Storage, folder: str, number: int, part: EncodedPart) -> None:
    """Data first, manifest second: a part without a manifest was never verified, so no
    row was deleted on its account and the next run may overwrite it."""
    _save(storage, data_name(folder, number), part.data)
    _save(storage, manifest_name(folder, number), json.dumps(part.manifest).encode())


def read_part(
    storage: Storage, folder: str, number: int, *, expected: dict[str, Any] | None = None
) -> VerifiedPart:
    """Read a part and its manifest back from storage and check every row against the
    manifest (and the manifest against ``expected``, what was just written); PartError
    when anything is missing, unreadable or different."""
    try:
        manifest = json.loads(_read(storage, manifest_name(folder, number)))
        claimed_ids = [int(i) for i in manifest["ids"]]
    except Exception as error:
        raise PartError(
            f"manifest unreadable: {error}", ids=_ids_in_data(storage, folder, number)
        ) from error
    if expected is not None and manifest != expected:
        raise PartError("manifest read back differs from the one written", ids=claimed_ids)
    try:
        content = gzip.decompress(_read(storage, data_name(folder, number)))
        rows = [json.loads(line) for line in content.splitlines()]
        ids = [int(row["id"]) for row in rows]
    except Exception as error:
        raise PartError(f"data unreadable: {error}", ids=claimed_ids) from error
    problems = []
    if len(rows) != manifest.get("rows"):
        problems.append(f"{len(rows)} rows, the manifest says {manifest.get('rows')}")
    if hashlib.sha256(content).hexdigest() != manifest.get("content_sha256"):
        problems.append("content checksum differs")
    if sorted(ids) != sorted(claimed_ids) or ids_checksum(ids) != manifest.get("ids_sha256"):
        problems.append("ids differ from the manifest")
    if len(set(ids)) != len(ids):
        problems.append("an id appears twice")
    if problems:
        raise PartError("; ".join(problems), ids=claimed_ids)
    return VerifiedPart(number=number, manifest=manifest, rows=rows)


def list_parts(storage: Storage, folder: str) -> dict[int, set[str]]:
    """Part numbers found in a day's folder, each with which of its files exist
    (``DATA_SUFFIX``, ``MANIFEST_SUFFIX``)."""
    try:
        _, files = storage.listdir(folder)
    except FileNotFoundError:
        return {}
    found: dict[int, set[str]] = {}
    for name in files:
        if match := _PART_FILE.match(name):
            found.setdefault(int(match[1]), set()).add(match[2])
    return found


def _ids_in_data(storage: Storage, folder: str, number: int) -> list[int] | None:
    try:
        content = gzip.decompress(_read(storage, data_name(folder, number)))
        return [int(json.loads(line)["id"]) for line in content.splitlines()]
    except Exception:
        return None


def _save(storage: Storage, name: str, content: bytes) -> None:
    saved = storage.save(name, ContentFile(content))
    if saved != name:
        # A storage that renames instead of overwriting would leave two copies of a part.
        storage.delete(saved)
        raise RuntimeError(
            f"The archive storage saved {name} as {saved}: it must overwrite "
            "(FileSystemStorage(allow_overwrite=True), S3Storage(file_overwrite=True))."
        )


def _read(storage: Storage, name: str) -> bytes:
    with storage.open(name, "rb") as stored:
        return stored.read()


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"Cannot archive a {type(value).__name__}")
