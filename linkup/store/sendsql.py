"""The hot paths' statements, written as SQL: the send batch's, and the reads every
socket's handshake makes.

Under load the database thread spent most of its time in the ORM building and compiling the
batch's queries and making model instances of their rows (40 % of the server's CPU in a
W1 profile), not in the database. These are the same statements, built once per shape and
run through Django's cursor (so its connection handling, its exception classes and its
transaction management all still apply), returning plain rows. Tables and columns come
from the models' metadata. Everything else stays on the ORM.

A handshake reads its token, its user's rooms, their cursors and the user's block lists.
Handshakes arriving together share those reads (linkup.realtime.coalesce), but below the
load that fills a batch each one pays them alone, and the ORM compiled each of them again:
about 0.4 ms a statement on these machines against 0.05 ms for the statement itself.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, router

from linkup.models import ApiToken, Block, MarkerMove, Membership, Message, Room, UserPresence

User = get_user_model()


@dataclass(slots=True)
class RoomRow:
    pk: int
    kind: str
    last_seq: int
    delivered_watermark: int
    read_watermark: int
    direct_key: str | None  # direct rooms: "<low user id>:<high user id>"


@dataclass(slots=True)
class MemberRow:
    pk: int
    room_id: int
    user_id: int
    delivered_seq: int
    read_seq: int


def _connection() -> Any:
    return connections[router.db_for_write(Message)]


def _run(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with _connection().cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def _table(model: Any) -> str:
    return str(_connection().ops.quote_name(model._meta.db_table))


def _columns(model: Any, *names: str) -> str:
    quote = _connection().ops.quote_name
    return ", ".join(quote(model._meta.get_field(name).column) for name in names)


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


@lru_cache(maxsize=1024)
def _lock_sql(vendor: str, n: int) -> str:
    cols = _columns(
        Room, "id", "kind", "last_seq", "delivered_watermark", "read_watermark", "direct_key"
    )
    pk = _columns(Room, "id")
    lock = " FOR UPDATE" if _connection().features.has_select_for_update else ""
    return f"SELECT {cols} FROM {_table(Room)} WHERE {pk} IN ({_marks(n)}) ORDER BY {pk}{lock}"


def lock_rooms(room_ids: list[int]) -> dict[int, RoomRow]:
    """The rooms, locked in ascending id order (the send batch holds them until it commits)."""
    if not room_ids:
        return {}  # PostgreSQL refuses `IN ()`
    vendor = _connection().vendor
    rows = _run(_lock_sql(vendor, len(room_ids)), sorted(room_ids))
    return {row[0]: RoomRow(*row) for row in rows}


@lru_cache(maxsize=1024)
def _members_sql(vendor: str, rooms: int, users: int) -> str:
    cols = _columns(Membership, "id", "room", "user", "delivered_seq", "read_seq")
    room, user = _columns(Membership, "room"), _columns(Membership, "user")
    return (
        f"SELECT {cols} FROM {_table(Membership)} "
        f"WHERE {room} IN ({_marks(rooms)}) AND {user} IN ({_marks(users)})"
    )


def memberships(room_ids: list[int], user_ids: list[int]) -> dict[tuple[int, int], MemberRow]:
    """{(room_id, user_id): membership} of these users in these rooms."""
    if not room_ids or not user_ids:
        return {}
    sql = _members_sql(_connection().vendor, len(room_ids), len(user_ids))
    rows = _run(sql, [*room_ids, *user_ids])
    return {(row[1], row[2]): MemberRow(*row) for row in rows}


@lru_cache(maxsize=1024)
def _earlier_sql(vendor: str, rooms: int, users: int, clients: int) -> str:
    room, sender, client = (_columns(Message, name) for name in ("room", "sender", "client_id"))
    return (
        f"SELECT {_columns(Message, 'id')} FROM {_table(Message)} "
        f"WHERE {room} IN ({_marks(rooms)}) "
        f"AND {sender} IN ({_marks(users)}) AND {client} IN ({_marks(clients)})"
    )


def earlier_ids(room_ids: list[int], sender_ids: list[int], client_ids: list[str]) -> list[int]:
    """Ids of messages these senders already stored in these rooms with these client_ids
    (a superset of the batch's repeats: the caller matches them exactly)."""
    if not room_ids or not sender_ids or not client_ids:
        return []
    sql = _earlier_sql(_connection().vendor, len(room_ids), len(sender_ids), len(client_ids))
    return [row[0] for row in _run(sql, [*room_ids, *sender_ids, *client_ids])]


def _returning(connection: Any) -> bool:
    """Whether a multi-row INSERT can return the rows' ids (PostgreSQL; SQLite from 3.35)."""
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 35)
    return bool(connection.features.can_return_rows_from_bulk_insert)


