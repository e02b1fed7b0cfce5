"""The chat socket: one per client tab, carrying all of the user's rooms.

Live delivery is gap-free and ordered per socket: the consumer remembers the last seq it sent
in each room, and each doorbell (channel-layer event) takes the step `delivery_step` says:
the next seq is sent on; one further ahead first fills the gap from the database; one
already sent is dropped. `ping` re-reads every room's last_seq, so a message whose
doorbells were all lost arrives before the `pong`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone

from linkup.actions import notifications, receipts
from linkup.actions.events import notify_group, publish_now, room_group, user_group
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
    FocusFrame,
    Frame,
    NotificationReadFrame,
    PingFrame,
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
    ChatMessageEvent,
    ChatPresenceEvent,
    ChatReceiptEvent,
    ChatTypingEvent,
    ChatWatermarkEvent,
    MessageDict,
    NotifyNewEvent,
    NotifyReadEvent,
    RoomRemovedEvent,
    RoomUpdatedEvent,
)
from linkup.realtime.delivery import Step, delivery_step
from linkup.realtime.edges import perform, read
from linkup.realtime.liveness import liveness
from linkup.realtime.presence_store import CHAT
from linkup.realtime.ratelimit import limits, retry_after
from linkup.realtime.sending import send_message, send_queue
from linkup.realtime.typing import TypingTracker
from linkup.store import queries
from linkup.store.records import arecord_error

NOTIFY_KIND = "notify"  # notification sockets, counted apart from chat sockets
# Open sockets of each kind per user id in this process.
_open: dict[str, dict[int, int]] = {CHAT: defaultdict(int), NOTIFY_KIND: defaultdict(int)}


class LinkupSocket(AsyncWebsocketConsumer):
    """What Linkup's sockets share: lean dispatch, safe sends and closes, abuse counting."""

    user: Any
    conn_id: str
    token_id: int | None
    bad_frames: deque[float]
    # Set once the socket is closing (by us, or by the server under us): events still
    # queued for it until the disconnect (doorbells, presence) send nothing.
    closing = False
    # Set while the socket counts among its user's (see `_admit`).
    counted = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels >= 4.2 runs aclose_old_connections() before every handler, doorbells
        # included (27 % of CPU in a profile). Every ORM call here goes through
        # database_sync_to_async, which already closes stale connections around itself.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None or message["type"].startswith("_"):
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _admit(self, kind: str) -> bool:
        """Take the handshake's user and count this socket among their sockets of `kind`;
        close it (with the handshake's refusal, UNAUTHORIZED or TOO_MANY_CONNECTIONS) and
        return False when it may not open. Counted in this process first (no await between
        the check and the count, so two connects cannot both take the last place), then
        across processes; `counted` from the first count on (`_uncount` takes it back)."""
        self.user = self.scope.get("user")
        self.token_id = self.scope.get("linkup_token_id")
        refusal = self.scope.get("linkup_refusal")
        if refusal is not None or self.user is None or not self.user.is_authenticated:
            await self.close(code=refusal or UNAUTHORIZED)
            return False
        open_here = _open[kind]
        if open_here[self.user.pk] >= int(setting("MAX_CONNECTIONS_PER_USER")):
            await self.close(code=TOO_MANY_CONNECTIONS)
            return False
        open_here[self.user.pk] += 1
        self.counted = True
        if not await liveness().admit(self, kind):
            await self.close(code=TOO_MANY_CONNECTIONS)
            return False
        return True

    def _uncount(self, kind: str) -> None:
        """This socket no longer counts among its user's in this process."""
        self.counted = False
        open_here = _open[kind]
        open_here[self.user.pk] -= 1
        if open_here[self.user.pk] <= 0:
            del open_here[self.user.pk]

    async def auth_revoked(self, event: AuthRevokedEvent) -> None:
        if self.token_id is not None and event["token_id"] == self.token_id:
            await self.close(code=UNAUTHORIZED)

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
                await self._count_bad_frame()
            return
        await self._log_failure("delivery", "frame handling failed", exc)
        await self.send_frame(ServerError().as_frame())

    async def _count_bad_frame(self) -> None:
        now = time.monotonic()
        window = float(setting("ABUSE_WINDOW_S"))
        self.bad_frames.append(now)
        while self.bad_frames and self.bad_frames[0] < now - window:
            self.bad_frames.popleft()
        if len(self.bad_frames) >= int(setting("ABUSE_MAX_BAD_FRAMES")):
            log_event(logging.WARNING, "connection", "closing an abusive socket", **self._ctx())
            await self.close(code=ABUSE)

    def _ctx(self) -> dict[str, Any]:
        user = getattr(self, "user", None)
        return {"user": getattr(user, "pk", None), "connection": getattr(self, "conn_id", None)}

    async def _log_failure(self, category: str, message: str, exc: BaseException) -> None:
        await arecord_error(category, message, exc, **self._ctx())


