"""``manage.py process_messages``: queue the daily message for everyone due now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from positivity.sending import deliver_due


class Command(BaseCommand):
    help = (
        "Queue today's daily message for every subscriber whose local send time has come "
        "and who has not had it (beat does this every two minutes), and the confirmation "
        "for new subscribers. Safe to run at any time: nobody gets a message twice."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        run = deliver_due()
        if not run.queued and not run.awaiting_approval and not run.not_written:
            self.stdout.write("No subscriber is due for a daily message now.")
        for day, count in run.queued.items():
            noun = "subscriber" if count == 1 else "subscribers"
            self.stdout.write(
                self.style.SUCCESS(f"{day}: daily message queued for {count} {noun}.")
            )
        for day in run.awaiting_approval:
            self.stdout.write(
                self.style.WARNING(
                    f"{day}: subscribers are due, but the message awaits approval in the admin."
                )
            )
        for day in run.not_written:
            self.stdout.write(f"{day}: the message is being written; due subscribers wait.")
        noun = "confirmation" if run.confirmations == 1 else "confirmations"
        self.stdout.write(f"{run.confirmations} new-subscriber {noun} queued.")
