"""The migrated schema, read back from the database (SQLite here, PostgreSQL in the scale-out
pass): no index of Linkup's repeats the leading columns of another."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import connection

# Index kinds that answer look-ups by their leading columns (SQLite names every one "idx").
ORDERED = {"idx", "btree"}


def _indexes(table: str) -> dict[str, dict[str, Any]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        name: info
        for name, info in found.items()
        # A unique constraint or a primary key has an index of its own on both databases.
        if (info["index"] or info["unique"] or info["primary_key"])
        and info.get("type") in (*ORDERED, None)
        and all(info["columns"])
        # PostgreSQL: Django's pattern_ops twin of a text column's index, for LIKE.
        and not name.endswith("_like")
    }


def test_no_index_repeats_the_leading_columns_of_another(db: Any) -> None:
    """Each index is one more page written with every row (a send writes eleven): one whose
    columns begin another index (a foreign key's own index, say, under a unique pair that
    starts with it) answers nothing the other does not."""
    redundant = []
    tables = sorted({m._meta.db_table for m in apps.get_app_config("linkup").get_models()})
    assert "linkup_message" in tables
    for table in tables:
        indexes = _indexes(table)
        for name, info in indexes.items():
            if info["unique"] or info["primary_key"]:
                continue  # a constraint, not only a look-up
            columns = info["columns"]
            for other, other_info in indexes.items():
                if other != name and other_info["columns"][: len(columns)] == columns:
                    redundant.append(f"{table}: {name} {columns} begins {other}")
                    break
    assert redundant == []


def test_the_send_path_s_look_ups_keep_their_indexes(db: Any) -> None:
    """What the redundant indexes were dropped for still has an index that begins with it:
    a room's messages and changes, a user's memberships, and the messages a deleted
    account leaves behind."""
    wanted = {
        "linkup_message": [
            ["room_id", "seq"],
            ["room_id", "sender_id", "client_id"],
            ["sender_id"],
        ],
        "linkup_messagechange": [["room_id", "change"]],
        "linkup_membership": [["room_id", "user_id"], ["user_id", "room_id"]],
        "linkup_markermove": [["room_id", "seq"], ["user_id"]],
    }
    for table, lists in wanted.items():
        have = [info["columns"] for info in _indexes(table).values()]
        for columns in lists:
            assert columns in have, (table, columns, have)


def test_sqlite_checkpoints_every_few_hundred_pages(db: Any) -> None:
    """The commit that passes the limit copies the log back while its batch waits: SQLite's
    1,000 pages made W6's p99 climb as the tables grew (docs/bench/README.md)."""
    import pytest
    from django.conf import settings

    if connection.vendor != "sqlite":
        pytest.skip("a SQLite setting")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        (pages,) = cursor.fetchone()
        cursor.execute("PRAGMA journal_mode")
        (mode,) = cursor.fetchone()
    assert mode == "wal"
    assert pages == settings.SQLITE_CHECKPOINT_PAGES == 400
