"""A client that follows the contract, as the fault suite's users: it reconnects with backoff
and jitter, resends every unacknowledged client_id (the server keeps sends idempotent), and
syncs from its per-room cursors after every reconnect, so its view must end equal to the
database whatever failed meanwhile."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from typing import Any

import websockets

RESEND_AFTER_S = 1.5


class ContractClient:
    def __init__(
        self,
        ws_base: str | list[str],
        token: str,
        user_id: int,
        rooms: list[int],
        *,
        drop_after_send: float = 0.0,
    ) -> None:
        # Several servers: a lost connection moves on to the next one.
        self.urls = [b + "/ws/chat/" for b in ([ws_base] if isinstance(ws_base, str) else ws_base)]
        self.url_index = 0
        # The probability of cutting the TCP connection right after a send, before its ack.
        self.drop_after_send = drop_after_send
        self.drops = 0
        self.token = token
        self.user_id = user_id
        self.rooms = rooms
        self.cursors = dict.fromkeys(rooms, 0)  # highest contiguous seq held per room
        self.seen: dict[int, dict[int, dict[str, Any]]] = {r: {} for r in rooms}
        self.unacked: dict[str, tuple[int, str, float]] = {}  # client_id -> room, body, sent at
        self.acked: dict[str, dict[str, Any]] = {}
        self.live: dict[int, float] = {}  # message id -> when it arrived as message.new
        self.ack_times: dict[int, float] = {}  # message id -> when its ack arrived
        self.errors: Counter[str] = Counter()
        self.unavailable_after: list[float] = []  # seconds from send to `unavailable`
        self.connects = 0
        self.ws: Any = None
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.resender: asyncio.Task[None] | None = None

    # -- the connection loop --------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.resender = asyncio.get_running_loop().create_task(self._resend_loop())

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            await self.ws.close()
        for task in (self.task, self.resender):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    async def _run(self) -> None:
        delay = 0.1
        while not self.stopping:
            try:
                async with websockets.connect(
                    self.urls[self.url_index % len(self.urls)],
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=5,
                    ping_interval=None,
                    max_size=2**22,
                ) as ws:
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert hello["type"] == "hello", hello
                    self.ws = ws
                    self.connects += 1
                    delay = 0.1
                    await self._sync()
                    for client_id in list(self.unacked):
                        await self._transmit(client_id)
                    async for raw in ws:
                        await self._handle(json.loads(raw))
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
                pass
            self.ws = None
            if self.stopping:
                return
            self.url_index += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(2.0, delay * 2)

    async def _resend_loop(self) -> None:
        """A send whose ack never came (lost with its connection, or refused) goes again."""
        while not self.stopping:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for client_id, (_, _, at) in list(self.unacked.items()):
                if now - at > RESEND_AFTER_S:
                    await self._transmit(client_id)

    async def _transmit(self, client_id: str) -> None:
        room, body, _ = self.unacked[client_id]
        self.unacked[client_id] = (room, body, time.monotonic())
        if self.ws is None:
            return
        try:
            await self.ws.send(
                json.dumps(
                    {"type": "message.send", "room": room, "client_id": client_id, "body": body}
                )
            )
        except websockets.exceptions.WebSocketException:
            return
        if self.drop_after_send and random.random() < self.drop_after_send:
            self.drops += 1
            self.ws.transport.abort()  # gone between send and ack: no close handshake

    async def _sync(self) -> None:
        if self.ws is not None:
            await self.ws.send(
                json.dumps(
                    {"type": "sync", "cursors": {str(r): s for r, s in self.cursors.items()}}
                )
            )

    # -- frames --------------------------------------------------------------------------------

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "message.ack":
            self.acked[frame["client_id"]] = frame["message"]
            self.ack_times.setdefault(frame["message"]["id"], time.monotonic())
            self.unacked.pop(frame["client_id"], None)
            self._take(frame["message"])
        elif kind == "message.new":
            self.live.setdefault(frame["message"]["id"], time.monotonic())
            self._take(frame["message"])
        elif kind == "sync.result":
            more = False
            for entry in frame["rooms"]:
                for message in entry["messages"]:
                    self._take(message)
                more = more or (entry["has_more"] and entry["room"] in self.cursors)
            if more:
                await self._sync()
        elif kind == "error":
            self.errors[frame["code"]] += 1
            ref = frame.get("ref")
            if ref in self.unacked:
                room, body, at = self.unacked[ref]
                if frame["code"] == "unavailable":
                    self.unavailable_after.append(time.monotonic() - at)
                # As the contract asks: the same client_id again after retry_after_s.
                wait = float(frame.get("retry_after_s") or 1.0)
                self.unacked[ref] = (room, body, time.monotonic() + wait - RESEND_AFTER_S)

    def _take(self, message: dict[str, Any]) -> None:
        room = message["room"]
        if room not in self.seen:
            return
        known = self.seen[room].get(message["seq"])
        if known is not None:
            assert known["id"] == message["id"], ("two messages with one seq", known, message)
        self.seen[room][message["seq"]] = message
        while self.cursors[room] + 1 in self.seen[room]:
            self.cursors[room] += 1

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, room: int, body: str) -> str:
        client_id = str(uuid.uuid4())
        self.unacked[client_id] = (room, body, time.monotonic())
        await self._transmit(client_id)
        return client_id

    async def settle(self, timeout: float = 30) -> None:
        """Wait until every send is acked and the view has caught up (a ping delivers what
        lost doorbells hid; a sync fills the rest)."""
        deadline = time.monotonic() + timeout
        while self.unacked or self.ws is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.unacked)} sends never acked")
            await asyncio.sleep(0.1)
        await self._sync()
        await asyncio.sleep(0.5)