@lru_cache(maxsize=1024)
def _insert_sql(vendor: str, n: int, returning: bool) -> str:
    cols = _columns(
        Message,
        "room",
        "seq",
        "sender",
        "body",
        "client_id",
        "reply_to_seq",
        "attachment_count",
        "change",
        "created_at",
    )
    rows = ", ".join([f"({_marks(9)})"] * n)
    tail = f" RETURNING {_columns(Message, 'id', 'room', 'seq')}"
    return f"INSERT INTO {_table(Message)} ({cols}) VALUES {rows}" + (tail if returning else "")


def insert_messages(
    rows: list[tuple[int, int, int, str, str, int | None, int]], at: dt.datetime
) -> list[int]:
    """INSERT messages (room_id, seq, sender_id, body, client_id, reply_to_seq,
    attachment_count), all created `at` and never changed; return their ids in the same
    order."""
    if not rows:
        return []
    connection = _connection()
    when = connection.ops.adapt_datetimefield_value(at)
    if _returning(connection):
        params = [value for row in rows for value in (*row, 0, when)]
        found = _run(_insert_sql(connection.vendor, len(rows), True), params)
        by_seq = {(room_id, seq): pk for pk, room_id, seq in found}
        return [by_seq[(row[0], row[1])] for row in rows]
    ids: list[int] = []
    with connection.cursor() as cursor:
        for row in rows:
            cursor.execute(_insert_sql(connection.vendor, 1, False), [*row, 0, when])
            ids.append(cursor.lastrowid)
    return ids


@lru_cache(maxsize=1024)
def _moves_sql(vendor: str, n: int) -> str:
    cols = _columns(MarkerMove, "room", "user", "kind", "seq", "at")
    return f"INSERT INTO {_table(MarkerMove)} ({cols}) VALUES " + ", ".join([f"({_marks(5)})"] * n)


def insert_marker_moves(rows: list[tuple[int, int, str, int]], at: dt.datetime) -> None:
    """INSERT marker moves (room_id, user_id, kind, seq), all `at`."""
    if not rows:
        return
    connection = _connection()
    when = connection.ops.adapt_datetimefield_value(at)
    params = [value for row in rows for value in (*row, when)]
    _run(_moves_sql(connection.vendor, len(rows)), params)


@lru_cache(maxsize=1024)
def _lowest_sql(vendor: str, n: int) -> str:
    room = _columns(Membership, "room")
    delivered, read = _columns(Membership, "delivered_seq"), _columns(Membership, "read_seq")
    return (
        f"SELECT {room}, MIN({delivered}), MIN({read}) FROM {_table(Membership)} "
        f"WHERE {room} IN ({_marks(n)}) GROUP BY {room}"
    )


def lowest_markers(room_ids: list[int]) -> list[tuple[int, int, int]]:
    """(room_id, lowest delivered_seq, lowest read_seq) of each room's members."""
    if not room_ids:
        return []
    return [
        (int(r), int(d), int(rd))
        for r, d, rd in _run(_lowest_sql(_connection().vendor, len(room_ids)), room_ids)
    ]


