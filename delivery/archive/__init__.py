"""Archive old rows to object storage before they are deleted, and bring them back.

``manage.py cleanup`` (``delivery.retention``) hands each kind's expired rows here:
finished outbound messages go to ``messages/YYYY/MM/DD/`` by the UTC date they were
created, inbound texts to ``inbound/YYYY/MM/DD/`` by the date they were received. A day
is written in parts of at most ``ARCHIVE_PART_ROWS`` rows, ``part-NNNN.jsonl.gz`` (gzip
JSON Lines, one object per row with every column) with ``part-NNNN.manifest.json``
beside it (row count, ids, SHA-256 of the ids and of the uncompressed lines). Storage is
``storages["archive"]``: an S3 bucket or a local folder (``ARCHIVE_*`` settings).

For each part: select up to ``ARCHIVE_PART_ROWS`` ids, write the data, write the
manifest, read both back and check count and checksums against what was selected, and
only then delete exactly the ids in the verified part, in short chunks.

Crash safety, by construction:

- A part is *verified* when its manifest and data read back and agree. Rows are deleted
  only on account of a verified part, so a part without a manifest, or one that never
  verified, has all its rows still in the database.
- Before writing anything for a day, a run reads the day's existing parts. A verified
  part's rows still in the database (a crash after verifying, or mid-delete; or a
  restore) are deleted then, not archived again. A part without a manifest, or one
  that does not verify while all its ids are still in the database, is overwritten in
  place by the next part written (same name, so never a second object). One that does
  not verify while some of its rows are gone may be their only copy: the day is left
  alone and reported (``failed_parts``) until someone looks.
- New rows then go to the lowest numbers not held by a verified part. A row is thus in
  at most one verified part and deleted only after it is in one: a rerun after a crash
  at any point neither loses nor duplicates a row. Restore loads only verified parts
  and still de-duplicates by id.

Two runs at once could each archive the same rows: the beat task and ``manage.py
cleanup`` hold the same lock (``delivery.cleanup``, ``smsadmin.locks``).
"""

from delivery.archive.archiving import ArchiveRun, archive_and_delete, parts_to_write
from delivery.archive.kinds import KINDS, ArchiveKind
from delivery.archive.restore import DayRestore, restore_day

__all__ = [
    "KINDS",
    "ArchiveKind",
    "ArchiveRun",
    "DayRestore",
    "archive_and_delete",
    "parts_to_write",
    "restore_day",
]
