"""SQLite's checkpoints made by a thread of the server, off the send path
(linkup_server/checkpoint.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from hypothesis import given, settings
from hypothesis import strategies as st

from linkup_server.checkpoint import Checkpointer, checkpoint, start_checkpointer

ROW = "x" * 2000  # about half a page: every few rows a page more in the log


def _writer(path: Path) -> sqlite3.Connection:
    """A connection as the server's are: WAL, synchronous=NORMAL, no checkpoints of its own."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    return connection


def _write(connection: sqlite3.Connection, rows: int) -> None:
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("INSERT INTO t (body) VALUES (?)", [(ROW,)] * rows)
    connection.execute("COMMIT")


def _until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


def test_the_thread_checkpoints_what_the_writer_left_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    writer = _writer(path)
    for _ in range(30):
        _write(writer, 100)  # 3,000 rows: well past SQLite's own 1,000-page trigger
    wal = Path(f"{path}-wal")
    grown = wal.stat().st_size
    assert grown > 1000 * 4096  # nothing checkpointed it: the writer does not
    checkpointer = Checkpointer(str(path), interval=0.01).start()
    try:
        _until(lambda: checkpointer.last is not None and checkpointer.last[1] > 0)
        busy, log, done = checkpointer.last  # type: ignore[misc]
        assert (busy, done) == (0, log)  # all of the log copied into the database
        # With the log checkpointed, the next commit starts it over from the beginning.
        _write(writer, 1)
        _until(lambda: checkpointer.last is not None and checkpointer.last[1] < 10)
    finally:
        checkpointer.stop()
    writer.close()
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (3001,)
    reader.close()


@settings(max_examples=100, deadline=None)
@given(plan=st.lists(st.one_of(st.integers(1, 40), st.just("checkpoint")), max_size=25))
def test_no_committed_row_is_lost_whatever_the_checkpoints_interleave(
    plan: list[int | str], tmp_path_factory: Any
) -> None:
    """Writes and checkpoints in any order (the checkpointer's connection beside the
    writer's): every committed row is read back, and a last checkpoint copies the whole log."""
    path = tmp_path_factory.mktemp("plan") / "db.sqlite3"
    writer = _writer(path)
    other = sqlite3.connect(path, isolation_level=None)
    written = 0
    for step in plan:
        if step == "checkpoint":
            busy, log, done = checkpoint(other)
            assert busy == 0 and done == log  # nothing held the log: all of it copied
        else:
            _write(writer, int(step))
            written += int(step)
    busy, log, done = checkpoint(other)
    assert (busy, done) == (0, log)
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM t").fetchone() == (written,)
    writer.close()
    other.close()


@pytest.mark.django_db
def test_the_servers_connections_are_opened_without_checkpoints() -> None:
    """start_checkpointer: every connection the process opens from then on leaves the
    checkpoints to the thread; stopping it gives them back to SQLite."""

    def autocheckpoint() -> int:
        found: list[int] = []

        def other_thread() -> None:  # a new thread: a new connection
            try:
                with connections["default"].cursor() as cursor:
                    cursor.execute("PRAGMA wal_autocheckpoint")
                    found.append(cursor.fetchone()[0])
            finally:
                connections["default"].close()

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        return found[0]

    if connections["default"].vendor != "sqlite":
        assert start_checkpointer() is None  # PostgreSQL checkpoints by itself
        return
    assert autocheckpoint() == 1000  # SQLite's default
    checkpointer = start_checkpointer()
    assert checkpointer is not None
    try:
        assert autocheckpoint() == 0
        _until(lambda: checkpointer.last is not None)
    finally:
        checkpointer.stop()
        with connections["default"].cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=1000")  # this thread's, set by start
    assert autocheckpoint() == 1000