def update_each(model: Any, values: dict[int, dict[str, Any]]) -> None:
    """UPDATE rows of `model` by primary key, each to its own values, in one statement:
    `UPDATE t SET c = v.column2 ... FROM (VALUES (pk, ...), ...) AS v WHERE t.pk = v.column1`
    (PostgreSQL, and SQLite from 3.33). The ORM's Case/When equivalent cost a tenth of
    the server's time under load, building expressions."""
    if not values:
        return
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    names = list(next(iter(values.values())))
    columns = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    table, key_column = quote(meta.db_table), quote(meta.pk.column)
    if len(values) == 1 or not _updates_from_values(connection):
        sets = ", ".join(f"{quote(column.column)} = %s" for column in columns)
        with connection.cursor() as cursor:
            for key, fields in values.items():
                row_values = [
                    column.get_db_prep_value(fields[name], connection)
                    for name, column in zip(names, columns, strict=True)
                ]
                cursor.execute(
                    f"UPDATE {table} SET {sets} WHERE {key_column} = %s", [*row_values, key]
                )
        return
    row = "(" + ", ".join(["%s"] * (len(names) + 1)) + ")"
    params: list[Any] = []
    for key, fields in values.items():
        params.append(key)
        params += [
            column.get_db_prep_value(fields[name], connection)
            for name, column in zip(names, columns, strict=True)
        ]
    assignments = ", ".join(
        f"{quote(column.column)} = v.column{i + 2}" for i, column in enumerate(columns)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} "
            f"FROM (VALUES {', '.join([row] * len(values))}) AS v "
            f"WHERE {table}.{key_column} = v.column1",
            params,
        )


