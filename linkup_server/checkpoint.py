"""SQLite's checkpoints, off the send path (the embedded default).

In WAL mode SQLite appends every commit to the write-ahead log, and the commit that takes
the log past `wal_autocheckpoint` pages (1,000) copies the log back into the database file
first, with the only fsync `synchronous=NORMAL` makes. That commit is a send batch, and
everyone waiting for it waits for the copy. As the tables grow, each batch dirties more
pages (a message's row lands in a leaf of each index, far apart once the indexes are large),
so checkpoints come more often and take longer: W6 (W1's load for ten minutes) saw the p99
climb over the first minutes. Measured apart (batches of ten inserts into a table with
W1's indexes, 6,000 commits): a commit's p99 0.8 ms in the first thousand and 12.6 ms in
the last with SQLite's checkpoints, 0.7 and 1.0 ms with the checkpoints made elsewhere.

So the server's own connections do not checkpoint (`wal_autocheckpoint=0`, set as each
opens), and one thread of the server does, on a connection of its own, every
`CHECKPOINT_INTERVAL_S`: PASSIVE, so it never waits for the writer or a reader, and the
copy and the fsync run outside the GIL. Other processes on the same file (`manage.py`,
the task worker) keep SQLite's default, so the log is checkpointed even when no server
runs. When every reader and writer has moved past a complete checkpoint, SQLite starts
the log over from its beginning: the file stays the size of a few seconds' writes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from linkup.core.log import log_event

CHECKPOINT_INTERVAL_S = 0.5
NO_AUTOCHECKPOINT = "linkup-no-autocheckpoint"  # the signal receiver's dispatch_uid


def _no_autocheckpoint(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One PASSIVE checkpoint: (busy, frames in the log, frames checkpointed), as SQLite
    answers."""
    busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(log), int(done)


class Checkpointer:
    """The thread that checkpoints one SQLite database every `interval` seconds, on a
    connection of its own (which holds no transaction between rounds)."""

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval = interval
        self.stopped = threading.Event()
        self.last: tuple[int, int, int] | None = None  # the last round's answer
        self.thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread; connections opened from now on checkpoint as SQLite does."""
        connection_created.disconnect(dispatch_uid=NO_AUTOCHECKPOINT)
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.last = checkpoint(connection)
                except sqlite3.Error as exc:  # the next round tries again
                    log_event(logging.WARNING, "database", "checkpoint failed", exc)
        finally:
            connection.close()


def start_checkpointer(alias: str = "default") -> Checkpointer | None:
    """In the server's process, before it serves: its connections to the SQLite database
    `alias` leave checkpoints to a thread, started here. None where it is not SQLite."""
    connection: Any = connections[alias]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    connection_created.connect(_no_autocheckpoint, dispatch_uid=NO_AUTOCHECKPOINT)
    if connection.connection is not None:  # this thread's, opened before (`demo` migrates)
        _no_autocheckpoint(None, connection)
    return Checkpointer(str(connection.settings_dict["NAME"])).start()
