"""uvicorn's WebSocket protocol, with the kernel told to give up on a peer that takes no data.

A client that stops reading keeps its TCP receive window shut. Linkup closes such a socket
(SLOW_CONSUMER_TIMEOUT_S, 1013), but the close frame queues behind what the client never
read, and asyncio's `transport.close()`, which uvicorn calls after its close timeout, waits
for the write buffer to drain: the connection, its file descriptor and a few MB of kernel
send queue would stay as long as the peer does. TCP_USER_TIMEOUT makes the kernel abort a
connection whose sent data stays unacknowledged, or whose window stays shut, that long
(Linux counts zero-window probes since 5.x), which frees all of it. It also cuts peers that
vanished without a FIN sooner than the kernel's 15-minute default.

It also offers the `linkup.frames` ASGI extension (`linkup.realtime.wire`): the delivery hub
writes a frame it framed once straight to the transport, with no ASGI message, task or
re-encoding per recipient.

And it bounds connections that never finish starting (slowloris): a request line and
headers, or a WebSocket handshake, not done within LINKUP_HEADER_TIMEOUT_S (10 s) is cut,
and one client address holds at most LINKUP_MAX_INCOMPLETE_PER_ADDRESS (1,000) such
connections at once: over it, its oldest incomplete one is cut. Connections that finished
starting are not capped per address (a load test opens 10,000 sockets from 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import os
import socket
from asyncio import BaseTransport, Transport
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from linkup.realtime.wire import EXTENSION

TCP_USER_TIMEOUT_S = float(os.environ.get("LINKUP_TCP_USER_TIMEOUT_S", "60"))
HEADER_TIMEOUT_S = float(os.environ.get("LINKUP_HEADER_TIMEOUT_S", "10"))
MAX_INCOMPLETE_PER_ADDRESS = int(os.environ.get("LINKUP_MAX_INCOMPLETE_PER_ADDRESS", "1000"))


class Starting:
    """The connections of this process still starting (request line and headers, or the
    WebSocket handshake, not done), per client address, oldest first; each with a deadline."""

    def __init__(self, timeout_s: float, per_address: int) -> None:
        self.timeout_s = timeout_s
        self.per_address = per_address
        self.by_address: dict[str, OrderedDict[int, tuple[Transport, asyncio.TimerHandle]]] = {}

    def begin(self, transport: Transport) -> None:
        """`transport` starts (again: a kept-alive connection's next request) now."""
        self.end(transport)
        address = _address(transport)
        waiting = self.by_address.setdefault(address, OrderedDict())
        timer = asyncio.get_running_loop().call_later(self.timeout_s, self._expire, transport)
        waiting[id(transport)] = (transport, timer)
        while len(waiting) > self.per_address:
            _, (oldest, old_timer) = waiting.popitem(last=False)
            old_timer.cancel()
            oldest.abort()

    def end(self, transport: Transport) -> None:
        """`transport` finished starting, or is gone."""
        address = _address(transport)
        waiting = self.by_address.get(address)
        if waiting is None:
            return
        found = waiting.pop(id(transport), None)
        if found is not None:
            found[1].cancel()
        if not waiting:
            del self.by_address[address]

    def _expire(self, transport: Transport) -> None:
        self.end(transport)
        transport.abort()

    def count(self) -> int:
        return sum(len(waiting) for waiting in self.by_address.values())


def _address(transport: BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


# One per process (uvicorn runs one event loop a process).
starting = Starting(HEADER_TIMEOUT_S, MAX_INCOMPLETE_PER_ADDRESS)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's line and headers."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        starting.begin(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        starting.begin(self.transport)

    def on_headers_complete(self) -> None:
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            starting.end(self.transport)  # an upgrade starts until its handshake is done
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        starting.end(self.transport)
        super().connection_lost(exc)


def limit_unacknowledged(transport: BaseTransport, seconds: float) -> bool:
    """Set TCP_USER_TIMEOUT on the transport's TCP socket; False where there is none."""
    sock = transport.get_extra_info("socket")
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if sock is None or option is None or seconds <= 0:
        return False
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))
    except OSError:
        return False
    return True


# What a client may send after the server's close frame before the connection is cut.
AFTER_CLOSE_BYTES = 64 * 1024
# What is parsed at a time when the app has frames still to take (see parse_some).
PARSE_PIECE_BYTES = 4 * 1024


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol (websockets' sans-I/O core), plus the timeout."""

    unparsed = b""

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        limit_unacknowledged(transport, TCP_USER_TIMEOUT_S)

    def connection_lost(self, exc: Exception | None) -> None:
        starting.end(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.close_sent:
            # After our close, a client owes only its close reply. One that floods on
            # (what an abusive client does when closed 1008) would have its backlog parsed
            # frame by frame before the reply: past a little slack, cut it instead.
            self.after_close = getattr(self, "after_close", 0) + len(data) + len(self.unparsed)
            self.unparsed = b""
            if self.after_close > AFTER_CLOSE_BYTES:
                self.transport.abort()
                return
        if not self.unparsed and len(data) <= PARSE_PIECE_BYTES:
            super().data_received(data)  # the usual case: a few frames at most
            return
        self.unparsed += data
        self.parse_some()

    def parse_some(self) -> None:
        """Parse what was read a piece at a time, and only while the app keeps up: a read
        can hold 256 KiB of tiny frames (12,000 pings), which would otherwise be parsed in
        one go, holding up every other socket of the process, then wait in the app's queue.
        The rest stays here, and the socket unread, until the app has taken what came
        before (a flood waits in the client's own buffers)."""
        while self.unparsed and self.queue.empty() and not self.transport.is_closing():
            piece = self.unparsed[:PARSE_PIECE_BYTES]
            self.unparsed = self.unparsed[PARSE_PIECE_BYTES:]
            super().data_received(piece)
        if self.unparsed and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Any:
        message = await super().receive()
        if self.unparsed and self.queue.empty():
            self.parse_some()
        return message

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete or self.close_sent:
            starting.end(self.transport)  # accepted (or refused): no longer starting

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][EXTENSION] = {
                "write": self.write_frame,
                "buffered": self.transport.get_write_buffer_size,
                "abort": self.transport.abort,
            }

    def write_frame(self, data: bytes) -> bool:
        """Write one whole server frame; False once the socket takes no more frames (the
        handshake not done, a close sent or received, or the connection gone)."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(data)
        return True
