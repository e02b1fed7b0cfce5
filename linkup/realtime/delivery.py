"""Delivery order, as pure decisions: the per-socket cursor (what a socket does with
message `seq` of a room, given the last seq it sent there) and the hub's per-room line.

A socket sends each room's messages once and in seq order. A doorbell for the next seq is
sent on; one already sent (a duplicate, or one the socket caught up on) is dropped; one
further ahead means doorbells were lost or arrived out of order, so the socket first fills
the gap from the database. The chat consumer applies this to every doorbell;
tests/test_delivery_cursor.py holds it to a model with Hypothesis.
"""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

T = TypeVar("T")


class Step(enum.Enum):
    DROP = "drop"  # not subscribed to the room, or already sent
    SEND = "send"  # the next one: send it
    FILL = "fill"  # ahead: fill the gap from the database first, then decide again


def delivery_step(last_sent: int | None, seq: int) -> Step:
    """The step for message `seq` of a room whose last sent seq is `last_sent` (None: the
    socket is not in the room)."""
    if last_sent is None or seq <= last_sent:
        return Step.DROP
    if seq == last_sent + 1:
        return Step.SEND
    return Step.FILL


class RoomLine(Generic[T]):
    """A hub's view of one room's messages: the last seq it passed on to its sockets, and
    those that arrived early, held until the ones before them come (or are read).

    Doorbells from other processes can be lost or overtaken (and this process's own commits
    can overtake another's doorbell). The hub passes messages on in seq order: one that
    arrives early is held; if the missing ones have not come within the reorder wait, the
    hub reads them from the database once for the room (`missing`), not once per socket.
    A line that has heard nothing yet takes the first seq it hears as the next one (its
    sockets check their own cursors, and fill what they lack themselves)."""

    def __init__(self, last: int | None = None) -> None:
        self.last = last
        self.held: dict[int, T] = {}

    def offer(self, seq: int, item: T) -> list[tuple[int, T]]:
        """Take message `seq`; return the messages now ready to pass on, in seq order."""
        if self.last is None:
            self.last = seq - 1
        if seq <= self.last or seq in self.held:
            return []  # passed on already, or already waiting: a repeat
        self.held[seq] = item
        ready = []
        while self.last + 1 in self.held:
            self.last += 1
            ready.append((self.last, self.held.pop(self.last)))
        return ready

    def missing(self) -> tuple[int, int] | None:
        """(after, up_to): the seqs to read from the database so that everything held can go
        (None when nothing waits)."""
        if not self.held or self.last is None:
            return None
        return self.last, max(self.held) - 1

    def release(self) -> list[tuple[int, T]]:
        """Stop waiting (what is missing could not be read): pass on everything held, in
        order; sockets fill what they lack themselves."""
        ready = sorted(self.held.items())
        self.held.clear()
        if ready:
            self.last = ready[-1][0]
        return ready
