"""``manage.py cleanup [--dry-run]``: remove data past its retention (see
``delivery.retention``) and say how much of each kind went."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from delivery.retention import remove_expired_data


class Command(BaseCommand):
    help = (
        "Delete finished outbound messages older than MESSAGE_RETENTION_DAYS (with their "
        "attempts), inbound texts older than INBOUND_RETENTION_DAYS, and member imports "
        "with their files older than IMPORT_RETENTION_DAYS."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be removed, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        removed = remove_expired_data(dry_run=dry_run)
        verb = "to remove" if dry_run else "removed"
        lines = [
            f"Outbound messages {verb} (finished, older than "
            f"{settings.MESSAGE_RETENTION_DAYS} days): {removed['messages']:,}",
            f"Send attempts of those messages {verb}: {removed['attempts']:,}",
            f"Inbound texts {verb} (older than {settings.INBOUND_RETENTION_DAYS} days): "
            f"{removed['inbound_messages']:,}",
            f"Member imports {verb} (older than {settings.IMPORT_RETENTION_DAYS} days): "
            f"{removed['import_jobs']:,}",
            f"Import files {verb} from storage: {removed['import_files']:,}",
        ]
        if dry_run:
            lines.append("Dry run: nothing was deleted.")
        self.stdout.write("\n".join(lines))
