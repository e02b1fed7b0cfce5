"""Purge history older than the retention age (settings.LINKUP["RETENTION_DAYS"])."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from linkup.actions.messages import do_purge_history
from linkup.core.conf import setting


class Command(BaseCommand):
    help = "Delete messages older than the retention age; rooms then report their first_seq."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-days",
            type=float,
            default=None,
            help="Age to keep (default: the RETENTION_DAYS setting; unset keeps everything).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        if days is None:
            days = setting("RETENTION_DAYS")
        if days is None:
            self.stdout.write("RETENTION_DAYS is not set: history is kept; nothing purged.")
            return
        if days < 0:
            raise CommandError("--older-than-days must not be negative")
        cutoff = timezone.now() - dt.timedelta(days=days)
        counts = do_purge_history(cutoff)
        self.stdout.write(
            f"Purged {counts['messages']} messages from {counts['rooms']} rooms "
            f"(older than {days:g} days)."
        )
