"""Helpers for socket tests: connect a user with WebsocketCommunicator, read frames by type."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from linkup.realtime.auth import SocketAuthMiddleware
from linkup.realtime.routing import websocket_urlpatterns
from linkup.realtime.wire import EXTENSION

APP = SocketAuthMiddleware(URLRouter(websocket_urlpatterns))


def _is_presence(output: dict[str, Any]) -> bool:
    return output.get("type") == "websocket.send" and '"type":"presence"' in (
        output.get("text") or ""
    )


class Socket(WebsocketCommunicator):
    """A test socket that, unless `presence` is set, drops `presence` frames: they arrive
    whenever someone connects, and most tests are about something else."""

    presence = False

    async def receive_output(self, timeout: float = 1) -> Any:
        while True:
            output = await super().receive_output(timeout)
            if self.presence or not _is_presence(output):
                return output

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        if await super().receive_nothing(timeout, interval):
            return True
        if self.presence:
            return False
        kept = []
        while not self.output_queue.empty():
            output = self.output_queue.get_nowait()
            if not _is_presence(output):
                kept.append(output)
        for output in kept:
            self.output_queue.put_nowait(output)
        if kept:
            return False
        return await self.receive_nothing(timeout, interval)  # only presence: look again


def offer_frames(comm: WebsocketCommunicator) -> None:
    """Give the socket the `linkup.frames` extension, as linkup_server's uvicorn does: the
    hub then writes whole frames, which this unwraps into the communicator's output."""

    def write(data: bytes) -> bool:
        length = data[1] & 0x7F
        start = 2 if length < 126 else 4 if length == 126 else 10
        assert data[0] == 0x81, "a whole text frame"
        comm.output_queue.put_nowait({"type": "websocket.send", "text": data[start:].decode()})
        return True

    comm.scope.setdefault("extensions", {})[EXTENSION] = {
        "write": write,
        "buffered": lambda: 0,
        "abort": lambda: None,
    }


async def connect(
    token: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/ws/chat/",
    expect_hello: bool = True,
    presence: bool = False,
    raw: bool = False,
) -> WebsocketCommunicator:
    """Open a socket; `raw` offers the hub the frames extension (see `offer_frames`)."""
    hdrs = list(headers or [])
    if token is not None:
        hdrs.append((b"authorization", f"Bearer {token}".encode()))
    comm = Socket(APP, path, headers=hdrs)
    comm.presence = presence
    if raw:
        offer_frames(comm)
    connected, code = await comm.connect(timeout=5)
    if expect_hello:
        assert connected, f"refused with {code}"
        hello = await recv(comm)
        assert hello["type"] == "hello"
        await joined()
    comm.connected_result = (connected, code)  # type: ignore[attr-defined]
    return comm


async def joined(timeout: float = 5) -> None:
    """Wait until every socket of this loop has finished its presence join (which writes to
    the database after `hello`): a test that ends sooner would flush the tables under it."""
    import asyncio
    import time

    from linkup.realtime.liveness import liveness

    deadline = time.monotonic() + timeout
    while liveness().joining:
        assert time.monotonic() < deadline, "presence join did not finish"
        await asyncio.sleep(0.005)


async def recv(comm: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=timeout))


async def recv_type(comm: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict[str, Any]:
    """Return the next frame of `kind`, failing on any other frame type first."""
    frame = await recv(comm, timeout)
    assert frame["type"] == kind, frame
    return frame


async def send(comm: WebsocketCommunicator, frame: dict[str, Any]) -> None:
    await comm.send_to(text_data=json.dumps(frame))


async def drain(comm: WebsocketCommunicator, timeout: float = 0.2) -> list[dict[str, Any]]:
    """Every frame that arrives until `timeout` passes quietly."""
    frames = []
    while not await comm.receive_nothing(timeout=timeout):
        frames.append(await recv(comm))
    return frames


def db(func: Any) -> Any:
    return database_sync_to_async(func)
