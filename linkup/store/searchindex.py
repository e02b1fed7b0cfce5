"""The full-text index of message bodies, kept by the database itself.

- PostgreSQL: a stored generated column, `search_vector = to_tsvector(<language>, body)`
  plus the message's room as a lexeme of its own, and a GIN index on it. Every insert and
  every edit or delete (which rewrite `body`) keeps it in step; nothing in Python touches
  it and the models do not know it.
- SQLite: an FTS5 table over `body` with the messages table as its content (it stores the
  index, not a second copy of the text), kept in step by three triggers through a queue:
  a new or edited message's id goes into `linkup_message_fts_queue`, and `flush` indexes
  the whole queue in one transaction, before every search (so a search sees every
  committed message) and from the send path every FLUSH_EVERY messages. Indexed a send at
  a time, each one-message transaction wrote an FTS5 segment of its own: about 200 us a
  message in W1, 15 % of the server's CPU.

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
from django.db import transaction

from linkup.models import Message

COLUMN = "search_vector"
PG_INDEX = "linkup_message_search"
FTS_TABLE = "linkup_message_fts"
QUEUE = "linkup_message_fts_queue"  # new or changed messages, waiting to be indexed
# The send path indexes the queue once this many messages have gone into it in this process.
FLUSH_EVERY = 200
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
            cursor.execute(f"CREATE TABLE {QUEUE} (id integer PRIMARY KEY)")
            insert, delete, update = _TRIGGERS
            # A message's text is indexed once it is out of the queue (`flush`); one that
            # goes or changes before then only leaves the queue (or stays in it).
            queue = f"INSERT OR IGNORE INTO {QUEUE}(id) VALUES (new.id);"
            unindex = (
                f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) SELECT 'delete', old.id, "
                f"old.body WHERE NOT EXISTS (SELECT 1 FROM {QUEUE} WHERE id = old.id);"
            )
            dequeue = f"DELETE FROM {QUEUE} WHERE id = old.id;"
            cursor.execute(f"CREATE TRIGGER {insert} AFTER INSERT ON {table} BEGIN {queue} END")
            cursor.execute(
                f"CREATE TRIGGER {delete} AFTER DELETE ON {table} BEGIN {unindex} {dequeue} END"
            )
            cursor.execute(
                f"CREATE TRIGGER {update} AFTER UPDATE OF body ON {table} "
                f"BEGIN {unindex} {queue} END"
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
            cursor.execute(f"DROP TABLE IF EXISTS {QUEUE}")


_queued = 0  # messages sent through this process since it last indexed the queue


def flush(connection: Any) -> int:
    """SQLite: index the queued messages in one transaction (one FTS5 segment for all of
    them, rather than one a send); return how many. Elsewhere nothing waits: 0."""
    global _queued
    if connection.vendor != "sqlite":
        return 0
    table = Message._meta.db_table
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT m.id, m.body FROM {table} m "
            f"JOIN {QUEUE} q ON q.id = m.id ORDER BY m.id"
        )
        done = cursor.rowcount
        cursor.execute(f"DELETE FROM {QUEUE}")
    _queued = 0
    return max(done, 0)


def sent(connection: Any, count: int) -> None:
    """`count` messages were committed: index the queue once it has grown long."""
    global _queued
    if connection.vendor != "sqlite" or not count:
        return
    _queued += count
    if _queued >= FLUSH_EVERY:
        flush(connection)
