"""Delete a person's account as staff: what `DELETE /api/v1/me` does for the person."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from linkup.actions.farewell import do_delete_account
from linkup.management.users import add_user_arguments, named_user


class Command(BaseCommand):
    help = (
        "Delete an account (by username or id): sockets and tokens end, messages stay in "
        "others' rooms from 'Deleted user', everything else of theirs is removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = named_user(options)
        name = user.get_username()
        if not options["yes"]:
            answer = input(f"Delete the account {name!r} (id {user.pk}) for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("nothing deleted")
        do_delete_account(user)
        self.stdout.write(f"Deleted the account {name!r}.")
