"""The full-text index of message bodies, kept by the database itself.

- PostgreSQL: a stored generated column, `search_vector = to_tsvector(<language>, body)`
  plus the message's room as a lexeme of its own, and a GIN index on it. Every insert and
  every edit or delete (which rewrite `body`) keeps it in step; nothing in Python touches
  it and the models do not know it.
- SQLite: an FTS5 table over `body` with the messages table as its content (it stores the
  index, not a second copy of the text), kept in step by three triggers.

Migration 0010 installs it with the `SEARCH_LANGUAGE` setting of that moment;
`manage.py linkup_search_index` installs it again after the setting changed. A later
migration that makes SQLite rebuild the messages table (as some field changes do) drops the
triggers with it: such a migration must install the index again (the search tests fail
loudly otherwise).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from linkup.models import Message

COLUMN = "search_vector"
PG_INDEX = "linkup_message_search"
FTS_TABLE = "linkup_message_fts"
_TRIGGERS = ("linkup_message_fts_insert", "linkup_message_fts_delete", "linkup_message_fts_update")


# PostgreSQL: the message's room, as one more lexeme of its vector (a space and the id: no
# word of a body can be one, the parser splits words at spaces). A search asks for its words
# AND any of the caller's rooms, and the GIN index answers both at once.
PENDING_KB = 256
ROOM_LEXEME = "array_to_tsvector(ARRAY[' ' || room_id::text])"


def rooms_query(room_ids: list[int]) -> str:
    """A tsquery (text) matching messages of any of these rooms."""
    return " | ".join(f"' {int(room)}'" for room in room_ids)


def pg_config(language: str) -> str:
    """The text-search configuration named by `language`, checked to be a plain name (it is
    written into DDL, which takes no parameters)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", language):
        raise ImproperlyConfigured(f"SEARCH_LANGUAGE {language!r} is not a configuration name")
    return language


def sqlite_tokenizer(language: str) -> str:
    """FTS5 ships one stemmer, Porter's, for English; other languages are matched by whole
    words, accents ignored."""
    words = "unicode61 remove_diacritics 2"
    return f"porter {words}" if language == "english" else words


def install(connection: Any, language: str) -> None:
    """Create the index for `language` and fill it from the messages already stored."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            config = pg_config(language)
            cursor.execute("SELECT 1 FROM pg_ts_config WHERE cfgname = %s", [config])
            if cursor.fetchone() is None:
                raise ImproperlyConfigured(
                    f"SEARCH_LANGUAGE {language!r}: PostgreSQL has no such configuration"
                )
            cursor.execute(
                f"ALTER TABLE {table} ADD COLUMN {COLUMN} tsvector GENERATED ALWAYS AS "
                f"(to_tsvector('{config}'::regconfig, body) || {ROOM_LEXEME}) STORED"
            )
            # New entries wait in a pending list until it holds PENDING_KB (or a vacuum
            # comes), and every search reads that list through: PostgreSQL's 4 MB made a
            # search for a word found nowhere take 39 ms in the bench, against 4 ms here.
            cursor.execute(
                f"CREATE INDEX {PG_INDEX} ON {table} USING GIN ({COLUMN}) "
                f"WITH (fastupdate = on, gin_pending_list_limit = {PENDING_KB})"
            )
        elif connection.vendor == "sqlite":
            tokenizer = sqlite_tokenizer(language)
            cursor.execute(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(body, content='{table}', "
                f"content_rowid='id', tokenize='{tokenizer}')"
            )
            insert, delete, update = _TRIGGERS
            add = f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (new.id, new.body);"
            remove = (
                f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) "
                "VALUES ('delete', old.id, old.body);"
            )
            cursor.execute(f"CREATE TRIGGER {insert} AFTER INSERT ON {table} BEGIN {add} END")
            cursor.execute(f"CREATE TRIGGER {delete} AFTER DELETE ON {table} BEGIN {remove} END")
            cursor.execute(
                f"CREATE TRIGGER {update} AFTER UPDATE OF body ON {table} BEGIN {remove} {add} END"
            )
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
        # Other databases: no index, and search answers that it is not available.


def uninstall(connection: Any) -> None:
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
            cursor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {COLUMN}")
        elif connection.vendor == "sqlite":
            for trigger in _TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
