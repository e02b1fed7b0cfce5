"""The process's side of presence: its sockets, their heartbeat, and the periodic sweep.

One `Liveness` per event loop (per server process). Every PRESENCE_REFRESH_S it refreshes
the presence entries of its own sockets, closes sockets silent for IDLE_TIMEOUT_S (4408), and
sweeps the shared presence state, announcing who went offline. Wall-clock time (not the
loop's), because several processes share the state in Redis.

Sockets that open or close together share their presence writes: their admissions,
connects and disconnects each go to the store as one batch (one Redis pipeline), and the
users they bring online are announced in one database transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from linkup.actions.presence import do_announce_presences, record_away
from linkup.core.conf import setting
from linkup.core.errors import IDLE
from linkup.core.log import log_event
from linkup.core.looplocal import LoopLocal
from linkup.realtime.background import background
from linkup.realtime.coalesce import Batcher
from linkup.realtime.edges import perform
from linkup.realtime.presence_store import (
    CHAT,
    Admission,
    Departure,
    PresenceBook,
    RedisPresence,
    Transition,
)
from linkup.store import redis
from linkup.store.redis import REDIS_DOWN, Outage


def make_store() -> PresenceBook | RedisPresence:
    ttl, grace = float(setting("PRESENCE_TTL_S")), float(setting("PRESENCE_GRACE_S"))
    # Presence calls are short, so a few dozen connections serve thousands of sockets.
    client = redis.async_client(
        int(setting("PRESENCE_REDIS_CONNECTIONS")), float(setting("PRESENCE_REDIS_WAIT_S")), 5
    )
    if client is None:
        return PresenceBook(ttl_s=ttl, grace_s=grace)
    return RedisPresence(client, redis.prefix(), ttl_s=ttl, grace_s=grace)


class Liveness:
    """This process's sockets and the heartbeat task that keeps their presence fresh."""

    def __init__(self) -> None:
        self.sockets: dict[str, Any] = {}  # connection id -> consumer
        self.store = make_store()
        self.task: asyncio.Task[None] | None = None
        self.joining = 0  # sockets between `hello` and the end of their presence join
        self.admissions = Outage("connection counts")
        self.counted: dict[str, tuple[str, Any]] = {}  # conn id -> (kind, consumer), not chat
        self.admits: Batcher[Admission, bool] = Batcher(self._admit_many)
        self.connects: Batcher[tuple[int, str], list[Transition]] = Batcher(self._connect_many)
        self.departures: Batcher[Departure, None] = Batcher(self._disconnect_many)
        self.announcements: Batcher[list[Transition], None] = Batcher(self._announce_many)

    async def admit(self, consumer: Any, kind: str = CHAT) -> bool:
        """Whether the user may open one more socket of `kind`, counting their sockets on
        every process (with Redis, unless LIMITS_SHARED is off); a Redis that does not
        answer in time admits it (fail open: the process's own count still holds) and is
        left alone for a second. A chat socket then counts through presence; another kind
        is kept counted by this process's heartbeat until `uncount`."""
        if not setting("LIMITS_SHARED"):
            return True
        if kind != CHAT:
            self.counted[consumer.conn_id] = (kind, consumer)  # refreshed even if Redis is down
            self._run()
        admitted = await self.admits.submit((consumer.user.pk, consumer.conn_id, kind))
        if not admitted:
            self.counted.pop(consumer.conn_id, None)
        return admitted

    async def uncount(self, consumer: Any, kind: str) -> None:
        """A socket of `kind` (not chat) closed: it no longer counts."""
        self.counted.pop(consumer.conn_id, None)
        await self.store.forget(kind, consumer.user.pk, consumer.conn_id)

    def _run(self) -> None:
        if self.task is None or self.task.done():
            self.task = background(self.run())

    async def join(self, consumer: Any) -> None:
        self.sockets[consumer.conn_id] = consumer
        self.joining += 1  # the announcement below writes to the database after `hello`
        try:
            transitions = await self.connects.submit((consumer.user.pk, consumer.conn_id))
            if transitions:
                await self.announcements.submit(transitions)
        finally:
            self.joining -= 1
        self._run()

    async def leave(self, consumer: Any) -> None:
        self.sockets.pop(consumer.conn_id, None)
        await self.departures.submit((consumer.user.pk, consumer.conn_id, consumer.focus))
        if not getattr(consumer, "hidden", True):
            # A tab in sight went: the user's other tabs may all be hidden now (it cannot
            # have made them come back: only that is written).
            background(self.note_away(consumer.user.pk, only_away=True))

    async def _admit_many(self, asks: list[Admission]) -> list[bool]:
        """One batch of admissions. The timeout bounds the store's answer, not the time a
        socket waited for its batch (a connection storm keeps the loop busy: counting that
        wait made a healthy Redis look down)."""
        asked = self.admissions.ask()
        if asked is None:
            return [True] * len(asks)
        cap = int(setting("MAX_CONNECTIONS_PER_USER"))
        try:
            async with asyncio.timeout(float(setting("LIMITS_REDIS_TIMEOUT_S"))):
                answers = await self.store.admit_many(asks, cap, time.time())
        except REDIS_DOWN as exc:
            self.admissions.failed(exc)
            return [True] * len(asks)
        self.admissions.answered(asked)
        return answers

    async def _connect_many(self, conns: list[tuple[int, str]]) -> list[list[Transition]]:
        return await self.store.connect_many(conns, time.time())

    async def _disconnect_many(self, gone: list[Departure]) -> list[None]:
        await self.store.disconnect_many(gone, time.time())
        return [None] * len(gone)

    async def _announce_many(self, batches: list[list[Transition]]) -> list[None]:
        await self.announce([t for transitions in batches for t in transitions])
        return [None] * len(batches)

    async def set_hidden(self, consumer: Any, hidden: bool) -> None:
        """Record whether the socket's tab is hidden, and so whether its user is away."""
        await self.store.set_hidden(consumer.user.pk, consumer.conn_id, hidden)
        await self.note_away(consumer.user.pk)

    async def note_away(self, user: int, only_away: bool = False) -> None:
        """Write down in the database since when every tab of the user is hidden (or that
        one is in sight, unless `only_away`): the notification fallback (another process)
        reads it there."""
        now = time.time()
        try:
            away = await self.store.all_hidden(user, now)
            if away or (away is False and not only_away):
                await perform(record_away, user, away, now)
        except Exception as exc:  # the fallback waits for the user to go offline, as before
            log_event(logging.WARNING, "connection", "away not recorded", exc, user_id=user)

    async def set_focus(self, consumer: Any, room: int | None) -> None:
        """Record which room the socket shows (None: none, or the tab is hidden)."""
        if consumer.focus != room:
            await self.store.set_focus(consumer.user.pk, consumer.conn_id, consumer.focus, room)

    async def away(self, user: int) -> bool:
        """Whether every chat tab of the user (any process) is hidden."""
        return await self.store.all_hidden(user, time.time()) is True

    async def focused(self, rooms: list[int]) -> dict[int, set[int]]:
        """Who is looking at each room now (any process), to spare them its notifications."""
        return await self.store.focused(rooms, time.time())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(float(setting("PRESENCE_REFRESH_S")))
            try:
                await self.tick()
            except Exception as exc:  # Redis or the database down: try again next time
                log_event(logging.WARNING, "connection", "presence heartbeat failed", exc)

    async def tick(self, now: float | None = None) -> list[Transition]:
        """Refresh this process's sockets, close silent ones, sweep; return what changed."""
        now = time.time() if now is None else now
        idle_after = float(setting("IDLE_TIMEOUT_S"))
        for consumer in list(self.sockets.values()):
            if now - consumer.last_heard > idle_after:
                self.sockets.pop(consumer.conn_id, None)
                await consumer.close(code=IDLE)
        await self.store.refresh([(c.user.pk, c.conn_id) for c in self.sockets.values()], now)
        kinds: dict[str, list[tuple[int, str]]] = {}
        for kind, consumer in list(self.counted.values()):
            kinds.setdefault(kind, []).append((consumer.user.pk, consumer.conn_id))
        for kind, owned in kinds.items():
            await self.store.keep(kind, owned, now)
        transitions = await self.store.sweep(now)
        await self.announce(transitions)
        return transitions

    async def announce(self, transitions: list[Transition]) -> None:
        if transitions:
            await perform(do_announce_presences, transitions)

    async def online(self, user_ids: list[int]) -> set[int]:
        return await self.store.online(user_ids)


# The Liveness of the running event loop (one per server process): liveness().
liveness = LoopLocal(Liveness)
