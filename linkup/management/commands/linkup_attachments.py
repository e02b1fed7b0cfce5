"""Report (and with --delete remove) attachment files that no upload names, and uploads whose
file is missing; with --expire, delete uploads nobody sent in time (what a failed task left)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from linkup.actions.uploads import expire_unsent, orphans


class Command(BaseCommand):
    help = "Find stored attachment files with no upload row (and rows with no file)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orphans", action="store_true", help="Report orphans (the default action)."
        )
        parser.add_argument("--delete", action="store_true", help="Delete the orphan files.")
        parser.add_argument(
            "--expire",
            action="store_true",
            help="Also delete uploads no message carries past UPLOAD_UNSENT_TTL_S.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["expire"]:
            self.stdout.write(f"Expired {expire_unsent()} unsent uploads.")
        found = orphans(delete=options["delete"])
        lost, missing = found["files_without_rows"], found["rows_without_files"]
        verb = "Deleted" if options["delete"] else "Found"
        self.stdout.write(f"{verb} {len(lost)} stored files that no upload names.")
        for name in lost:
            self.stdout.write(f"  {name}")
        self.stdout.write(f"{len(missing)} uploads whose file is missing from the storage.")
        for name in missing:
            self.stdout.write(f"  {name}")
