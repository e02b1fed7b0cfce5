"""The chat socket: one per client tab, carrying all of the user's rooms.

Live delivery is gap-free and ordered per socket: the consumer remembers the last seq it sent
in each room, and each message the process's hub (linkup.realtime.hub) offers it takes the
step `delivery_step` says: the next seq is sent on; one further ahead first fills the gap
from the database; one already sent is dropped. `ping` re-reads every room's last_seq, so
a message whose doorbells were all lost arrives before the `pong`.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone

from linkup.actions import blocks, changes, notifications, receipts
from linkup.actions.events import notify_group, room_group, user_group
from linkup.core.conf import setting
from linkup.core.errors import (
    ABUSE,
    ABUSIVE,
    SETUP_FAILED,
    SLOW_CONSUMER,
    TOO_MANY_CONNECTIONS,
    UNAUTHORIZED,
    LinkupError,
    NotFound,
    RateLimited,
    ServerError,
)
from linkup.core.log import log_event
from linkup.core.protocol import (
    PROTOCOL_VERSION,
    BlockFrame,
    DeleteFrame,
    EditFrame,
    FocusFrame,
    Frame,
    NotificationReadFrame,
    PingFrame,
    ReactionFrame,
    ReceiptFrame,
    SendFrame,
    SyncFrame,
    TypingFrame,
    parse_frame,
    parse_notification_frame,
)
from linkup.core.serialization import SerializationError, dumps_text, format_time
from linkup.core.shapes import (
    AuthRevokedEvent,
    ChatBlocksEvent,
    NotifyNewEvent,
    NotifyReadEvent,
    RoomRemovedEvent,
    RoomUpdatedEvent,
    UserUpdatedEvent,
)
from linkup.realtime import coalesce
from linkup.realtime.auth import SocketAuth
from linkup.realtime.delivery import Step, delivery_step
from linkup.realtime.edges import collect, perform, read
from linkup.realtime.hub import hub
from linkup.realtime.hub import publish as hub_publish
from linkup.realtime.liveness import liveness
from linkup.realtime.presence_store import CHAT
from linkup.realtime.ratelimit import limits, retry_after, spend
from linkup.realtime.sending import send_message, send_queue, spend_send
from linkup.realtime.typing import TypingTracker
from linkup.realtime.wire import EXTENSION, Outgoing
from linkup.store import queries
from linkup.store.records import arecord_error

NOTIFY_KIND = "notify"  # notification sockets, counted apart from chat sockets
# Open sockets of each kind per user id in this process.
_open: dict[str, dict[int, int]] = {CHAT: defaultdict(int), NOTIFY_KIND: defaultdict(int)}


class Phase(enum.IntEnum):
    """How far a socket's set-up got. It only moves forward, and it is what `disconnect`
    undoes: a socket closed during its handshake leaves nothing behind."""

    OPENING = 0  # the handshake is under way: nothing held yet
    COUNTED = 1  # counted among its user's sockets in this process
    ADMITTED = 2  # and in the shared count (the presence store, across processes)
    READY = 3  # accepted and `hello` sent: what is offered may be written
    PRESENT = 4  # joined presence: its user shows online, its focus is recorded


class LinkupSocket(AsyncWebsocketConsumer):
    """What Linkup's sockets share: the connect and disconnect sequence, the hub's offers
    taken in order, lean dispatch, safe sends and closes, abuse counting.

    Not a channel-layer member itself: the process's hub (linkup.realtime.hub) is, and
    offers each socket what its groups receive. A socket's state is its `phase` (how far
    its set-up got) and `closing` (set once, by whoever closes it first, us or the server
    under us: from then on nothing is written, and what is still queued for it is dropped).

    Offers are taken in order. While nothing is waiting, a frame the hub offers is written at
    once (one `transport.write` of bytes framed once for everyone, where the server offers
    the `linkup.frames` extension). Anything that must await (a gap filled from the
    database, a catch-up for `ping`, a room joined, a plain ASGI send) is queued, and one
    task of the socket's works through the queue; frames offered meanwhile wait behind it,
    so the order holds."""

    KIND = CHAT  # which of its user's sockets it counts among (`MAX_CONNECTIONS_PER_USER`)
    # People whose typing the hub does not relay to this socket (blocks, either way).
    hidden_users: AbstractSet[int] = frozenset()
    user: Any
    conn_id: str
    token_id: int | None  # the bearer token it was opened with (directly or by a ticket)
    session: str | None  # the digest of the web session it was opened with (likewise)
    scope_auth: SocketAuth  # how the handshake authenticated (linkup.realtime.auth)
    bad_frames: deque[float]
    phase = Phase.OPENING
    closing = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels would give every socket a channel of its own and a task reading it; the
        # hub holds the process's one channel instead, so frames from the client are all
        # that is dispatched here.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels >= 4.2 runs aclose_old_connections() before every handler, doorbells
        # included (27 % of CPU in a profile). Every ORM call here goes through
        # database_sync_to_async, which already closes stale connections around itself.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None or message["type"].startswith("_"):
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Channels would also run aclose_old_connections() here: a hop to the database
        # thread per closing socket (7 % of the CPU when 10,000 sockets closed), for nothing,
        # since every ORM call of ours closes stale connections around itself.
        await self.disconnect(message["code"])
        raise StopConsumer()

    # -- lifecycle: the sequence every socket goes through -------------------------------------

    async def connect(self) -> None:
        """Admit (counted), set up (subscribed, state read), accept and `hello`, then what
        follows `hello` (before any live frame), then live (READY), then settle."""
        self.conn_id = uuid.uuid4().hex[:12]
        # The socket's own context, for its queue's task (the hub may offer from another's).
        self.context = contextvars.copy_context()
        self.bad_frames = deque()
        self.rate_limited: deque[float] = deque()
        self.hub = hub()
        self.hub_groups: set[str] = set()
        self.queue: deque[tuple[Any, ...]] = deque()
        self.drainer: asyncio.Task[None] | None = None
        self.raw: dict[str, Any] | None = None
        self.over_since: float | None = None
        self.last_heard = time.time()  # wall clock: the presence sweep compares across processes
        if not await self._admit(self.KIND):
            return
        try:
            hello = await self.set_up()
        except Exception as exc:
            await self._log_failure("connection", f"{self.KIND} socket set-up failed", exc)
            await self.close(code=SETUP_FAILED)
            return
        await self.accept()
        self.raw = (self.scope.get("extensions") or {}).get(EXTENSION)
        await self.send_frame(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "user": self.user.pk,
                "server_time": format_time(timezone.now()),
                "heartbeat_s": int(setting("HEARTBEAT_S")),
                **hello,
            }
        )
        await self.after_hello()
        self.phase = Phase.READY
        if self.queue:  # offered during the handshake
            self._drain_soon()
        await self.settle()

    async def set_up(self) -> dict[str, Any]:
        """Join the hub's groups and read the socket's starting state; return what `hello`
        carries besides the common fields. A failure closes the socket (SETUP_FAILED)."""
        raise NotImplementedError

    async def after_hello(self) -> None:
        """Send what must come after `hello` and before any live frame."""

    async def settle(self) -> None:
        """Live now: what may follow at leisure (presence)."""

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self.hub.exit(self, list(self.hub_groups))
        self.hub_groups.clear()
        self._drop_queue()
        if self.phase < Phase.COUNTED:
            return
        self._uncount(self.KIND)
        await self.release()

    async def release(self) -> None:
        """Give back what the set-up took beyond the local count (by `phase`)."""

    async def _admit(self, kind: str) -> bool:
        """Take the handshake's user and count this socket among their sockets of `kind`;
        close it (with the handshake's refusal, UNAUTHORIZED or TOO_MANY_CONNECTIONS) and
        return False when it may not open. Counted in this process first (no await between
        the check and the count, so two connects cannot both take the last place), then
        across processes (phase COUNTED, then ADMITTED; `_uncount` takes the count back)."""
        auth = self.scope.get("linkup_auth") or SocketAuth(self.scope.get("user"))
        self.scope_auth = auth
        self.user = auth.user
        self.token_id = auth.token_id
        self.session = auth.session
        refusal = auth.refusal
        if refusal is not None or self.user is None or not self.user.is_authenticated:
            await self.close(code=refusal or UNAUTHORIZED)
            return False
        open_here = _open[kind]
        if open_here[self.user.pk] >= int(setting("MAX_CONNECTIONS_PER_USER")):
            await self.close(code=TOO_MANY_CONNECTIONS)
            return False
        open_here[self.user.pk] += 1
        self.phase = Phase.COUNTED
        if not await liveness().admit(self, kind):
            await self.close(code=TOO_MANY_CONNECTIONS)
            return False
        self.phase = Phase.ADMITTED
        return True

    def _uncount(self, kind: str) -> None:
        """This socket no longer counts among its user's in this process."""
        open_here = _open[kind]
        open_here[self.user.pk] -= 1
        if open_here[self.user.pk] <= 0:
            del open_here[self.user.pk]

    async def auth_revoked(self, event: AuthRevokedEvent) -> None:
        """A credential of the user ended: close if this socket was opened with it."""
        if (
            event.get("all")
            or (self.token_id is not None and event.get("token_id") == self.token_id)
            or (self.session is not None and event.get("session") == self.session)
        ):
            await self.close(code=UNAUTHORIZED)

    @property
    def hub_user(self) -> int:
        """The user whose socket this is (the hub spares a typist their own typing)."""
        return int(self.user.pk)

    async def _enter(self, groups: list[str]) -> None:
        if self.closing:  # disconnect has left the hub (or will): join nothing more
            return
        self.hub_groups.update(groups)
        await self.hub.enter(self, groups)

    def _exit(self, groups: list[str]) -> None:
        self.hub_groups.difference_update(groups)
        self.hub.exit(self, groups)

    # -- what the hub offers (called by the hub, for every event: no await) -------------------

    def offer_message(self, room_id: int, seq: int, out: Outgoing) -> None:
        """A room's message (only chat sockets are in rooms)."""

    def offer_change(self, room_id: int, change: int, out: Outgoing) -> None:
        """A change to a room's message (only chat sockets are in rooms)."""

    def offer_frame(self, room_id: int | None, out: Outgoing) -> None:
        if self.phase >= Phase.READY and self.drainer is None and self.raw is not None:
            if room_id is None or self._shows(room_id):
                self._write_raw(out)
            return
        self._queue(("frame", room_id, out))

    def offer_event(self, event: dict[str, Any]) -> None:
        self._queue(("event", event))

    def _shows(self, room_id: int) -> bool:
        """Whether frames of `room_id` are for this socket."""
        return False

    # -- the queue ----------------------------------------------------------------------------

    def _queue(self, item: tuple[Any, ...]) -> None:
        if self.closing:
            return
        self.queue.append(item)
        if self.phase >= Phase.READY and self.drainer is None:
            self._drain_soon()

    def _drain_soon(self) -> None:
        self.drainer = asyncio.get_running_loop().create_task(
            self._drain(), context=self.context.copy()
        )

    async def _in_order(self, func: Any, *args: Any) -> Any:
        """Run `func(*args)` in the queue's order (after every frame offered before it, and
        before any offered after) and return its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue(("call", func, args, future))
        if self.closing:
            return None
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                return None  # the socket closed before its turn came
            raise

    async def _drain(self) -> None:
        try:
            while self.queue and not self.closing:
                item = self.queue.popleft()
                try:
                    await self._take(item)
                except Exception as exc:
                    if item[0] == "call":
                        if not item[3].done():
                            item[3].set_exception(exc)
                    else:
                        await self._log_failure("delivery", "delivery failed", exc)
        finally:
            self.drainer = None
            if self.closing:
                self._drop_queue()
            elif self.queue:
                self._drain_soon()

    async def _take(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "frame":
            _, room_id, out = item
            if room_id is None or self._shows(room_id):
                await self._write(out)
        elif kind == "event":
            event = item[1]
            handler = getattr(self, str(event.get("type", "_")).replace(".", "_"), None)
            if handler is None or str(event["type"]).startswith("_"):
                log_event(
                    logging.WARNING, "delivery", "no handler for event", event=event.get("type")
                )
                return
            await handler(event)
        else:  # "call"
            _, func, args, future = item
            result = await func(*args)
            if not future.done():
                future.set_result(result)

    def _drop_queue(self) -> None:
        """The socket is closing: forget what waits, and release whoever waits on it."""
        for item in self.queue:
            if item[0] == "call" and not item[3].done():
                item[3].cancel()
        self.queue.clear()

    async def _write(self, out: Outgoing) -> None:
        if self.raw is not None:
            self._write_raw(out)
        else:
            await self.send_text(out.text)

    def _write_raw(self, out: Outgoing) -> None:
        """Write a frame to the transport now. A client that does not read lets unsent
        bytes pile up: over SLOW_CONSUMER_MAX_BYTES for SLOW_CONSUMER_TIMEOUT_S, it is
        closed (1013) and its buffers are dropped."""
        assert self.raw is not None
        if self.closing:
            return
        if not self.raw["write"](out.framed):
            self.closing = True  # the transport is going: the disconnect follows
            return
        if self.raw["buffered"]() <= int(setting("SLOW_CONSUMER_MAX_BYTES")):
            self.over_since = None
        elif self.over_since is None:
            self.over_since = time.monotonic()
            asyncio.get_running_loop().call_later(
                float(setting("SLOW_CONSUMER_TIMEOUT_S")), self._check_slow
            )

    def _check_slow(self) -> None:
        if self.closing or self.over_since is None or self.raw is None:
            return
        if self.raw["buffered"]() <= int(setting("SLOW_CONSUMER_MAX_BYTES")):
            self.over_since = None
            return
        log_event(logging.WARNING, "connection", "slow consumer disconnected", **self._ctx())
        asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        await self.close(code=SLOW_CONSUMER)
        if self.raw is not None:
            self.raw["abort"]()  # the close frame waits behind what the client never read

    # -- helpers ---------------------------------------------------------------------------------

    async def send_frame(self, frame: Mapping[str, Any]) -> None:
        """Send one frame; a frame that cannot be serialized becomes a server_error frame."""
        try:
            text = dumps_text(frame)
        except SerializationError as exc:
            await arecord_error(
                "serialization",
                f"unserializable {frame.get('type')} frame",
                exc,
                shape=dumps_text(exc.shape),
                **self._ctx(),
            )
            text = dumps_text(ServerError().as_frame())
        await self.send_text(text)

    async def send_text(self, text: str) -> None:
        """Send one encoded frame through ASGI, closing the socket if it will not go."""
        if self.closing:
            return
        try:
            # A timer, not a task per frame (asyncio.wait_for's): this runs for every frame.
            async with asyncio.timeout(float(setting("SLOW_CONSUMER_TIMEOUT_S"))):
                await self.send(text_data=text)
        except TimeoutError:
            # The client stopped reading and the transport's buffers are full: drop it, it
            # catches up by its cursors when it comes back.
            log_event(logging.WARNING, "connection", "slow consumer disconnected", **self._ctx())
            await self.close(code=SLOW_CONSUMER)
        except (RuntimeError, OSError) as exc:
            # The client went (uvicorn's ClientDisconnected is an OSError), or the server
            # refuses frames once the socket is closing on its side (uvicorn's RuntimeError
            # after its keepalive timeout). The disconnect event follows; nothing is lost,
            # since the client catches up by its cursors when it reconnects. Logged once a
            # socket (closing is set), at INFO: a client going away is not an error.
            self.closing = True
            log_event(
                logging.INFO, "connection", "frame not sent: socket closed", exc, **self._ctx()
            )

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close once; a socket already closed under us (or a second close) is no error,
        so the caller (the presence heartbeat closing idle sockets) carries on."""
        if self.closing:
            return
        self.closing = True
        try:
            await super().close(code=code, reason=reason)
        except (RuntimeError, OSError):
            pass

    async def refuse(self, exc: Exception) -> None:
        """Answer a frame that failed: its error frame (counted toward the abuse limit when
        the client is at fault), or server_error after logging and recording a bug."""
        if isinstance(exc, LinkupError):
            await self.send_frame(exc.as_frame())
            if isinstance(exc, ABUSIVE):
                await self._count_bad_frame(self.bad_frames, "ABUSE_MAX_BAD_FRAMES")
            elif isinstance(exc, RateLimited):
                # A client that waits as told never comes near this: one that keeps sending
                # after the refusals is closed like one that sends garbage.
                await self._count_bad_frame(self.rate_limited, "ABUSE_MAX_RATE_LIMITED")
                # And this socket is not read again until the wait is over (at most
                # RATE_LIMITED_PAUSE_MAX_S): what a flooding client sends meanwhile waits in
                # its own TCP buffers (the server pauses reading a socket whose frames are
                # not taken), costing the server nothing.
                pause = min(exc.retry_after_s or 0.0, float(setting("RATE_LIMITED_PAUSE_MAX_S")))
                if pause > 0 and not self.closing:
                    await asyncio.sleep(pause)
            return
        await self._log_failure("delivery", "frame handling failed", exc)
        await self.send_frame(ServerError().as_frame())

    async def _count_bad_frame(self, seen: deque[float], most: str) -> None:
        now = time.monotonic()
        window = float(setting("ABUSE_WINDOW_S"))
        seen.append(now)
        while seen and seen[0] < now - window:
            seen.popleft()
        if len(seen) >= int(setting(most)):
            log_event(logging.WARNING, "connection", "closing an abusive socket", **self._ctx())
            await self.close(code=ABUSE)

    def _ctx(self) -> dict[str, Any]:
        user = getattr(self, "user", None)
        return {"user": getattr(user, "pk", None), "connection": getattr(self, "conn_id", None)}

    async def _log_failure(self, category: str, message: str, exc: BaseException) -> None:
        await arecord_error(category, message, exc, **self._ctx())


class ChatConsumer(LinkupSocket):
    """The chat socket: every room of its user, and the user's own events (rooms joined
    and left, presence of contacts, tokens revoked)."""

    rooms: dict[int, int]  # room id -> last seq sent to this socket
    changes: dict[int, int]  # room id -> last change number sent to this socket

    # -- lifecycle -------------------------------------------------------------------------

    async def set_up(self) -> dict[str, Any]:
        self.rooms = {}
        self.changes = {}
        self.focus: int | None = None
        self.hidden = False  # the tab is out of sight (a focus frame said so)
        self.typing = TypingTracker(
            expire_s=float(setting("TYPING_EXPIRE_S")),
            relay_interval_s=float(setting("TYPING_RELAY_INTERVAL_S")),
        )
        self.typing_timer: asyncio.TimerHandle | None = None
        # Subscribe, then read the cursors: whatever commits after that read rings a
        # doorbell the hub offers us; whatever committed before it precedes `hello`. The
        # rooms read with the token (if it was) are subscribed at once; a room joined
        # before the read is subscribed and read again. The block lists (whose typing is
        # not for us), read with the cursors, are known before any room's frames can come,
        # and any block after that read reaches us on the user's group.
        self.blocking: set[int] = set()
        self.blocked_by: set[int] = set()
        subscribed = set(self.scope_auth.rooms or ())
        await self._enter([user_group(self.user.pk), *(room_group(r) for r in subscribed)])
        while True:
            # Handshakes arriving together share one query.
            seqs, (blocking, blocked_by) = await coalesce.socket_states().get(self.user.pk)
            missing = [r for r in seqs if r not in subscribed]
            if not missing:
                break
            await self._enter([room_group(r) for r in missing])
            subscribed.update(missing)
        self._exit([room_group(r) for r in subscribed - set(seqs)])  # left meanwhile
        self.blocking, self.blocked_by = set(blocking), set(blocked_by)
        self.hidden_users = self.blocking | self.blocked_by
        # Our own cursors (the answer is shared by the user's tabs).
        self.rooms = {room_id: last_seq for room_id, (last_seq, _) in seqs.items()}
        self.changes = {room_id: last_change for room_id, (_, last_change) in seqs.items()}
        for room_id, (last_seq, last_change) in seqs.items():
            self.hub.known(room_id, last_seq, last_change)
        return {"username": self.user.get_username(), "connection_id": self.conn_id}

    async def settle(self) -> None:
        try:
            await liveness().join(self)
            self.phase = Phase.PRESENT
        except Exception as exc:  # presence is best effort: the socket still serves
            log_event(logging.WARNING, "connection", "presence join failed", exc, **self._ctx())

    async def release(self) -> None:
        try:
            if self.phase >= Phase.ADMITTED:  # in the presence store, joined or not
                await liveness().leave(self)
        except Exception as exc:
            log_event(logging.WARNING, "connection", "presence leave failed", exc, **self._ctx())
        if self.phase < Phase.ADMITTED:
            return
        if self.typing_timer is not None:
            self.typing_timer.cancel()
        for room_id in self.typing.rooms():
            await self._stop_typing(room_id)

    # -- frames from the client ------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_heard = time.time()
        try:
            frame = parse_frame(
                text_data if text_data is not None else bytes_data,
                max_bytes=int(setting("MAX_FRAME_BYTES")),
                max_body=int(setting("MAX_BODY_CHARS")),
                max_client_id=int(setting("MAX_CLIENT_ID_CHARS")),
                emoji_allowed=setting("REACTION_EMOJI"),
                max_files=int(setting("ATTACHMENTS_PER_MESSAGE_MAX")),
            )
            await self.handle(frame)
        except Exception as exc:
            await self.refuse(exc)

    async def handle(self, frame: Frame) -> None:
        if isinstance(frame, SendFrame):
            await self.on_send(frame)
        elif isinstance(frame, (EditFrame, DeleteFrame, ReactionFrame)):
            await self.on_change(frame)
        elif isinstance(frame, ReceiptFrame):
            await spend("frames", self.user.pk)
            await self.on_receipt(frame)
        elif isinstance(frame, TypingFrame):
            if frame.room not in self.rooms:
                raise NotFound("room not found")
            await self.on_typing(frame.room, frame.state)
        elif isinstance(frame, FocusFrame):
            await spend("frames", self.user.pk)
            if frame.room is not None and frame.room not in self.rooms:
                raise NotFound("room not found")
            await self._set_focus(frame.room)
            if frame.visible is not None and frame.visible == self.hidden:
                await self._set_hidden(not frame.visible)
        elif isinstance(frame, SyncFrame):
            await spend("sync", self.user.pk, len(frame.cursors) + len(frame.changes or {}))
            result = await read(queries.build_sync, self.user, frame.cursors, frame.changes)
            await self._in_order(self._reconcile, dict.fromkeys(result["room_ids"], None))
            await self.send_frame({"type": "sync.result", **result})
        elif isinstance(frame, BlockFrame):
            await spend("frames", self.user.pk)
            if frame.blocked:
                await perform(blocks.do_block, self.user, frame.user_id)
            else:
                await perform(blocks.do_unblock, self.user, frame.user_id)
        elif isinstance(frame, PingFrame):
            await spend("frames", self.user.pk)
            await self._in_order(self.catch_up)
            await self.send_frame({"type": "pong", "ts": format_time(timezone.now())})

    async def on_send(self, frame: SendFrame) -> None:
        try:
            message, _created = await send_message(
                self.user,
                frame.room,
                frame.client_id,
                frame.body,
                reply_to=frame.reply_to,
                attachments=frame.attachments,
            )
        except LinkupError as exc:
            exc.ref = frame.client_id
            raise
        await self.send_frame(
            {"type": "message.ack", "client_id": frame.client_id, "message": message}
        )
        if frame.room in self.typing.rooms():
            # A sent message ends the typing: the room sees the message, then the stop.
            await send_queue().rung()
            await self._stop_typing(frame.room)

    async def on_change(self, frame: EditFrame | DeleteFrame | ReactionFrame) -> None:
        """An edit, a delete or a reaction: from the sender's send budget, committed through
        the room's change log; answered `change.ack` with the message as it now is, before
        its `message.updated` frames go out (as a send's ack precedes its doorbells)."""
        try:
            await spend_send(self.user)
            if isinstance(frame, EditFrame):
                message, events = await collect(
                    changes.do_edit_message,
                    self.user,
                    frame.room,
                    frame.seq,
                    frame.body,
                    frame.client_id,
                )
            elif isinstance(frame, DeleteFrame):
                message, events = await collect(
                    changes.do_delete_message, self.user, frame.room, frame.seq, frame.scope
                )
            else:
                message, events = await collect(
                    changes.do_react, self.user, frame.room, frame.seq, frame.emoji, frame.state
                )
        except LinkupError as exc:
            exc.ref = frame.client_id
            raise
        await self.send_frame(
            {"type": "change.ack", "client_id": frame.client_id, "message": message}
        )
        await hub_publish(events)

    async def on_receipt(self, frame: ReceiptFrame) -> None:
        await perform(receipts.do_move_marker, self.user, frame.room, frame.kind, frame.seq)

    async def on_typing(self, room_id: int, state: str) -> None:
        wait = await limits().typing.hit(
            self.user.pk, float(setting("TYPING_RATE_PER_S")), int(setting("TYPING_BURST"))
        )
        if wait:
            raise RateLimited(retry_after_s=retry_after(wait))
        now = asyncio.get_running_loop().time()
        if state == "start":
            if self.typing.start(room_id, now):
                await self._relay_typing(room_id, "start")
            self._arm_typing_timer()
        else:
            await self._stop_typing(room_id)

    async def _stop_typing(self, room_id: int) -> None:
        if self.typing.stop(room_id):
            await self._relay_typing(room_id, "stop")

    async def _relay_typing(self, room_id: int, state: str) -> None:
        event = {"type": "chat.typing", "room": room_id, "user": self.user.pk, "state": state}
        await hub_publish([(room_group(room_id), event)])

    def _arm_typing_timer(self) -> None:
        """Wake when the earliest typing lapses, to tell the room it stopped."""
        if self.typing_timer is not None:
            self.typing_timer.cancel()
            self.typing_timer = None
        due = self.typing.next_expiry()
        if due is not None:
            loop = asyncio.get_running_loop()
            self.typing_timer = loop.call_at(due, lambda: loop.create_task(self._expire_typing()))

    async def _expire_typing(self) -> None:
        for room_id in self.typing.expired(asyncio.get_running_loop().time()):
            await self._relay_typing(room_id, "stop")
        self._arm_typing_timer()

    # -- what the hub offers ---------------------------------------------------------------------

    def offer_message(self, room_id: int, seq: int, out: Outgoing) -> None:
        self._offer("message", self.rooms, room_id, seq, out)

    def offer_change(self, room_id: int, change: int, out: Outgoing) -> None:
        self._offer("change", self.changes, room_id, change, out)

    def _offer(
        self, kind: str, cursors: dict[int, int], room_id: int, number: int, out: Outgoing
    ) -> None:
        """A room's message (by seq) or change (by change number): written at once when it
        is the next one and nothing waits, dropped when already sent, else queued (a gap
        to fill first, or frames waiting ahead of it)."""
        if self.phase >= Phase.READY and self.drainer is None and self.raw is not None:
            step = delivery_step(cursors.get(room_id), number)
            if step is Step.DROP:
                return
            if step is Step.SEND:
                cursors[room_id] = number
                self._write_raw(out)
                return
        self._queue((kind, room_id, number, out))

    def _shows(self, room_id: int) -> bool:
        return room_id in self.rooms

    async def _take(self, item: tuple[Any, ...]) -> None:
        if item[0] not in ("message", "change"):
            await super()._take(item)
            return
        kind, room_id, number, out = item
        cursors = self.rooms if kind == "message" else self.changes
        fill = self.fill_gap if kind == "message" else self.fill_changes
        step = delivery_step(cursors.get(room_id), number)
        if step is Step.FILL:
            await fill(room_id, number - 1)
            # Filled up to it (or past it), or the room went meanwhile.
            step = delivery_step(cursors.get(room_id), number)
        if step is Step.SEND:
            cursors[room_id] = number
            await self._write(out)

    # -- catching up ---------------------------------------------------------------------------

    async def catch_up(self) -> None:
        """Deliver everything committed that this socket has not been sent (lost doorbells)."""
        seqs = await coalesce.rooms_and_seqs().get(self.user.pk)
        await self._reconcile(seqs)
        for room_id, (last_seq, last_change) in seqs.items():
            if last_seq > self.rooms.get(room_id, last_seq):
                await self.fill_gap(room_id, last_seq)
            if last_change > self.changes.get(room_id, last_change):
                await self.fill_changes(room_id, last_change)
        # Group memberships expire, and a restarted Redis forgets them: the hub joins again.
        await self.hub.refresh()

    async def fill_gap(self, room_id: int, up_to: int) -> None:
        """Send this room's messages after the last one sent, up to seq `up_to`, from storage."""
        batch = int(setting("GAP_FILL_BATCH"))
        while room_id in self.rooms and self.rooms[room_id] < up_to and not self.closing:
            after = self.rooms[room_id]
            found = await read(
                queries.messages_after, room_id, after, min(batch, up_to - after), self.user.pk
            )
            if not found:
                return
            for state in found:
                message = state.viewed_by(self.user.pk)
                if room_id not in self.rooms or message["seq"] <= self.rooms[room_id]:
                    continue
                self.rooms[room_id] = message["seq"]
                await self._write(Outgoing.of({"type": "message.new", "message": message}))

    async def fill_changes(self, room_id: int, up_to: int) -> None:
        """Send this room's changes after the last one sent, up to `up_to`, from storage."""
        batch = int(setting("GAP_FILL_BATCH"))
        while room_id in self.changes and self.changes[room_id] < up_to and not self.closing:
            after = self.changes[room_id]
            found, _ = await read(
                queries.changes_after, room_id, after, min(batch, up_to - after), self.user.pk
            )
            if not found:
                return
            for change, _kind, state in found:
                if room_id not in self.changes or change <= self.changes[room_id]:
                    continue
                self.changes[room_id] = change
                frame = {
                    "type": "message.updated",
                    "room": room_id,
                    "change": change,
                    "message": state.viewed_by(self.user.pk),
                }
                await self._write(Outgoing.of(frame))

    async def _reconcile(self, current: dict[int, Any]) -> None:
        """Follow membership changes whose room.updated / room.removed doorbells were lost."""
        joined = [r for r in current if r not in self.rooms]
        if joined:
            await self._enter([room_group(r) for r in joined])
            fresh = await read(queries.last_seqs, joined)
            for room_id in joined:
                last_seq, last_change = fresh.get(room_id, (0, 0))
                self.rooms.setdefault(room_id, last_seq)
                self.changes.setdefault(room_id, last_change)
                self.hub.known(room_id, self.rooms[room_id], self.changes[room_id])
        for room_id in [r for r in self.rooms if r not in current]:
            await self._leave(room_id)
            await self.send_frame({"type": "room.removed", "room": room_id})

    async def _leave(self, room_id: int) -> None:
        self.rooms.pop(room_id, None)
        self.changes.pop(room_id, None)
        self.typing.stop(room_id)
        self._exit([room_group(room_id)])
        if self.focus == room_id:
            await self._set_focus(None)

    async def _set_focus(self, room: int | None) -> None:
        """Remember the room this socket shows; its user gets no notifications for it."""
        if self.phase >= Phase.PRESENT:
            try:
                await liveness().set_focus(self, room)
            except Exception as exc:  # the user may get a notification they did not need
                log_event(logging.WARNING, "connection", "focus update failed", exc, **self._ctx())
        self.focus = room

    async def _set_hidden(self, hidden: bool) -> None:
        """Remember whether this socket's tab is hidden: with all of them hidden, its user is
        away and notifications go by Web Push and email (linkup.tasks.fallback)."""
        self.hidden = hidden
        if self.phase >= Phase.PRESENT:
            try:
                await liveness().set_hidden(self, hidden)
            except Exception as exc:  # notifications wait for the user to go offline
                context = self._ctx()
                log_event(logging.WARNING, "connection", "visibility not recorded", exc, **context)

    # -- per-socket events (the hub offers them in order) ---------------------------------------

    async def room_updated(self, event: RoomUpdatedEvent) -> None:
        room = event["room"]
        if room["id"] not in self.rooms:
            await self._enter([room_group(room["id"])])
            # Messages committed after this view was built arrive as doorbells or gap fills.
            self.rooms.setdefault(room["id"], room["last_seq"])
            self.changes.setdefault(room["id"], room["last_change"])
            self.hub.known(room["id"], self.rooms[room["id"]], self.changes[room["id"]])
        await self.send_frame({"type": "room.updated", "room": room})

    async def room_removed(self, event: RoomRemovedEvent) -> None:
        if event["room"] in self.rooms:
            await self._leave(event["room"])
        await self.send_frame({"type": "room.removed", "room": event["room"]})

    async def user_updated(self, event: UserUpdatedEvent) -> None:
        await self.send_frame({"type": "user.updated", "user": event["user"]})

    def offer_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "chat.blocks":
            # At once, not in the queue's turn: the typing the hub offers from now on is
            # sorted by it (a block is between two people whichever made it, and either
            # may have blocked the other too).
            other = event["user"]["id"]
            side = self.blocking if event["mine"] else self.blocked_by
            if event["blocked"]:
                side.add(other)
            else:
                side.discard(other)
            self.hidden_users = self.blocking | self.blocked_by
        super().offer_event(event)

    async def chat_blocks(self, event: ChatBlocksEvent) -> None:
        """The blocker's own sockets show a block made or lifted (`block.updated`); the
        other's say nothing."""
        if event["mine"]:
            await self.send_frame(
                {"type": "block.updated", "user": event["user"], "blocked": event["blocked"]}
            )


class NotificationConsumer(LinkupSocket):
    """`/ws/notifications/`: the user's notifications, live, with read state shared by tabs.

    After `hello` (which carries the unread count) it sends the unread notifications no path
    has delivered yet, oldest first (at most NOTIFY_BATCH_MAX; the rest are over REST), then
    every new one as it commits. Sending a frame records the live delivery, so the
    fallback chain (email, push) leaves it alone; a new one is not recorded while every chat
    tab of the user is hidden (focus frames say so): shown there, it is not seen."""

    KIND = NOTIFY_KIND  # the same cap as chat sockets, counted apart (a tab opens one of each)

    async def set_up(self) -> dict[str, Any]:
        await self._enter([notify_group(self.user.pk)])
        self.backlog = await read(notifications.backlog_for, self.user)
        return {"unread_count": self.backlog["unread_count"]}

    async def after_hello(self) -> None:
        for item in self.backlog["notifications"]:
            await self.send_frame({"type": "notification", "notification": item})

    async def settle(self) -> None:
        await self._delivered([n["id"] for n in self.backlog.pop("notifications")])

    async def release(self) -> None:
        try:
            await liveness().uncount(self, NOTIFY_KIND)
        except Exception as exc:
            log_event(logging.WARNING, "connection", "uncount failed", exc, **self._ctx())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_heard = time.time()
        try:
            frame = parse_notification_frame(
                text_data if text_data is not None else bytes_data,
                max_bytes=int(setting("MAX_FRAME_BYTES")),
            )
            if isinstance(frame, NotificationReadFrame):
                # Every tab of the user (this one included) gets `notification.read`.
                await perform(notifications.do_mark_read, self.user, frame.ids)
            else:
                # Group memberships expire, and a restarted Redis forgets them.
                await self.hub.refresh()
                await self.send_frame({"type": "pong", "ts": format_time(timezone.now())})
        except Exception as exc:
            await self.refuse(exc)

    async def notify_new(self, event: NotifyNewEvent) -> None:
        await self.send_frame({"type": "notification", "notification": event["notification"]})
        # Shown in a tab out of sight is not seen: it stays pending for Web Push and email.
        if not self.closing and not await self._away():
            await self._delivered([event["notification"]["id"]])

    async def _away(self) -> bool:
        """Whether every chat tab of the user is hidden (the bell's own socket cannot tell)."""
        try:
            return await liveness().away(self.user.pk)
        except Exception as exc:  # as before: the bell's delivery counts
            log_event(logging.WARNING, "connection", "away not readable", exc, **self._ctx())
            return False

    async def notify_read(self, event: NotifyReadEvent) -> None:
        await self.send_frame({"type": "notification.read", "ids": event["ids"]})

    async def _delivered(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            await perform(notifications.mark_delivered, ids, "live")
        except LinkupError as exc:  # the frame went; the fallback may send it again later
            log_event(logging.WARNING, "delivery", "live delivery not recorded", exc, **self._ctx())
