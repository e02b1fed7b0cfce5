"""Delete a person's account as staff: what `DELETE /api/v1/me` does for the person."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from linkup.actions.farewell import do_delete_account


class Command(BaseCommand):
    help = (
        "Delete an account (by username or id): sockets and tokens end, messages stay in "
        "others' rooms from 'Deleted user', everything else of theirs is removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The username, or the numeric id with --id.")
        parser.add_argument("--id", action="store_true", help="USER is a user id.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            if options["id"]:
                user = model.objects.get(pk=int(options["user"]))
            else:
                user = model.objects.get(**{model.USERNAME_FIELD: options["user"]})
        except (model.DoesNotExist, ValueError):
            raise CommandError(f"no such user: {options['user']}") from None
        name = user.get_username()
        if not options["yes"]:
            answer = input(f"Delete the account {name!r} (id {user.pk}) for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("nothing deleted")
        do_delete_account(user)
        self.stdout.write(f"Deleted the account {name!r}.")
