"""``manage.py restore_archive YYYY-MM-DD [--kind messages|inbound|all]``: load one day's
archived rows back into their tables, for an investigation (see ``delivery.archive``).

Idempotent: a row whose id is already in its table is skipped. Restored messages keep
their final status, so nothing sends them again; the next ``cleanup`` removes them again
(they are still past retention) without archiving a second copy.
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from delivery.archive import KINDS, restore_day

LABELS = {"messages": "Outbound messages", "inbound": "Inbound texts"}


class Command(BaseCommand):
    help = "Load one day's archived outbound messages and/or inbound texts back into the database."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("day", help="the day archived, YYYY-MM-DD (UTC)")
        parser.add_argument(
            "--kind",
            choices=[*KINDS, "all"],
            default="all",
            help="outbound messages (by the day created), inbound texts (by the day "
            "received) or both (default)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["day"])
        except ValueError as error:
            raise CommandError(f"Not a date (YYYY-MM-DD): {options['day']!r}.") from error
        names = list(KINDS) if options["kind"] == "all" else [options["kind"]]
        results = {name: restore_day(kind=KINDS[name], day=day) for name in names}
        if not any(result.parts or result.unverified_parts for result in results.values()):
            raise CommandError(f"Nothing archived for {day:%Y-%m-%d} ({', '.join(names)}).")
        for name, result in results.items():
            self.stdout.write(
                f"{LABELS[name]} of {day:%Y-%m-%d}: {result.restored:,} restored, "
                f"{result.skipped:,} skipped (already there), from {result.parts:,} parts"
            )
            for part in result.unverified_parts:
                self.stderr.write(f"Skipped {part}: it does not match its manifest.")
