"""The per-socket delivery cursor, as a pure decision: what a socket does with message `seq`
of a room, given the last seq it sent there.

A socket sends each room's messages once and in seq order. A doorbell for the next seq is
sent on; one already sent (a duplicate, or one the socket caught up on) is dropped; one
further ahead means doorbells were lost or arrived out of order, so the socket first fills
the gap from the database. The chat consumer applies this to every doorbell;
tests/test_delivery_cursor.py holds it to a model with Hypothesis.
"""

from __future__ import annotations

import enum


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
