"""Write a person's data to a zip, as staff: what `POST /api/v1/me/export` gives the person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from linkup.tasks.exports import build_archive


class Command(BaseCommand):
    help = "Write an account's data (profile, rooms, messages, receipts, files) to a zip."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The username, or the numeric id with --id.")
        parser.add_argument("--id", action="store_true", help="USER is a user id.")
        parser.add_argument("--out", required=True, type=Path, help="The zip to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            if options["id"]:
                user = model.objects.get(pk=int(options["user"]))
            else:
                user = model.objects.get(**{model.USERNAME_FIELD: options["user"]})
        except (model.DoesNotExist, ValueError):
            raise CommandError(f"no such user: {options['user']}") from None
        out: Path = options["out"]
        with out.open("wb") as target:
            build_archive(user, target)
        self.stdout.write(f"Wrote {out} ({out.stat().st_size} bytes).")
