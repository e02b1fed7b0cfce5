"""Write a person's data to a zip, as staff: what `POST /api/v1/me/export` gives the person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from linkup.management.users import add_user_arguments, named_user
from linkup.tasks.exports import build_archive


class Command(BaseCommand):
    help = "Write an account's data (profile, rooms, messages, receipts, files) to a zip."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_arguments(parser)
        parser.add_argument("--out", required=True, type=Path, help="The zip to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = named_user(options)
        out: Path = options["out"]
        with out.open("wb") as target:
            build_archive(user, target)
        self.stdout.write(f"Wrote {out} ({out.stat().st_size} bytes).")
