"""``manage.py backfill_suppressions [--since DATE] [--dry-run] [--chunk-size N]``.

Runs the delivery failure rules (``delivery.suppression``) over numbers with failed
messages in the past, as the live hooks would now. Safe to run again: a number that is
already blocked, or whose block staff lifted after its failures, gets nothing new.
"""

from __future__ import annotations

import datetime
import time
from argparse import ArgumentParser, ArgumentTypeError
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import batched
from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from delivery.models import Message
from delivery.suppression import (
    FAILED_STATUSES,
    OPT_OUT_CODES,
    SUPPRESSION_CODES,
    Action,
    Block,
    create_blocks,
    decide_blocks,
)
from members.models import Suppression

PROGRESS_EVERY_SECONDS = 5.0


def _day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a date like 2025-01-31") from None


class Command(BaseCommand):
    help = (
        "Suppress numbers whose past failures call for it and record carrier opt-outs, "
        "by the same rules as live sending. Prints progress on stderr and a summary; "
        "running it again changes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--since",
            type=_day,
            metavar="DATE",
            help="only numbers with a failed message on or after this day (YYYY-MM-DD, "
            "in TIME_ZONE); each is still judged on its whole history",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, write nothing"
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=1000,
            metavar="N",
            help="numbers judged per round of queries (default: %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        chunk_size = max(1, options["chunk_size"])
        # Counts only: millions of blocks' details are not kept around for a summary.
        tally = _Tally()
        last_report = time.monotonic()
        for phones in batched(self._phones(options["since"], chunk_size), chunk_size):
            decided = decide_blocks(phones=phones)
            tally.add(
                phones=len(phones), blocks=decided if dry_run else create_blocks(blocks=decided)
            )
            if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
                self._progress(tally, dry_run)
                last_report = time.monotonic()
        self._progress(tally, dry_run)
        self._summary(tally, dry_run)

    def _phones(self, since: datetime.date | None, chunk_size: int) -> Iterator[str]:
        """Each number with a failure the rules act on, once, in order (a server-side
        cursor: millions of messages are never held in memory)."""
        failed = Message.objects.filter(
            status__in=FAILED_STATUSES, error_code__in=OPT_OUT_CODES | SUPPRESSION_CODES
        )
        if since is not None:
            start = timezone.make_aware(datetime.datetime.combine(since, datetime.time.min))
            failed = failed.filter(
                Q(failed_at__gte=start) | Q(failed_at__isnull=True, status_updated_at__gte=start)
            )
        return (
            failed.order_by("phone")
            .values_list("phone", flat=True)
            .distinct()
            .iterator(chunk_size=chunk_size)
        )

    def _progress(self, tally: _Tally, dry_run: bool) -> None:
        verb = "to create" if dry_run else "created"
        self.stderr.write(
            f"{tally.phones:,} numbers checked: {tally.suppressions.total():,} suppressions "
            f"and {tally.opt_outs:,} carrier opt-outs {verb}"
        )

    def _summary(self, tally: _Tally, dry_run: bool) -> None:
        labels = dict(Suppression.Reason.choices)
        by_reason = ", ".join(
            f"{labels.get(reason, reason).lower()}: {count:,}"
            for reason, count in sorted(tally.suppressions.items())
        )
        would = "would be " if dry_run else ""
        lines = [
            f"Numbers with failures checked: {tally.phones:,}",
            f"Suppressions {would}created: {tally.suppressions.total():,}"
            + (f" ({by_reason})" if by_reason else ""),
            f"Carrier opt-outs {would}recorded: {tally.opt_outs:,}",
        ]
        if dry_run:
            lines.append("Dry run: nothing was written.")
        self.stdout.write("\n".join(lines))


@dataclass
class _Tally:
    phones: int = 0
    suppressions: Counter[str] = field(default_factory=Counter)  # by reason
    opt_outs: int = 0

    def add(self, *, phones: int, blocks: list[Block]) -> None:
        self.phones += phones
        for block in blocks:
            if block.action == Action.SUPPRESS:
                self.suppressions[block.reason] += 1
            elif block.action == Action.OPT_OUT:
                self.opt_outs += 1
