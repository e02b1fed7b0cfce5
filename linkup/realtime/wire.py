"""Server frames encoded once, for every socket that gets them.

A frame the hub fans out (a `message.new`, a receipt, a typing notice) is serialized once
to JSON bytes and, where the server offers the `linkup.frames` extension, framed once as a
WebSocket text frame: server frames are unmasked and Linkup turns compression off, so the
bytes on the wire are the same for every recipient, and each socket's share of the work
is one `transport.write`. Elsewhere (Daphne, Channels' `WebsocketCommunicator`) the text
goes through the plain ASGI `websocket.send`, still encoded once.

The extension: a server puts `scope["extensions"]["linkup.frames"]` = a dict with
`write(data: bytes) -> bool` (write one whole frame now; False once the socket can take
no more frames), `buffered() -> int` (bytes queued in the transport, not yet sent) and
`abort()` (drop the connection and what is queued for it). `linkup_server.transport`
provides it on uvicorn.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from linkup.core.serialization import dumps

EXTENSION = "linkup.frames"

_TEXT = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """The WebSocket frame (RFC 6455, 5.2) a server sends for a whole text message."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", _TEXT, 126, n) + payload
    return struct.pack("!BBQ", _TEXT, 127, n) + payload


class Outgoing:
    """One server frame, serialized once; its WebSocket framing made on first use.

    A frame about a message can differ for a few users (their own reactions, a message they
    deleted for themselves): `per_user` holds their frames, `for_user` picks."""

    __slots__ = ("_framed", "_text", "payload", "per_user")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._framed: bytes | None = None
        self._text: str | None = None
        self.per_user: dict[int, Outgoing] | None = None

    def for_user(self, user: int) -> Outgoing:
        """The frame as `user` gets it."""
        if self.per_user is None:
            return self
        return self.per_user.get(user, self)

    @classmethod
    def of(cls, frame: Mapping[str, Any]) -> Outgoing:
        return cls(dumps(frame))

    @property
    def framed(self) -> bytes:
        if self._framed is None:
            self._framed = text_frame(self.payload)
        return self._framed

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text
