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

So the server's own connections do not checkpoint (`wal_autocheckpoint=0`, set as each
opens), and one thread of the server does, on a connection of its own, every
`CHECKPOINT_INTERVAL_S`: first PASSIVE, which copies the log beside the writer and never
waits for it (the copy and its fsync run outside the GIL); then, when the log is longer
than SQLite's own trigger, RESTART, which holds the writer back (at most `RESTART_WAIT_S`)
while it copies the little that came meanwhile and starts the log over. PASSIVE alone is
not enough: SQLite starts the log over only when a write begins with all of it copied,
which a writer that commits during every copy never sees, and the log grew without end
(300 MB in a minute of such writes). Other processes on the same file (`manage.py`, the
task worker) keep SQLite's default, so the log is checkpointed even when no server runs.
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
RESTART_FRAMES = 1000  # SQLite's own trigger (wal_autocheckpoint), in pages
RESTART_WAIT_S = 0.05
NO_AUTOCHECKPOINT = "linkup-no-autocheckpoint"  # the signal receiver's dispatch_uid


def _no_autocheckpoint(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(connection: sqlite3.Connection, mode: str = "PASSIVE") -> tuple[int, int, int]:
    """One checkpoint: (busy, frames in the log, frames checkpointed), as SQLite answers.
    The statement is run to its end and closed: one left open would hold a read of the
    database, and SQLite could never start the log over."""
    assert mode in ("PASSIVE", "RESTART")
    cursor = connection.execute(f"PRAGMA wal_checkpoint({mode})")
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
        connection_created.disconnect(dispatch_uid=NO_AUTOCHECKPOINT)
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        # RESTART waits this long at most for the writer's transaction and the readers.
        connection = sqlite3.connect(
            self.path, timeout=RESTART_WAIT_S, isolation_level=None, check_same_thread=False
        )
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.round(connection)
                except sqlite3.Error as exc:  # the next round tries again
                    log_event(logging.WARNING, "database", "checkpoint failed", exc)
        finally:
            connection.close()

    def round(self, connection: sqlite3.Connection) -> None:
        """Copy the log into the database beside the writer (PASSIVE); then, if the log is
        long, start it over (RESTART). SQLite starts the log over only when a write begins
        with all of it copied, which a writer that commits during every copy never sees:
        RESTART holds the writer back while it copies what came meanwhile (little, just
        after a PASSIVE) and resets the log, so it stays the size of a round's writes."""
        self.last = checkpoint(connection)
        if self.last[1] >= RESTART_FRAMES:
            self.last = checkpoint(connection, "RESTART")


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