def _updates_from_values(connection: Any) -> bool:
    """Whether the database takes UPDATE ... FROM: PostgreSQL, SQLite from 3.33 (Django 5.2
    supports SQLite from 3.31)."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 33)
    return False


# -- the handshake's reads ----------------------------------------------------------------


@lru_cache(maxsize=1024)
def _rooms_of_sql(vendor: str, n: int, cursors: bool) -> str:
    user, room = _columns(Membership, "user"), _columns(Membership, "room")
    members = _table(Membership)
    if not cursors:
        return f"SELECT {user}, {room} FROM {members} WHERE {user} IN ({_marks(n)})"
    rooms, pk = _table(Room), _columns(Room, "id")
    seq, change = _columns(Room, "last_seq"), _columns(Room, "last_change")
    return (
        f"SELECT m.{user}, m.{room}, r.{seq}, r.{change} FROM {members} m "
        f"JOIN {rooms} r ON r.{pk} = m.{room} WHERE m.{user} IN ({_marks(n)})"
    )


def memberships_of(user_ids: list[int], cursors: bool) -> list[tuple[int, ...]]:
    """(user, room) of every room each user is in, or with `cursors` (user, room, the
    room's last_seq, its last_change)."""
    if not user_ids:
        return []
    return _run(_rooms_of_sql(_connection().vendor, len(user_ids), cursors), list(user_ids))


@lru_cache(maxsize=1024)
def _blocks_sql(vendor: str, n: int) -> str:
    blocker, blocked = _columns(Block, "blocker"), _columns(Block, "blocked")
    return (
        f"SELECT {blocker}, {blocked} FROM {_table(Block)} "
        f"WHERE {blocker} IN ({_marks(n)}) OR {blocked} IN ({_marks(n)})"
    )


def block_pairs_of(user_ids: list[int]) -> list[tuple[int, int]]:
    """(blocker, blocked) of every block by or of these users."""
    if not user_ids:
        return []
    ids = list(user_ids)
    return [(row[0], row[1]) for row in _run(_blocks_sql(_connection().vendor, len(ids)), ids * 2)]


@lru_cache(maxsize=1024)
def _tokens_sql(vendor: str, n: int) -> str:
    # The user model's concrete fields in their order, then the token's TOKEN_FIELDS.
    users = _table(User)
    tokens, user_pk = _table(ApiToken), _columns(User, User._meta.pk.name)
    quote = _connection().ops.quote_name
    fields = ", ".join(f"u.{quote(field.column)}" for field in User._meta.concrete_fields)
    token = ", ".join(f"t.{_columns(ApiToken, name)}" for name in TOKEN_FIELDS)
    return (
        f"SELECT {fields}, {token} FROM {tokens} t "
        f"JOIN {users} u ON u.{user_pk} = t.{_columns(ApiToken, 'user')} "
        f"WHERE t.{_columns(ApiToken, 'digest')} IN ({_marks(n)})"
    )


@dataclass(slots=True)
class TokenRow:
    user: Any  # the user model's instance
    token_id: int
    digest: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


TOKEN_FIELDS = ("id", "digest", "created_at", "last_used_at")


@lru_cache(maxsize=16)
def _converters(connection: Any, model: Any, names: tuple[str, ...]) -> list[tuple[Any, list[Any]]]:
    """(column, its converters) of the model's fields, as the ORM's compiler converts them
    on `connection` (one per thread)."""
    found = []
    for name in names:
        column = model._meta.get_field(name).get_col(model._meta.db_table)
        ours = connection.ops.get_db_converters(column)
        found.append((column, ours + column.get_db_converters(connection)))
    return found


def _convert(connection: Any, converters: list[tuple[Any, list[Any]]], row: Any) -> list[Any]:
    values = []
    for (column, functions), value in zip(converters, row, strict=True):
        for function in functions:
            value = function(value, column, connection)
        values.append(value)
    return values


def tokens_with_users(digests: list[str]) -> list[TokenRow]:
    """The API tokens with these digests, each with its user (one statement; the user is a
    full instance of the user model, every value converted as the ORM would)."""
    if not digests:
        return []
    connection = _connection()
    names = tuple(field.attname for field in User._meta.concrete_fields)
    of_user = _converters(connection, User, names)
    of_token = _converters(connection, ApiToken, TOKEN_FIELDS)
    found = []
    for row in _run(_tokens_sql(connection.vendor, len(digests)), list(digests)):
        user = User.from_db(
            connection.alias, names, _convert(connection, of_user, row[: len(names)])
        )
        token = _convert(connection, of_token, row[len(names) :])
        found.append(TokenRow(user, *token))
    return found


# -- a user's first socket: the presence announcement -------------------------------------


@lru_cache(maxsize=1024)
def _contacts_sql(vendor: str, n: int) -> str:
    user, room = _columns(Membership, "user"), _columns(Membership, "room")
    members, rooms = _table(Membership), _table(Room)
    pk, kind = _columns(Room, "id"), _columns(Room, "kind")
    return (
        f"SELECT m.{room}, m.{user} FROM {members} m WHERE m.{room} IN ("
        f"SELECT mine.{room} FROM {members} mine JOIN {rooms} r ON r.{pk} = mine.{room} "
        f"WHERE mine.{user} IN ({_marks(n)}) AND (r.{kind} = %s OR "
        f"(SELECT COUNT(*) FROM {members} c WHERE c.{room} = r.{pk}) <= %s))"
    )


def small_room_members(user_ids: list[int], direct: str, cap: int) -> list[tuple[int, int]]:
    """(room, member) of every room of these users that is of kind `direct` or has at most
    `cap` members."""
    if not user_ids:
        return []
    sql = _contacts_sql(_connection().vendor, len(user_ids))
    return [(row[0], row[1]) for row in _run(sql, [*user_ids, direct, cap])]


@lru_cache(maxsize=1024)
def _hiding_sql(vendor: str, n: int) -> str:
    user, hide = _columns(UserPresence, "user"), _columns(UserPresence, "hide_last_seen")
    return f"SELECT {user} FROM {_table(UserPresence)} WHERE {user} IN ({_marks(n)}) AND {hide}"


def hiding_last_seen(user_ids: list[int]) -> set[int]:
    """Those of these users who hide their last seen."""
    if not user_ids:
        return set()
    return {row[0] for row in _run(_hiding_sql(_connection().vendor, len(user_ids)), user_ids)}