class ChatConsumer(LinkupSocket):
    rooms: dict[int, int]  # room id -> last seq sent to this socket

    # -- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        self.rooms = {}
        self.admitted = False
        self.focus: int | None = None
        self.typing = TypingTracker(
            expire_s=float(setting("TYPING_EXPIRE_S")),
            relay_interval_s=float(setting("TYPING_RELAY_INTERVAL_S")),
        )
        self.typing_timer: asyncio.TimerHandle | None = None
        self.bad_frames: deque[float] = deque()
        self.conn_id = uuid.uuid4().hex[:12]
        self.last_heard = time.time()  # wall clock: the presence sweep compares across processes
        self.present = False
        if not await self._admit(CHAT):
            return
        self.admitted = True
        try:
            await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
            # Subscribe, then read the cursors: whatever commits after that read rings a
            # doorbell we will hear; whatever committed before it precedes `hello`. A room
            # joined between two reads is subscribed and read again.
            subscribed: set[int] = set()
            while True:
                seqs = await read(queries.room_ids_and_seqs, self.user)
                missing = [r for r in seqs if r not in subscribed]
                if not missing:
                    break
                await self._subscribe(missing)
                subscribed.update(missing)
            for room_id in subscribed - set(seqs):  # left meanwhile
                await self.channel_layer.group_discard(room_group(room_id), self.channel_name)
            self.rooms = seqs
        except Exception as exc:
            await self._log_failure("connection", "socket set-up failed", exc)
            await self.close(code=SETUP_FAILED)
            return
        self.groups_joined_at = time.monotonic()
        await self.accept()
        await self.send_frame(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "user": self.user.pk,
                "username": self.user.get_username(),
                "server_time": format_time(timezone.now()),
                "heartbeat_s": setting("HEARTBEAT_S"),
                "connection_id": self.conn_id,
            }
        )
        try:
            await liveness().join(self)
            self.present = True
        except Exception as exc:  # presence is best effort: the socket still serves
            log_event(logging.WARNING, "connection", "presence join failed", exc, **self._ctx())

    async def disconnect(self, code: int) -> None:
        if not self.counted:
            return
        self._uncount(CHAT)
        try:
            if self.present or self.admitted:  # counted in the presence store either way
                await liveness().leave(self)
        except Exception as exc:
            log_event(logging.WARNING, "connection", "presence leave failed", exc, **self._ctx())
        if self.typing_timer is not None:
            self.typing_timer.cancel()
        for room_id in self.typing.rooms():
            await self._stop_typing(room_id)
        layer = self.channel_layer
        try:
            await asyncio.gather(
                layer.group_discard(user_group(self.user.pk), self.channel_name),
                *(layer.group_discard(room_group(r), self.channel_name) for r in self.rooms),
            )
        except Exception as exc:
            log_event(logging.WARNING, "connection", "group discard failed", exc, **self._ctx())

    # -- frames from the client ------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_heard = time.time()
        try:
            frame = parse_frame(
                text_data if text_data is not None else bytes_data,
                max_bytes=int(setting("MAX_FRAME_BYTES")),
                max_body=int(setting("MAX_BODY_CHARS")),
                max_client_id=int(setting("MAX_CLIENT_ID_CHARS")),
            )
            await self.handle(frame)
        except Exception as exc:
            await self.refuse(exc)

    async def handle(self, frame: Frame) -> None:
        if isinstance(frame, SendFrame):
            await self.on_send(frame)
        elif isinstance(frame, ReceiptFrame):
            await self.on_receipt(frame)
        elif isinstance(frame, TypingFrame):
            if frame.room not in self.rooms:
                raise NotFound("room not found")
            await self.on_typing(frame.room, frame.state)
        elif isinstance(frame, FocusFrame):
            if frame.room is not None and frame.room not in self.rooms:
                raise NotFound("room not found")
            await self._set_focus(frame.room)
        elif isinstance(frame, SyncFrame):
            result = await read(queries.build_sync, self.user, frame.cursors)
            await self._reconcile(dict.fromkeys(result["room_ids"], None))
            await self.send_frame({"type": "sync.result", **result})
        elif isinstance(frame, PingFrame):
            await self.catch_up()
            await self.send_frame({"type": "pong", "ts": format_time(timezone.now())})

    async def on_send(self, frame: SendFrame) -> None:
        try:
            message, _created = await send_message(
                self.user, frame.room, frame.client_id, frame.body
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
        await publish_now(
            room_group(room_id),
            {"type": "chat.typing", "room": room_id, "user": self.user.pk, "state": state},
        )

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

    # -- catching up ---------------------------------------------------------------------------

    async def catch_up(self) -> None:
        """Deliver everything committed that this socket has not been sent (lost doorbells)."""
        seqs = await read(queries.room_ids_and_seqs, self.user)
        await self._reconcile(seqs)
        for room_id, last_seq in seqs.items():
            if last_seq > self.rooms.get(room_id, last_seq):
                await self.fill_gap(room_id, last_seq)
        if time.monotonic() - self.groups_joined_at > float(setting("GROUP_REFRESH_S")):
            # Group memberships expire, and a restarted Redis forgets them: join again.
            await self._subscribe(list(self.rooms), with_user_group=True)

    async def fill_gap(self, room_id: int, up_to: int) -> None:
        """Send this room's messages after the last one sent, up to seq `up_to`, from storage."""
        batch = int(setting("GAP_FILL_BATCH"))
        while room_id in self.rooms and self.rooms[room_id] < up_to:
            after = self.rooms[room_id]
            messages = await read(queries.messages_after, room_id, after, min(batch, up_to - after))
            if not messages:
                return
            for message in messages:
                await self._send_message(message)

    async def _send_message(self, message: MessageDict) -> None:
        await self.send_frame({"type": "message.new", "message": message})
        self.rooms[message["room"]] = message["seq"]

    async def _subscribe(self, room_ids: list[int], with_user_group: bool = False) -> None:
        layer = self.channel_layer
        joins = [layer.group_add(room_group(r), self.channel_name) for r in room_ids]
        if with_user_group:
            joins.append(layer.group_add(user_group(self.user.pk), self.channel_name))
        await asyncio.gather(*joins)
        self.groups_joined_at = time.monotonic()

    async def _reconcile(self, current: dict[int, Any]) -> None:
        """Follow membership changes whose room.updated / room.removed doorbells were lost."""
        joined = [r for r in current if r not in self.rooms]
        if joined:
            await self._subscribe(joined)
            fresh = await read(queries.last_seqs, joined)
            for room_id in joined:
                self.rooms[room_id] = fresh.get(room_id, 0)
        for room_id in [r for r in self.rooms if r not in current]:
            await self._leave(room_id)
            await self.send_frame({"type": "room.removed", "room": room_id})

    async def _leave(self, room_id: int) -> None:
        self.rooms.pop(room_id, None)
        self.typing.stop(room_id)
        if self.focus == room_id:
            await self._set_focus(None)
        await self.channel_layer.group_discard(room_group(room_id), self.channel_name)

    async def _set_focus(self, room: int | None) -> None:
        """Remember the room this socket shows; its user gets no notifications for it."""
        if self.present:
            try:
                await liveness().set_focus(self, room)
            except Exception as exc:  # the user may get a notification they did not need
                log_event(logging.WARNING, "connection", "focus update failed", exc, **self._ctx())
        self.focus = room

    # -- doorbells (channel-layer events) -------------------------------------------------------

    async def chat_message(self, event: ChatMessageEvent) -> None:
        message = event["message"]
        room_id, seq = message["room"], message["seq"]
        step = delivery_step(self.rooms.get(room_id), seq)
        if step is Step.DROP:
            return
        if step is Step.FILL:
            await self.fill_gap(room_id, seq - 1)
            # Filled up to it (or past it), or the room went meanwhile: nothing to send.
            if delivery_step(self.rooms.get(room_id), seq) is Step.DROP:
                return
        await self._send_message(message)

    async def chat_receipt(self, event: ChatReceiptEvent) -> None:
        receipt = event["receipt"]
        if receipt["room"] in self.rooms:
            await self.send_frame(receipt)

    async def chat_presence(self, event: ChatPresenceEvent) -> None:
        await self.send_frame(
            {
                "type": "presence",
                "user": event["user"],
                "status": event["status"],
                "last_seen": event["last_seen"],
            }
        )

    async def chat_watermark(self, event: ChatWatermarkEvent) -> None:
        if event["room"] in self.rooms:
            await self.send_frame(
                {
                    "type": "watermark",
                    "room": event["room"],
                    "delivered_seq": event["delivered_seq"],
                    "read_seq": event["read_seq"],
                }
            )

    async def chat_typing(self, event: ChatTypingEvent) -> None:
        if event["user"] != self.user.pk and event["room"] in self.rooms:
            await self.send_frame(
                {
                    "type": "typing",
                    "room": event["room"],
                    "user": event["user"],
                    "state": event["state"],
                }
            )

    async def room_updated(self, event: RoomUpdatedEvent) -> None:
        room = event["room"]
        if room["id"] not in self.rooms:
            await self._subscribe([room["id"]])
            # Messages committed after this view was built arrive as doorbells or gap fills.
            self.rooms[room["id"]] = room["last_seq"]
        await self.send_frame({"type": "room.updated", "room": room})

    async def room_removed(self, event: RoomRemovedEvent) -> None:
        if event["room"] in self.rooms:
            await self._leave(event["room"])
        await self.send_frame({"type": "room.removed", "room": event["room"]})


class NotificationConsumer(LinkupSocket):
    """`/ws/notifications/`: the user's notifications, live, with read state shared by tabs.

    After `hello` (which carries the unread count) it sends the unread notifications no path
    has delivered yet, oldest first (at most NOTIFY_BATCH_MAX; the rest are over REST), then
    every new one as it commits. Sending a frame records the live delivery, so the
    fallback chain (email, push) leaves it alone."""

    async def connect(self) -> None:
        self.conn_id = uuid.uuid4().hex[:12]
        self.bad_frames = deque()
        self.joined = False
        # The same cap as chat sockets, counted apart (a tab opens one of each).
        if not await self._admit(NOTIFY_KIND):
            return
        try:
            await self.channel_layer.group_add(notify_group(self.user.pk), self.channel_name)
            self.joined = True
            self.joined_at = time.monotonic()
            backlog = await read(notifications.backlog_for, self.user)
        except Exception as exc:
            await self._log_failure("connection", "notifications socket set-up failed", exc)
            await self.close(code=SETUP_FAILED)
            return
        await self.accept()
        await self.send_frame(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "user": self.user.pk,
                "server_time": format_time(timezone.now()),
                "heartbeat_s": int(setting("HEARTBEAT_S")),
                "unread_count": backlog["unread_count"],
            }
        )
        for item in backlog["notifications"]:
            await self.send_frame({"type": "notification", "notification": item})
        await self._delivered([n["id"] for n in backlog["notifications"]])

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self._uncount(NOTIFY_KIND)
            try:
                await liveness().uncount(self, NOTIFY_KIND)
            except Exception as exc:
                log_event(logging.WARNING, "connection", "uncount failed", exc, **self._ctx())
        if self.joined:
            self.joined = False
            try:
                await self.channel_layer.group_discard(
                    notify_group(self.user.pk), self.channel_name
                )
            except Exception as exc:
                log_event(logging.WARNING, "connection", "group discard failed", exc, **self._ctx())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = parse_notification_frame(
                text_data if text_data is not None else bytes_data,
                max_bytes=int(setting("MAX_FRAME_BYTES")),
            )
            if isinstance(frame, NotificationReadFrame):
                # Every tab of the user (this one included) gets `notification.read`.
                await perform(notifications.do_mark_read, self.user, frame.ids)
            else:
                await self._refresh_group()
                await self.send_frame({"type": "pong", "ts": format_time(timezone.now())})
        except Exception as exc:
            await self.refuse(exc)

    async def _refresh_group(self) -> None:
        """Join the group again now and then, as chat sockets do, so that group expiry or a
        Redis that forgot every group never leaves this socket deaf."""
        now = time.monotonic()
        if now - self.joined_at >= float(setting("GROUP_REFRESH_S")):
            self.joined_at = now
            await self.channel_layer.group_add(notify_group(self.user.pk), self.channel_name)

    async def notify_new(self, event: NotifyNewEvent) -> None:
        await self.send_frame({"type": "notification", "notification": event["notification"]})
        if not self.closing:
            await self._delivered([event["notification"]["id"]])

    async def notify_read(self, event: NotifyReadEvent) -> None:
        await self.send_frame({"type": "notification.read", "ids": event["ids"]})

    async def _delivered(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            await perform(notifications.mark_delivered, ids, "live")
        except LinkupError as exc:  # the frame went; the fallback may send it again later
            log_event(logging.WARNING, "delivery", "live delivery not recorded", exc, **self._ctx())
