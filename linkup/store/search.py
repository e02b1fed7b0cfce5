"""Message search: the messages of the caller's rooms whose current text matches a query.

The database's full-text index does the matching (linkup/store/searchindex.py) and one
statement per page finds the hits: rooms the caller is a member of (or the one room asked
for), not deleted for everyone and not deleted by the caller for themselves, through the
filters given, newest first (by id: messages are inserted in commit order) or by rank. Only
the page's own rows are then read as message objects, and each gets a snippet with its
matched words marked, made by the database (`ts_headline`, FTS5's `snippet`), so stemming
("run" finds "running") is highlighted as it matched.

The `next` cursor is opaque to clients: the last hit's id (newest first) or the count of
hits already given (by rank).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from django.db import connections, router

from linkup.core import searchquery
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, NotFound, ServerError
from linkup.models import DeletedForMe, Membership, Message
from linkup.store import searchindex, views

Order = Literal["newest", "relevance"]

_HEADLINE = (
    f"StartSel={searchquery.MARK_START}, StopSel={searchquery.MARK_END}, "
    'MaxWords=24, MinWords=10, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)
_SNIPPET_TOKENS = 24


@dataclass(frozen=True, slots=True)
class Filters:
    room: int | None = None
    sender: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def check_query(q: Any) -> str:
    """The query text, trimmed, or InvalidInput saying what is wrong with it."""
    if not isinstance(q, str) or not q.strip():
        raise InvalidInput("q is required: the words to search for")
    q = q.strip()
    most = int(setting("MESSAGE_SEARCH_QUERY_MAX_CHARS"))
    if len(q) > most:
        raise InvalidInput(f"q is longer than {most} characters")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in q) or any(
        0xD800 <= ord(c) < 0xE000 for c in q
    ):
        raise InvalidInput("q contains a control character")
    return q


def _cursor(order: Order, value: int) -> str:
    raw = f"{'n' if order == 'newest' else 'r'}{value}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(order: Order, cursor: str) -> int:
    bad = InvalidInput("before is not a cursor from this search's `next`")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    kind, digits = raw[:1], raw[1:]
    if kind != ("n" if order == "newest" else "r") or not digits.isdigit() or len(digits) > 19:
        raise bad
    if _cursor(order, int(digits)) != cursor:  # only the exact text this search gave
        raise bad
    return int(digits)


def _limit(limit: int | None) -> int:
    if limit is None:
        return int(setting("MESSAGE_SEARCH_DEFAULT_LIMIT"))
    return max(1, min(int(limit), int(setting("MESSAGE_SEARCH_MAX_LIMIT"))))


def _where(
    viewer: int, filters: Filters, alias: str, rooms: bool = True
) -> tuple[list[str], list[Any]]:
    """Conditions on the message row `alias` that every backend shares, and their values
    (`rooms`: including the caller's rooms, or the one asked for)."""
    hidden = DeletedForMe._meta.db_table
    members = Membership._meta.db_table
    clauses: list[str] = []
    values: list[Any] = []
    if rooms and filters.room is not None:
        clauses, values = [f"{alias}.room_id = %s"], [filters.room]
    elif rooms:
        clauses = [f"{alias}.room_id IN (SELECT room_id FROM {members} WHERE user_id = %s)"]
        values = [viewer]
    clauses += [
        f"{alias}.deleted_at IS NULL",
        f"NOT EXISTS (SELECT 1 FROM {hidden} h WHERE h.user_id = %s "
        f"AND h.room_id = {alias}.room_id AND h.seq = {alias}.seq)",
    ]
    values.append(viewer)
    if filters.sender is not None:
        clauses.append(f"{alias}.sender_id = %s")
        values.append(filters.sender)
    if filters.since is not None:
        clauses.append(f"{alias}.created_at >= %s")
        values.append(filters.since)
    if filters.until is not None:
        clauses.append(f"{alias}.created_at < %s")
        values.append(filters.until)
    return clauses, values


def _postgresql(
    connection: Any, text: str, viewer: int, filters: Filters, order: Order, start: int, n: int
) -> list[tuple[int, str]]:
    """The index holds each message's room as a lexeme beside its words, so one GIN scan
    finds the messages that match *in the caller's rooms*: it reads the words' entries and
    the rooms', never a row of another room. (Filtered after the scan, a phrase of two common
    words would read every message in the table holding both, 3,000 of 1,000,000 in the
    bench, to check word order; and what such a scan costs would tell an outsider how often a
    word is said in rooms they are not in.)"""
    table = Message._meta.db_table
    config = searchindex.pg_config(str(setting("SEARCH_LANGUAGE")))
    if filters.room is not None:
        room_ids = [filters.room]
    else:
        room_ids = list(Membership.objects.filter(user_id=viewer).values_list("room_id", flat=True))
    if not room_ids:
        return []
    clauses, values = _where(viewer, filters, "m", rooms=False)
    if order == "newest" and start:
        clauses.append("m.id < %s")
        values.append(start)
    by_rank = order == "relevance"
    column = f"m.{searchindex.COLUMN}"
    rank = f"ts_rank_cd({column}, q.words)" if by_rank else "0"
    # `numnode`: a query of stop words alone ("the") is empty, and empty AND the rooms would
    # be every message of the rooms. `id + 0`: never walk the primary key backwards filtering
    # as it goes (the planner's choice for a word common in the table, and a scan of all of
    # it when the word is common only in others' rooms); the index's hits are all in the
    # caller's rooms already.
    inner_order = "rank DESC, m.id DESC" if by_rank else "m.id + 0 DESC"
    order_by = "rank DESC, id DESC" if by_rank else "id DESC"
    offset = f" OFFSET {int(start)}" if by_rank else ""
    # The headline is made for the page's rows only, outside the query that finds them.
    sql = (
        f"SELECT hit.id, ts_headline('{config}'::regconfig, hit.body, hit.words, %s) FROM "
        f"(SELECT m.id, m.body, q.words, {rank} AS rank FROM {table} m, "
        f"(SELECT websearch_to_tsquery('{config}'::regconfig, %s) AS words) q "
        f"WHERE numnode(q.words) > 0 AND {column} @@ (q.words && %s::tsquery) "
        f"AND {' AND '.join(clauses)} "
        f"ORDER BY {inner_order} LIMIT {int(n)}{offset}) hit ORDER BY {order_by}"
    )
    rooms = searchindex.rooms_query(room_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, [_HEADLINE, text, rooms, *values])
        return list(cursor.fetchall())


def _sqlite(
    connection: Any, text: str, viewer: int, filters: Filters, order: Order, start: int, n: int
) -> list[tuple[int, str]]:
    table, fts = Message._meta.db_table, searchindex.FTS_TABLE
    clauses, values = _where(viewer, filters, "m")
    if order == "newest" and start:
        clauses.append(f"{fts}.rowid < %s")
        values.append(start)
    rank = f"bm25({fts}), " if order == "relevance" else ""
    offset = f" OFFSET {int(start)}" if order == "relevance" else ""
    mark_start, mark_end = (
        f"char({ord(c)})" for c in (searchquery.MARK_START, searchquery.MARK_END)
    )
    # CROSS JOIN keeps the index outermost: it yields hits newest first and the statement
    # stops at the page's end, rather than reading every message of the caller's rooms.
    sql = (
        f"SELECT m.id, snippet({fts}, 0, {mark_start}, {mark_end}, '…', {_SNIPPET_TOKENS}) "
        f"FROM {fts} CROSS JOIN {table} m ON m.id = {fts}.rowid "
        f"WHERE {fts} MATCH %s AND {' AND '.join(clauses)} "
        f"ORDER BY {rank}{fts}.rowid DESC LIMIT {int(n)}{offset}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [text, *values])
        return list(cursor.fetchall())


def search(
    user: Any,
    q: str,
    *,
    filters: Filters = Filters(),
    before: str | None = None,
    limit: int | None = None,
    order: Order = "newest",
) -> dict[str, Any]:
    """A page of hits: `{"results": [{"room", "seq", "message", "snippet", "highlights"}],
    "next"}`, `next` null at the end."""
    q = check_query(q)
    if (
        filters.room is not None
        and not Membership.objects.filter(user=user, room_id=filters.room).exists()
    ):
        raise NotFound("room not found")
    start = _uncursor(order, before) if before else 0
    n = _limit(limit)
    parsed = searchquery.parse(q)
    connection = connections[router.db_for_read(Message)]
    if not parsed:
        return {"results": [], "next": None}
    # SQLite indexes new messages in batches: what waits is indexed first.
    searchindex.flush(connections[router.db_for_write(Message)])
    if connection.vendor == "postgresql":
        rows = _postgresql(
            connection, searchquery.websearch_query(parsed), user.pk, filters, order, start, n + 1
        )
    elif connection.vendor == "sqlite":
        rows = _sqlite(
            connection, searchquery.fts5_query(parsed), user.pk, filters, order, start, n + 1
        )
    else:
        raise ServerError(f"message search is not available on {connection.vendor}")
    more = len(rows) > n
    rows = rows[:n]
    found = Message.objects.filter(pk__in=[pk for pk, _ in rows]).select_related("sender")
    by_id = {m.pk: m for m in found}
    messages = [by_id[pk] for pk, _ in rows if pk in by_id]
    objects = dict(zip((m.pk for m in messages), views.views(messages, user.pk), strict=True))
    results = []
    for pk, marked in rows:
        if pk not in objects:  # deleted between the two reads
            continue
        snippet, spans = searchquery.split_marked(marked or "")
        message = objects[pk]
        results.append(
            {
                "room": message["room"],
                "seq": message["seq"],
                "message": message,
                "snippet": snippet,
                "highlights": [list(span) for span in spans],
            }
        )
    following = None
    if more:
        following = _cursor(order, rows[-1][0] if order == "newest" else start + n)
    return {"results": results, "next": following}
