"""Build the message search index again, in the SEARCH_LANGUAGE setting's language."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections, router, transaction

from linkup.core.conf import setting
from linkup.models import Message
from linkup.store import searchindex


class Command(BaseCommand):
    help = (
        "Drop and build the full-text index of message bodies again (after SEARCH_LANGUAGE "
        "changed). Sends wait for it: run it when the site is quiet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", default=None, help="The database alias (default: the messages')."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"] or router.db_for_write(Message)
        language = str(setting("SEARCH_LANGUAGE"))
        started = time.perf_counter()
        with transaction.atomic(using=alias):
            connection = connections[alias]
            searchindex.uninstall(connection)
            searchindex.install(connection, language)
        self.stdout.write(
            f"Built the search index ({language}) in {time.perf_counter() - started:.1f} s."
        )
