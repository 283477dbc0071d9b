"""``manage.py cleanup [--dry-run]``: archive, then remove, data past its retention (see
``delivery.retention``) and say how much of each kind went."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from delivery.retention import remove_expired_data
from smsadmin.locks import held

# The beat task's lock (delivery.tasks.cleanup): two runs at once could archive a row twice.
LOCK_NAME = "delivery.cleanup"
LOCK_TIMEOUT = 3600


class Command(BaseCommand):
    help = (
        "Archive to the archive storage, then delete, finished outbound messages older than "
        "MESSAGE_RETENTION_DAYS (with their attempts) and inbound texts older than "
        "INBOUND_RETENTION_DAYS; delete member imports with their files older than "
        "IMPORT_RETENTION_DAYS."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="count what would be archived and removed, write and delete nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        if dry_run:
            removed = remove_expired_data(dry_run=True)
        else:
            with held(LOCK_NAME, timeout=LOCK_TIMEOUT) as acquired:
                if not acquired:
                    raise CommandError("Another cleanup is running; try again when it is done.")
                removed = remove_expired_data()
        verb = "to remove" if dry_run else "removed"
        written = "to write" if dry_run else "written"
        lines = [
            f"Outbound messages {verb} (finished, older than "
            f"{settings.MESSAGE_RETENTION_DAYS} days): {removed['messages']:,}",
            f"Send attempts of those messages {verb}: {removed['attempts']:,}",
            f"Inbound texts {verb} (older than {settings.INBOUND_RETENTION_DAYS} days): "
            f"{removed['inbound_messages']:,}",
            f"Member imports {verb} (older than {settings.IMPORT_RETENTION_DAYS} days): "
            f"{removed['import_jobs']:,}",
            f"Import files {verb} from storage: {removed['import_files']:,}",
            f"Archive parts {written}: outbound messages {removed['archived_message_parts']:,}, "
            f"inbound texts {removed['archived_inbound_parts']:,}",
        ]
        if dry_run:
            lines.append("Dry run: nothing was written or deleted.")
        self.stdout.write("\n".join(lines))
        if removed["unverified_parts"]:
            raise CommandError(
                f"{removed['unverified_parts']:,} archive parts did not verify when read back; "
                "their rows were kept (see the log)."
            )
