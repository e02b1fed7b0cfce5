"""What the management commands share: finding the account a command names."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser


def add_user_arguments(parser: CommandParser) -> None:
    parser.add_argument("user", help="The username, or the numeric id with --id.")
    parser.add_argument("--id", action="store_true", help="USER is a user id.")


def named_user(options: dict[str, Any]) -> Any:
    """The account the command's USER (and --id) name, or CommandError."""
    model = get_user_model()
    try:
        if options["id"]:
            return model.objects.get(pk=int(options["user"]))
        return model.objects.get(**{model.USERNAME_FIELD: options["user"]})
    except (model.DoesNotExist, ValueError):
        raise CommandError(f"no such user: {options['user']}") from None
