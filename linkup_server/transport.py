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
"""

from __future__ import annotations

import os
import socket
from asyncio import BaseTransport
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from linkup.realtime.wire import EXTENSION

TCP_USER_TIMEOUT_S = float(os.environ.get("LINKUP_TCP_USER_TIMEOUT_S", "60"))


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


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's default WebSocket protocol (websockets' sans-I/O core), plus the timeout."""

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        limit_unacknowledged(transport, TCP_USER_TIMEOUT_S)

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
