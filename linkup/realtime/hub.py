"""The delivery hub: one per event loop (per server process), between the channel layer and
the process's sockets (chat and notifications).

The hub, not each socket, is a member of the channel-layer groups: it joins a room's (a
user's, a user's notifications') group when the first local socket of that room (or user)
arrives and leaves it with the last, so a process holds one subscription per room, and a
doorbell reaches a process
once, whatever the number of its sockets in the room. Events are routed by the `group`
they name (Linkup's publish stamps it); a `message.new` is serialized and framed once
(`linkup.realtime.wire`) and offered to every local member socket, whose own cursor
decides (send, fill the gap first, or drop: `linkup.realtime.delivery`).

What this process commits is delivered to its own sockets at once, without the round trip
through the layer, and published to the layer once per group per batch, with the hub's
`origin` id so that its own echo is dropped. Other processes' hubs get it from the layer.

Other Django code rings a room or a user as before: `group_send` to `linkup.room.<id>` or
`linkup.user.<id>` with the event naming its `"group"` (or through
`linkup.actions.events.send_event_on_commit`, which does it). docs/architecture.md draws
the data path.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer

from linkup.actions.events import Event, notify_group, room_group, user_group
from linkup.core.conf import setting
from linkup.core.log import log_event
from linkup.core.looplocal import LoopLocal
from linkup.core.shapes import MessageDict
from linkup.realtime.delivery import RoomLine
from linkup.realtime.wire import Outgoing
from linkup.store import queries
from linkup.store.views import MessageState

BATCH = "linkup.batch"  # a group's events of one publication, in order, in one layer message
READ_RETRY_S = 0.5


def _fields(event: dict[str, Any], kind: str, *names: str) -> dict[str, Any]:
    return {"type": kind, **{name: event[name] for name in names}}


# The events whose frame is the same for every socket: (room the socket must be in, frame).
FRAMES: dict[str, Callable[[dict[str, Any]], tuple[int | None, dict[str, Any]]]] = {
    "chat.receipt": lambda e: (e["receipt"]["room"], e["receipt"]),
    "chat.watermark": lambda e: (
        e["room"],
        _fields(e, "watermark", "room", "delivered_seq", "read_seq"),
    ),
    "chat.typing": lambda e: (e["room"], _fields(e, "typing", "room", "user", "state")),
    "chat.presence": lambda e: (None, _fields(e, "presence", "user", "status", "last_seen")),
    # A message deleted for oneself: to the deleter's own sockets, with no change number.
    "chat.hidden": lambda e: (
        e["room"],
        {"type": "message.updated", "room": e["room"], "change": None, "message": e["message"]},
    ),
}

SEQ, CHANGE = "seq", "change"  # a room's two lines: its messages, and its changes to them
Stream = str
Key = tuple[int, Stream]


def message_frame(state: MessageState) -> Outgoing:
    """`message.new` for every member, with the frames of those who see it otherwise."""
    return _variants(state, lambda m: {"type": "message.new", "message": m})


def change_frame(room_id: int, change: int, state: MessageState) -> Outgoing:
    """`message.updated` for every member, with the frames of those who see it otherwise."""
    return _variants(
        state,
        lambda m: {"type": "message.updated", "room": room_id, "change": change, "message": m},
    )


def _variants(state: MessageState, frame: Callable[[MessageDict], dict[str, Any]]) -> Outgoing:
    out = Outgoing.of(frame(state.base))
    differ = state.differs_for()
    if differ:
        out.per_user = {user: Outgoing.of(frame(state.viewed_by(user))) for user in differ}
    return out


class Member(Protocol):
    """What the hub asks of a socket (the chat consumer)."""

    @property
    def hub_user(self) -> int: ...

    # The people this socket's user blocked or was blocked by: their typing is not relayed.
    hidden_users: AbstractSet[int]

    def offer_message(self, room_id: int, seq: int, out: Outgoing) -> None: ...

    def offer_change(self, room_id: int, change: int, out: Outgoing) -> None: ...

    def offer_frame(self, room_id: int | None, out: Outgoing) -> None: ...

    def offer_event(self, event: dict[str, Any]) -> None: ...


class Hub:
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.reader: asyncio.Task[None] | None = None
        self.members: dict[str, set[Member]] = {}  # group -> local sockets in it
        self.joined: set[str] = set()  # groups the hub's channel is in on the layer
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.start_lock = asyncio.Lock()
        self.joined_at = time.monotonic()
        self.pending_exits: set[asyncio.Task[None]] = set()
        # Per room with local members, two lines (its messages by seq, its changes by
        # change number): what was passed on, and what waits.
        self.lines: dict[Key, RoomLine[Outgoing]] = {}
        self.waits: dict[Key, asyncio.TimerHandle] = {}
        self.fills: dict[Key, asyncio.Task[None]] = {}
        self.checker: asyncio.Task[None] | None = None
        # The hub's tasks run in a context of their own, not in whichever caller's context
        # made them (a request's, say, whose thread-bound executor is gone once it ends).
        self.context = contextvars.Context()

    # -- membership ------------------------------------------------------------------------

    async def enter(self, member: Member, groups: list[str]) -> None:
        """Count `member` in `groups`; return once the hub hears each of them on the layer
        (so what commits after this returns rings a doorbell the member is offered)."""
        for group in groups:
            self.members.setdefault(group, set()).add(member)
        await self._follow(groups)

    def exit(self, member: Member, groups: list[str]) -> None:
        """`member` leaves `groups`; the hub leaves those that have no member left (in the
        background: nothing waits for it)."""
        emptied = []
        for group in groups:
            members = self.members.get(group)
            if members is None:
                continue
            members.discard(member)
            if not members:
                del self.members[group]
                emptied.append(group)
                room_id = room_of(group)
                if room_id is not None:
                    self._forget(room_id)
        if emptied and self.layer is not None:
            task = self._task(self._follow(emptied))
            self.pending_exits.add(task)
            task.add_done_callback(self._exited)

    def _task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(coro, context=self.context.copy())

    def known(self, room_id: int, last_seq: int, last_change: int) -> None:
        """A member read the room's last seq and change: where the hub has heard nothing of
        the room yet, its lines start there."""
        if room_group(room_id) not in self.members:
            return
        for key, last in (((room_id, SEQ), last_seq), ((room_id, CHANGE), last_change)):
            if key not in self.lines:
                self.lines[key] = RoomLine(last)

    def _forget(self, room_id: int) -> None:
        for key in ((room_id, SEQ), (room_id, CHANGE)):
            self.lines.pop(key, None)
            wait = self.waits.pop(key, None)
            if wait is not None:
                wait.cancel()
            fill = self.fills.pop(key, None)
            if fill is not None:
                fill.cancel()

    def _exited(self, task: asyncio.Task[None]) -> None:
        self.pending_exits.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(logging.WARNING, "delivery", "hub group leave failed", task.exception())

    async def _follow(self, groups: list[str]) -> None:
        """Make the hub's layer memberships of `groups` match whether it has members there."""
        if self.layer is None:
            return
        await self._start()
        await asyncio.gather(*(self._sync(group) for group in groups))

    async def _sync(self, group: str) -> None:
        assert self.layer is not None and self.channel is not None
        async with self.locks[group]:
            wanted = group in self.members
            if wanted and group not in self.joined:
                await self.layer.group_add(group, self.channel)
                self.joined.add(group)
            elif not wanted and group in self.joined:
                self.joined.discard(group)
                await self.layer.group_discard(group, self.channel)

    async def refresh(self) -> None:
        """Join every group again (group memberships expire on some layers, and a Redis
        that restarted forgot them): at most once per GROUP_REFRESH_S."""
        if self.layer is None or self.channel is None:
            return
        now = time.monotonic()
        if now - self.joined_at < float(setting("GROUP_REFRESH_S")):
            return
        self.joined_at = now
        for group in list(self.joined):
            async with self.locks[group]:
                if group in self.joined:
                    await self.layer.group_add(group, self.channel)

    # -- the layer -----------------------------------------------------------------------------

    async def _start(self) -> None:
        if self.reader is not None:
            return
        async with self.start_lock:
            if self.reader is not None:
                return
            assert self.layer is not None
            self.channel = await self.layer.new_channel("linkup.hub.")
            self.reader = self._task(self._read())
            self.checker = self._task(self._check())

    async def _read(self) -> None:
        assert self.layer is not None and self.channel is not None
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the layer is down: members catch up when it is back
                log_event(logging.WARNING, "delivery", "hub cannot read the layer", exc)
                await asyncio.sleep(READ_RETRY_S)
                continue
            if event.get("origin") == self.id:
                continue  # our own publication: delivered here already
            try:
                if event.get("type") == BATCH:
                    for item in event["events"]:
                        self.dispatch(event["group"], item)
                else:
                    self.dispatch(event.get("group"), event)
            except Exception as exc:  # a malformed event must not stop the reader
                log_event(
                    logging.WARNING,
                    "delivery",
                    "hub event not delivered",
                    exc,
                    event=event.get("type"),
                )

    async def publish(self, events: list[Event]) -> None:
        """Deliver committed events to this process's sockets now, then to the other
        processes: one layer message per group, carrying the frames encoded here."""
        remote: dict[str, list[dict[str, Any]]] = {}
        local_first = bool(setting("HUB_LOCAL_FIRST"))
        for group, payload in events:
            out = self.dispatch(group, payload, committed_here=True) if local_first else None
            if out is not None and payload.get("type") == "chat.message":
                message = payload["message"]
                payload = {
                    "type": "chat.message",
                    "room": message["room"],
                    "seq": message["seq"],
                    "frame": out.payload,
                }
            remote.setdefault(group, []).append(payload)
        if self.layer is None:
            return
        origin = self.id if local_first else None
        for group, items in remote.items():
            if local_first and self._alone_in(group):
                continue
            if len(items) > 1 and _routed(group):  # hubs listen there: one message for all
                messages = [{"type": BATCH, "group": group, "origin": origin, "events": items}]
            else:  # other apps' consumers may listen there: one event a message
                messages = [{**item, "group": group, "origin": origin} for item in items]
            try:
                for message in messages:
                    await self.layer.group_send(group, message)
            except Exception as exc:
                log_event(
                    logging.WARNING, "delivery", "channel layer send failed", exc, group=group
                )

    def _alone_in(self, group: str) -> bool:
        """Whether nobody but this hub can hear `group`: on the in-process layer (the
        embedded default), a group with no other member; then publishing there would only
        echo back to us. (With Redis, other processes may listen: always publish.)"""
        if not isinstance(self.layer, InMemoryChannelLayer):
            return False
        members = self.layer.groups.get(group)
        return not members or set(members) == {self.channel}

    # -- fan-out -------------------------------------------------------------------------------

    def dispatch(
        self, group: str | None, event: dict[str, Any], committed_here: bool = False
    ) -> Outgoing | None:
        """Offer one event to the local members of `group`; return the frame it became
        (encoded once for all of them), if it is one frame for all. `committed_here`: this
        process committed it (so whatever precedes it is committed too)."""
        members = self.members.get(group) if group is not None else None
        kind = event.get("type")
        if kind == "chat.message":
            if "frame" in event:
                out = Outgoing(event["frame"])
                room_id, seq = event["room"], event["seq"]
            else:
                message = event["message"]
                out = Outgoing.of({"type": "message.new", "message": message})
                room_id, seq = message["room"], message["seq"]
            if members:
                self._line_up((room_id, SEQ), seq, out, committed_here)
            return out
        if kind == "chat.change":
            if members:
                room_id, change = event["room"], event["change"]
                out = change_frame(room_id, change, MessageState.from_event(event))
                self._line_up((room_id, CHANGE), change, out, committed_here)
            return None
        if not members:
            return None
        build = FRAMES.get(str(kind))
        if build is not None:  # one frame for every member (the typist's own sockets aside)
            room_id, frame = build(event)
            out = Outgoing.of(frame)
            typist = event["user"] if kind == "chat.typing" else None
            for member in list(members):
                if member.hub_user != typist and typist not in member.hidden_users:
                    member.offer_frame(room_id, out)
            return None
        for member in list(members):  # per-socket events: room.updated, auth.revoked, ...
            member.offer_event(event)
        return None

    # -- each room's lines: in order, gaps filled once per room ----------------------------------

    def _line_up(self, key: Key, number: int, out: Outgoing, committed_here: bool) -> None:
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = RoomLine()
        self._pass(key, line.offer(number, out))
        if not line.held or key in self.fills:
            return
        if committed_here:
            # Committed here after the ones it waits for (numbers are taken under the room's
            # lock): they are in the database already, their doorbells still on the way
            # from another process. Read them now rather than wait.
            wait = self.waits.pop(key, None)
            if wait is not None:
                wait.cancel()
            self._fill_soon(key, None)
        elif key not in self.waits:
            # Arrived early: wait a moment for the missing ones, then read them.
            self._line_up_wait(key)

    def _pass(self, key: Key, ready: list[tuple[int, Outgoing]]) -> None:
        if not ready:
            return
        room_id, stream = key
        members = list(self.members.get(room_group(room_id), ()))
        for number, out in ready:
            for member in members:
                mine = out if out.per_user is None else out.for_user(member.hub_user)
                if stream == SEQ:
                    member.offer_message(room_id, number, mine)
                else:
                    member.offer_change(room_id, number, mine)

    def _fill_soon(self, key: Key, up_to: int | None) -> None:
        self.waits.pop(key, None)
        if key in self.fills or key not in self.lines:
            return
        task = self._task(self._fill(key, up_to))
        self.fills[key] = task
        task.add_done_callback(lambda _: self._filled(key, task))

    def _filled(self, key: Key, task: asyncio.Task[None]) -> None:
        if self.fills.get(key) is task:
            del self.fills[key]
        line = self.lines.get(key)
        if line is not None and line.held and key not in self.waits:
            self._line_up_wait(key)

    def _line_up_wait(self, key: Key) -> None:
        self.waits[key] = asyncio.get_running_loop().call_later(
            float(setting("HUB_REORDER_WAIT_S")), self._fill_soon, key, None
        )

    async def _fill(self, key: Key, up_to: int | None) -> None:
        """Read what the room's line lacks (up to `up_to`, or up to what it holds) from the
        database, once for every local socket of the room; what cannot be read is given up
        (the sockets fill it themselves) so that what is held can go."""
        line = self.lines.get(key)
        if line is None or line.last is None:
            return
        span = line.missing() if up_to is None else (line.last, up_to)
        if span is None:
            return
        after, end = span
        room_id, stream = key
        batch = int(setting("GAP_FILL_BATCH"))
        # Straight to the database thread, not through edges.read (which publishes through
        # this hub): a failure is logged here and the sockets fill the gap themselves.
        try:
            while after < end:
                found = await database_sync_to_async(_read_line)(
                    room_id, stream, after, min(batch, end - after)
                )
                if not found:
                    break
                for number, out in found:
                    self._pass(key, line.offer(number, out))
                after = found[-1][0]
        except Exception as exc:
            log_event(logging.WARNING, "delivery", "hub gap fill failed", exc, room=room_id)
        if line.held and min(line.held) <= end + 1:
            self._pass(key, line.release())

    async def _check(self) -> None:
        """Now and then, one query for every room with local sockets: a room whose last seq
        is past its line lost its doorbells (a layer outage, a Redis that restarted), and is
        filled at once, with no ping needed."""
        while True:
            await asyncio.sleep(float(setting("HUB_CHECK_S")))
            keys = [k for k in self.lines if k not in self.fills and k not in self.waits]
            if not keys:
                continue
            try:
                found = await database_sync_to_async(queries.last_seqs)(
                    sorted({room_id for room_id, _ in keys})
                )
            except Exception as exc:
                log_event(logging.WARNING, "delivery", "hub check failed", exc)
                continue
            for key in keys:
                room_id, stream = key
                if room_id not in found:
                    continue
                last = found[room_id][0 if stream == SEQ else 1]
                line = self.lines.get(key)
                if line is not None and line.last is not None and last > line.last:
                    self._fill_soon(key, last)

    async def close(self) -> None:
        for task in [self.checker, *self.fills.values()]:
            if task is not None:
                task.cancel()
        for wait in self.waits.values():
            wait.cancel()
        if self.reader is not None:
            self.reader.cancel()
        for task in list(self.pending_exits):
            task.cancel()


def _read_line(room_id: int, stream: Stream, after: int, limit: int) -> list[tuple[int, Outgoing]]:
    """A room's messages (or changes) after `after` from the database, as the frames the
    hub passes on: (number, frame)."""
    if stream == SEQ:
        return [
            (state.base["seq"], message_frame(state))
            for state in queries.messages_after(room_id, after, limit)
        ]
    changes, _ = queries.changes_after(room_id, after, limit)
    return [(change, change_frame(room_id, change, state)) for change, _, state in changes]


def _routed(group: str) -> bool:
    """Whether hubs (not consumers) are the members of `group`: Linkup's room, user and
    notification groups."""
    return group.startswith((room_group(0)[:-1], user_group(0)[:-1], notify_group(0)[:-1]))


def room_of(group: str) -> int | None:
    """The room id of a room group's name (None for other groups)."""
    prefix = room_group(0)[:-1]
    if group.startswith(prefix) and group[len(prefix) :].isdigit():
        return int(group[len(prefix) :])
    return None


# The hub of the running event loop (one per server process): hub().
hub = LoopLocal(Hub)


async def publish(events: list[Event]) -> None:
    """Ring the doorbells of committed events through this process's hub."""
    if events:
        await hub().publish(events)
