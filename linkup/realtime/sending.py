"""The send path of both edges, and group commit: every send of a process that is waiting
goes to the database in one transaction.

`send_message` is what the socket and REST both call: the user's send budget, then the
queue. Sends queue on the event loop. While one batch is on the database thread, new sends
wait; when it is done, the next batch takes all of them (up to SEND_BATCH_MAX). A lone send
runs at once, so there is no added latency at low load; under load, one thread hop, one
transaction and one commit serve many sends instead of one each. The rule each send obeys
is `linkup.actions.messages.do_send_batch`.

After a batch commits, its sends are answered first and then its doorbells ring (the
messages, watermarks and notifications it committed), in commit order, from a task of the
queue's own: no caller carries events, and the next batch need not wait for the ringing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from linkup.actions.events import Event
from linkup.actions.messages import Send, do_send_batch, index_due
from linkup.core.conf import setting
from linkup.core.errors import LinkupError, RateLimited, ServerError
from linkup.core.log import log_event
from linkup.core.looplocal import LoopLocal
from linkup.core.shapes import MessageDict
from linkup.realtime.background import background
from linkup.realtime.edges import collect
from linkup.realtime.hub import publish
from linkup.realtime.liveness import liveness
from linkup.realtime.ratelimit import limits, retry_after
from linkup.store import searchindex

SendResult = tuple[MessageDict, bool]  # (message, created)


class SendQueue:
    """The sends of one event loop waiting for the database thread."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Send, asyncio.Future[SendResult]]] = []
        self.running = False
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # the last batches, for tests and the curious
        # The newest batch's ringing; each waits for the one before (commit order).
        self.ringing: asyncio.Task[None] | None = None

    async def submit(self, send: Send) -> SendResult:
        """Commit one send (with whatever else is waiting); return (message, created)."""
        future: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self.waiting.append((send, future))
        if not self.running:
            self.running = True
            # Held here: the loop keeps only a weak reference to a task.
            self.task = background(self.drain())
        return await future

    async def drain(self) -> None:
        try:
            while self.waiting:
                limit = int(setting("SEND_BATCH_MAX"))
                batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
                self.batch_sizes = [*self.batch_sizes[-99:], len(batch)]
                focused = await _focused(sorted({send.room_id for send, _ in batch}))
                try:
                    outcomes, events = await collect(
                        do_send_batch, [send for send, _ in batch], focused, index_later=True
                    )
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
                for (_, future), (result, error, _events) in zip(batch, outcomes, strict=True):
                    if future.done():  # its socket went meanwhile: committed all the same
                        continue
                    if error is not None:
                        future.set_exception(error)
                    elif result is not None:
                        future.set_result(result)
                self._ring(events)  # after the acks, not before them
                if searchindex.due():
                    # Behind the doorbells, not inside the batch: the next batch waits for
                    # the index (SQLite's one writer), this one's recipients do not.
                    await self.rung()
                    await self._index()
        finally:
            self.running = False
            loop = asyncio.get_running_loop()
            if self.waiting and not loop.is_closed():  # arrived as this one stopped
                self.running = True
                self.task = background(self.drain())

    async def _index(self) -> None:
        try:
            await collect(index_due)
        except Exception as exc:  # a search indexes what is left first: nothing is lost
            log_event(logging.WARNING, "database", "search index not updated", exc)

    async def rung(self) -> None:
        """Wait until the doorbells of every batch committed so far have rung (or failed)."""
        if self.ringing is not None:
            # asyncio.wait neither raises the ringing's failure nor cancels it with us.
            await asyncio.wait([self.ringing])

    def _ring(self, events: list[Event]) -> None:
        """Publish a committed batch's events once the batches before it have rung.

        Each ringing waits for the one before, whatever became of it (failed, cancelled),
        and is bounded by RING_TIMEOUT_S: a channel layer that hangs delays later doorbells
        by that much at most, and never stops them. Doorbells lost so are recovered as any
        lost doorbell is: sockets fill the gap on the next message, or on `ping`."""
        if not events:
            return
        previous = self.ringing

        async def ring() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                async with asyncio.timeout(RING_TIMEOUT_S):
                    await publish(events)
            except Exception as exc:  # publish() logs a layer's refusals; this is the rest
                log_event(logging.WARNING, "delivery", "doorbells not rung", exc)

        self.ringing = background(ring())


FOCUS_WAIT_S = 0.25
RING_TIMEOUT_S = 5.0


async def _focused(room_ids: list[int]) -> dict[int, set[int]]:
    """Who is looking at these rooms; on a presence-store failure nobody (they get a
    notification they may not need, rather than miss one)."""
    try:
        # Bounded: a hung Redis must not hold up the process's sends.
        async with asyncio.timeout(FOCUS_WAIT_S):
            return await liveness().focused(room_ids)
    except Exception as exc:
        log_event(logging.WARNING, "connection", "focus look-up failed", exc)
        return {}


# The SendQueue of the running event loop (one per server process): send_queue().
send_queue = LoopLocal(SendQueue)


async def spend_send(sender: Any) -> None:
    """Spend a token of the sender's send budget (sends, edits, deletes and reactions);
    RateLimited with retry_after_s if none is left."""
    wait = await limits().send.hit(
        sender.pk, float(setting("SEND_RATE_PER_S")), int(setting("SEND_BURST"))
    )
    if wait:
        raise RateLimited(retry_after_s=retry_after(wait))


async def send_message(
    sender: Any,
    room_id: int,
    client_id: str,
    body: str,
    *,
    reply_to: int | None = None,
    attachments: tuple[str, ...] = (),
) -> SendResult:
    """Send as the socket and REST both do: spend a token of the sender's send budget, then
    commit through the group commit; return (message, created) once committed. Its
    doorbells ring right after."""
    await spend_send(sender)
    return await submit_send(
        sender, room_id, client_id, body, reply_to=reply_to, attachments=attachments
    )


async def submit_send(
    sender: Any,
    room_id: int,
    client_id: str,
    body: str,
    *,
    reply_to: int | None = None,
    attachments: tuple[str, ...] = (),
) -> SendResult:
    """Commit a send through the group commit (no budget spent); (message, created)."""
    send = Send(sender, room_id, client_id, body, reply_to, attachments)
    return await send_queue().submit(send)
