"""The full-text index of message bodies, kept by the database itself.

- PostgreSQL: a stored generated column, `search_vector = to_tsvector(<language>, body)`
  plus the message's room as a lexeme of its own, and a GIN index on it. Every insert and
  every edit or delete (which rewrite `body`) keeps it in step; nothing in Python touches
  it and the models do not know it.
- SQLite: an FTS5 table over `body` with the messages table as its content (it stores the
  index, not a second copy of the text). New messages cost a send nothing: `flush` indexes
  every message above a mark (`linkup_message_fts_mark`, the highest id indexed) in one
  transaction, before every search (so a search sees every committed message) and from the
  send path every FLUSH_EVERY messages (the socket's send queue does it after the batch's
  doorbells, so a batch is never delivered later for the index). Ids only grow
  (AUTOINCREMENT) and SQLite has one writer at a time, so nothing commits below the mark
  after it moved. Edits and deletes of indexed messages, which are rare, go through
  triggers: the old text leaves the index at once and an edited message's id waits in
  `linkup_message_fts_queue` for the next flush. Indexed a send at a time, each
  one-message transaction wrote an FTS5 segment of its own (about 200 us a message in W1,
  15 % of the server's CPU); a trigger queueing every new message still cost a row written
  and deleted a send.

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
QUEUE = "linkup_message_fts_queue"  # indexed messages edited since, waiting to be indexed again
MARK = "linkup_message_fts_mark"  # one row: the highest message id indexed
# The send path indexes the queue once this many messages have gone into it in this process.
FLUSH_EVERY = 200
_TRIGGERS = ("linkup_message_fts_delete", "linkup_message_fts_update")
_OLD_TRIGGERS = ("linkup_message_fts_insert",)  # installed by earlier migrations


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
            cursor.execute(
                f"CREATE TABLE {MARK} (one integer PRIMARY KEY CHECK (one = 1), "
                f"indexed_to integer NOT NULL)"
            )
            delete, update = _TRIGGERS
            # Only a message at or below the mark is in the index; a queued one's old text
            # has left it already. One above the mark is indexed as it is at the next flush.
            indexed = (
                f"old.id <= (SELECT indexed_to FROM {MARK}) "
                f"AND NOT EXISTS (SELECT 1 FROM {QUEUE} WHERE id = old.id)"
            )
            unindex = (
                f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) SELECT 'delete', old.id, "
                f"old.body WHERE {indexed};"
            )
            requeue = (
                f"INSERT OR IGNORE INTO {QUEUE}(id) SELECT new.id "
                f"WHERE new.id <= (SELECT indexed_to FROM {MARK});"
            )
            dequeue = f"DELETE FROM {QUEUE} WHERE id = old.id;"
            cursor.execute(
                f"CREATE TRIGGER {delete} AFTER DELETE ON {table} BEGIN {unindex} {dequeue} END"
            )
            cursor.execute(
                f"CREATE TRIGGER {update} AFTER UPDATE OF body ON {table} "
                f"BEGIN {unindex} {requeue} END"
            )
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
            cursor.execute(
                f"INSERT INTO {MARK}(one, indexed_to) SELECT 1, coalesce(max(id), 0) FROM {table}"
            )
        # Other databases: no index, and search answers that it is not available.


def uninstall(connection: Any) -> None:
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
            cursor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {COLUMN}")
        elif connection.vendor == "sqlite":
            for trigger in _TRIGGERS + _OLD_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            for name in (FTS_TABLE, QUEUE, MARK):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")


# The edited messages queued, indexed again. CROSS JOIN keeps SQLite's join order, the queue
# (nearly always empty) first: as a plain JOIN ordered by m.id, the planner scanned every
# message to avoid a sort, a flush growing with the table (62 ms at 300,000 messages).
REQUEUED = (
    "INSERT INTO {fts}(rowid, body) SELECT m.id, m.body FROM {queue} q "
    "CROSS JOIN {table} m ON m.id = q.id ORDER BY q.id"
)

_unindexed = 0  # messages sent through this process since it last flushed


def flush(connection: Any) -> int:
    """SQLite: index, in one transaction (one FTS5 segment for all of them rather than one a
    send), the messages above the mark and the edited ones queued; return how many.
    Elsewhere nothing waits: 0."""
    global _unindexed
    if connection.vendor != "sqlite":
        return 0
    table = Message._meta.db_table
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SELECT indexed_to, (SELECT max(id) FROM {table}) FROM {MARK}")
        mark, top = cursor.fetchone()
        done = 0
        if top is not None and top > mark:
            cursor.execute(
                f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT id, body FROM {table} "
                f"WHERE id > %s AND id <= %s ORDER BY id",
                [mark, top],
            )
            done += cursor.rowcount
            cursor.execute(f"UPDATE {MARK} SET indexed_to = %s", [top])
        cursor.execute(REQUEUED.format(fts=FTS_TABLE, table=table, queue=QUEUE))
        if cursor.rowcount > 0:
            done += cursor.rowcount
            cursor.execute(f"DELETE FROM {QUEUE}")
    _unindexed = 0
    return max(done, 0)


def sent(connection: Any, count: int, *, at_once: bool = True) -> None:
    """`count` messages were committed: index them once enough are waiting (with `at_once`;
    otherwise the caller runs `flush_due` when it suits it)."""
    global _unindexed
    if connection.vendor != "sqlite" or not count:
        return
    _unindexed += count
    if at_once:
        flush_due(connection)


def due() -> bool:
    """Whether enough messages wait for `flush_due` to index them."""
    return _unindexed >= FLUSH_EVERY


def flush_due(connection: Any) -> int:
    """Index what waits if enough does (FLUSH_EVERY); return how many were indexed."""
    if connection.vendor != "sqlite" or not due():
        return 0
    return flush(connection)
