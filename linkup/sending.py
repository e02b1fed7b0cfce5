"""Group commit for sends: every send of a process that is waiting goes in one transaction.

Sends queue on the event loop. While one batch is on the database thread, new sends wait;
when it is done, the next batch takes all of them (up to SEND_BATCH_MAX). A lone send runs
at once, so there is no added latency at low load; under load, one thread hop, one
transaction and one commit serve many sends instead of one each.

Each send in a batch is `actions.do_send_message` inside the batch's transaction, so in a
savepoint of its own: one refused send (not a member, say) rolls back alone, and its events
are dropped with it. Rooms are locked in ascending id order (the batch is sorted by room, a
stable sort, so sends to one room keep their order), so two processes' batches cannot
deadlock. The batch commits once; only then is any send acknowledged.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from linkup import actions
from linkup.conf import setting
from linkup.edges import perform, record_failure
from linkup.errors import LinkupError, ServerError
from linkup.events import Event, collecting_events
from linkup.looplocal import LoopLocal
from linkup.serialization import SerializationError


@dataclass(frozen=True)
class Send:
    sender: Any
    room_id: int
    client_id: str
    body: str


Outcome = tuple[tuple[dict[str, Any], bool] | None, LinkupError | None, list[Event]]


def do_send_batch(sends: list[Send]) -> list[Outcome]:
    """Commit every send that can be committed, in one transaction; one outcome per send.

    An outcome is ((message, created), None, events) or (None, error, []). Events are the
    ones each send queued; they fill in when the batch commits."""
    outcomes: list[Outcome] = [(None, ServerError(), []) for _ in sends]
    with transaction.atomic():
        for i in sorted(range(len(sends)), key=lambda i: sends[i].room_id):
            send = sends[i]
            try:
                with collecting_events() as events:
                    result = actions.do_send_message(
                        send.sender, send.room_id, send.client_id, send.body
                    )
                outcomes[i] = (result, None, events)
            except LinkupError as exc:
                outcomes[i] = (None, exc, [])
            except (IntegrityError, SerializationError) as exc:
                # Its savepoint rolled back; the others stand. Recorded for the operator.
                args = (send.sender, send.room_id, send.client_id, send.body)
                record_failure(actions.do_send_message, args, {}, exc)
                outcomes[i] = (None, ServerError(), [])
    return outcomes


class SendQueue:
    """The sends of one event loop waiting for the database thread."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Send, asyncio.Future[tuple[Any, list[Event]]]]] = []
        self.running = False
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # the last batches, for tests and the curious

    async def submit(self, send: Send) -> tuple[tuple[dict[str, Any], bool], list[Event]]:
        """Commit one send (with whatever else is waiting); return its result and events."""
        future: asyncio.Future[tuple[Any, list[Event]]] = asyncio.get_running_loop().create_future()
        self.waiting.append((send, future))
        if not self.running:
            self.running = True
            # Held here: the loop keeps only a weak reference to a task.
            self.task = asyncio.get_running_loop().create_task(self.drain())
        return await future

    async def drain(self) -> None:
        try:
            while self.waiting:
                limit = int(setting("SEND_BATCH_MAX"))
                batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
                self.batch_sizes = [*self.batch_sizes[-99:], len(batch)]
                try:
                    outcomes, _ = await perform(do_send_batch, [send for send, _ in batch])
                except LinkupError as exc:  # the whole batch: storage down, or a bug
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(copy.copy(exc))
                    continue
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(ServerError())
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), (result, error, events) in zip(batch, outcomes, strict=True):
                    if future.done():  # its socket went meanwhile: committed all the same
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result((result, events))
        finally:
            self.running = False
            loop = asyncio.get_running_loop()
            if self.waiting and not loop.is_closed():  # arrived as this one stopped
                self.running = True
                self.task = loop.create_task(self.drain())


# The SendQueue of the running event loop (one per server process): send_queue().
send_queue = LoopLocal(SendQueue)


async def submit_send(
    sender: Any, room_id: int, client_id: str, body: str
) -> tuple[tuple[dict[str, Any], bool], list[Event]]:
    """Commit a send through the group commit; ((message, created), events) or a LinkupError."""
    return await send_queue().submit(Send(sender, room_id, client_id, body))
