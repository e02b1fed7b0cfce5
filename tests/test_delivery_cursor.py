"""The per-socket delivery cursor (linkup/realtime/delivery.py) against a model: whatever
doorbells arrive (lost, repeated, out of order), a socket that follows `delivery_step`, fills
gaps from storage and catches up on `ping` sends every committed message after its cursor
exactly once, in seq order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkup.realtime.delivery import Step, delivery_step

# What it tests does not depend on the database or the channel layer.
pytestmark = pytest.mark.embedded_only


def test_the_three_steps() -> None:
    assert delivery_step(None, 1) is Step.DROP  # not in the room
    assert delivery_step(4, 3) is Step.DROP and delivery_step(4, 4) is Step.DROP
    assert delivery_step(4, 5) is Step.SEND
    assert delivery_step(4, 6) is Step.FILL and delivery_step(0, 9) is Step.FILL


class Socket:
    """A socket as the consumer runs it, storage being seqs 1..committed."""

    def __init__(self, cursor: int, committed: int) -> None:
        self.last = cursor
        self.committed = committed
        self.sent: list[int] = []

    def send(self, seq: int) -> None:
        self.sent.append(seq)
        self.last = seq

    def fill_gap(self, up_to: int) -> None:
        for seq in range(self.last + 1, min(up_to, self.committed) + 1):
            self.send(seq)

    def doorbell(self, seq: int) -> None:
        step = delivery_step(self.last, seq)
        if step is Step.DROP:
            return
        if step is Step.FILL:
            self.fill_gap(seq - 1)
            if delivery_step(self.last, seq) is Step.DROP:
                return
        self.send(seq)


@given(
    committed=st.integers(0, 40),
    cursor=st.integers(0, 40),
    rings=st.lists(st.integers(1, 40), max_size=80),
)
def test_any_doorbells_deliver_every_message_once_in_order(
    committed: int, cursor: int, rings: list[int]
) -> None:
    cursor = min(cursor, committed)  # `hello` sets the cursor to a committed seq
    socket = Socket(cursor, committed)
    for seq in rings:
        if seq <= committed:  # a doorbell rings only after its commit
            socket.doorbell(seq)
            # Never out of order, never twice, never a gap, whatever has arrived so far.
            assert socket.sent == list(range(cursor + 1, socket.last + 1))
    socket.fill_gap(committed)  # `ping`: catch up to the room's last_seq
    assert socket.sent == list(range(cursor + 1, committed + 1))
