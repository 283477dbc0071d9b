"""What is archived, kind by kind: how a row becomes JSON and how it comes back.

Each row is every concrete column of its model, by column name (``batch_id``), with ISO
timestamps. An outbound message also carries its batch's kind and label (the batch
stays, but a reader of the archive should not need the database) and its send attempts,
which are deleted with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models, transaction

from delivery.models import Attempt, Batch, InboundMessage, Message


@dataclass(frozen=True)
class RestoreCounts:
    restored: int = 0
    skipped: int = 0


class ArchiveKind:
    """One table archived under ``<name>/YYYY/MM/DD/`` by the UTC date of ``day_field``."""

    name: str
    model: type[models.Model]
    day_field: str

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        return _values(self.model, ids)

    def restore(self, rows: Iterable[dict[str, Any]]) -> RestoreCounts:
        """Put rows whose id is not in the table back; the others (and any that would
        break a unique constraint) are skipped."""
        rows = list(rows)
        instances = [_instance(self.model, row) for row in rows]
        with transaction.atomic():
            restored = _insert_missing(self.model, instances)
            self.restore_related(rows, restored_ids=restored)
        return RestoreCounts(restored=len(restored), skipped=len(rows) - len(restored))

    def restore_related(self, rows: list[dict[str, Any]], *, restored_ids: set[int]) -> None:
        """Hook for rows archived inside a row (a message's attempts)."""


class MessageKind(ArchiveKind):
    name = "messages"
    model = Message
    day_field = "created_at"

    def rows(self, ids: list[int]) -> list[dict[str, Any]]:
        rows = super().rows(ids)
        # Not a join: a message whose batch is gone (no database constraint) still goes.
        batches = {
            batch["id"]: {"kind": batch["kind"], "label": batch["label"]}
            for batch in Batch.objects.filter(pk__in={row["batch_id"] for row in rows}).values(
                "id", "kind", "label"
            )
        }
        attempts: dict[int, list[dict[str, Any]]] = {}
        for attempt in _values(Attempt, ids, key="message_id"):
            attempts.setdefault(attempt["message_id"], []).append(attempt)
        for row in rows:
            row["batch"] = batches.get(row["batch_id"])
            row["send_attempts"] = attempts.get(row["id"], [])
        return rows

    def restore_related(self, rows: list[dict[str, Any]], *, restored_ids: set[int]) -> None:
        _insert_missing(
            Attempt,
            [
                _instance(Attempt, attempt)
                for row in rows
                if row["id"] in restored_ids
                for attempt in row.get("send_attempts", [])
            ],
        )


class InboundKind(ArchiveKind):
    name = "inbound"
    model = InboundMessage
    day_field = "received_at"

    def restore(self, rows: Iterable[dict[str, Any]]) -> RestoreCounts:
        rows = list(rows)
        # These links have database constraints: one to a row that is gone is cleared, as
        # deleting the message or the user would have done (SET_NULL).
        existing_replies = _existing(Message, {row.get("reply_id") for row in rows})
        existing_users = _existing(get_user_model(), {row.get("handled_by_id") for row in rows})
        for row in rows:
            if row.get("reply_id") not in existing_replies:
                row["reply_id"] = None
            if row.get("handled_by_id") not in existing_users:
                row["handled_by_id"] = None
        return super().restore(rows)


KINDS: dict[str, ArchiveKind] = {kind.name: kind for kind in (MessageKind(), InboundKind())}


def _values(model: type[models.Model], ids: list[int], *, key: str = "pk") -> list[dict[str, Any]]:
    columns = [field.attname for field in model._meta.concrete_fields]
    return list(
        model._default_manager.filter(**{f"{key}__in": ids}).order_by("pk").values(*columns)
    )


def _instance(model: type[models.Model], row: dict[str, Any]) -> models.Model:
    return model(
        **{
            field.attname: field.to_python(row[field.attname])
            for field in model._meta.concrete_fields
            if field.attname in row
        }
    )


def _insert_missing(model: type[models.Model], instances: list[models.Model]) -> set[int]:
    """Insert the instances whose id is not taken; the ids that went in."""
    wanted = {instance.pk for instance in instances}
    before = _existing(model, wanted)
    model._default_manager.bulk_create(
        [instance for instance in instances if instance.pk not in before],
        batch_size=1_000,
        ignore_conflicts=True,
    )
    return _existing(model, wanted - before)


def _existing(model: type[models.Model], ids: set[Any]) -> set[Any]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return set()
    return set(model._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
