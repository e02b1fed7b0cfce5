"""SQLite's checkpoints, off the send path (the embedded default).

In WAL mode SQLite appends every commit to the write-ahead log, and the commit that takes
the log past `wal_autocheckpoint` pages (1,000) copies the log back into the database file
first, with the only fsync `synchronous=NORMAL` makes. That commit is a send batch, and
everyone waiting for it waits for the copy. As the tables grow, each batch dirties more
pages (a message's row lands in a leaf of each index, far apart once the indexes are large),
so checkpoints come more often and take longer: W6 (W1's load for ten minutes) saw the p99
climb over the first minutes. Measured apart (batches of ten inserts into a table with a
random-keyed index like W1's, 2 ms apart, 8,000 commits): a commit's p99 over the last
1,000 was 15.2 ms with SQLite's checkpoints, 0.9 ms with this module's.

So a thread of the server makes the checkpoints, on a connection of its own, every
`CHECKPOINT_INTERVAL_S`: PASSIVE, which copies the log into the database beside the writer
and never waits for it (the copy and its fsync run outside the GIL). PASSIVE alone cannot
start the log over: SQLite does that only when a write begins with all of the log copied,
which a writer that commits during every copy never sees (the log grew without end, 300 MB
in a minute of such writes). So the server's connections still checkpoint themselves, but
only once the log holds `LATE_AUTOCHECKPOINT` pages (set as each opens): by then the thread
has copied nearly all of it, the commit copies the rest and the log starts over. Measured
the same way: p99 0.75 ms, the log's file steady at 39 MB. Other processes on the same
file (`manage.py`, the task worker) keep SQLite's default.
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
# The server's connections checkpoint (and so start the log over) at this many pages of
# log, ten times SQLite's default: the thread has copied nearly all of it by then.
LATE_AUTOCHECKPOINT = 10_000
LATE_CHECKPOINTS = "linkup-late-autocheckpoint"  # the signal receiver's dispatch_uid


def _late_autocheckpoint(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={LATE_AUTOCHECKPOINT}")


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One PASSIVE checkpoint: (busy, frames in the log, frames checkpointed), as SQLite
    answers. The statement is run to its end and closed: one left open would hold a read
    of the database, pinning the log."""
    cursor = connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    try:
        ((busy, log, done),) = cursor.fetchall()
    finally:
        cursor.close()
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
        connection_created.disconnect(dispatch_uid=LATE_CHECKPOINTS)
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
    `alias` leave checkpoints to a thread, started here, but for the late one that starts
    the log over. None where it is not SQLite."""
    connection: Any = connections[alias]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    connection_created.connect(_late_autocheckpoint, dispatch_uid=LATE_CHECKPOINTS)
    if connection.connection is not None:  # this thread's, opened before (`demo` migrates)
        _late_autocheckpoint(None, connection)
    return Checkpointer(str(connection.settings_dict["NAME"])).start()
