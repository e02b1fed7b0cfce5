"""Helpers for socket tests: connect a user with WebsocketCommunicator, read frames by type."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from linkup.middleware import SocketAuthMiddleware
from linkup.routing import websocket_urlpatterns

APP = SocketAuthMiddleware(URLRouter(websocket_urlpatterns))


async def connect(
    token: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    path: str = "/ws/chat/",
    expect_hello: bool = True,
) -> WebsocketCommunicator:
    hdrs = list(headers or [])
    if token is not None:
        hdrs.append((b"authorization", f"Bearer {token}".encode()))
    comm = WebsocketCommunicator(APP, path, headers=hdrs)
    connected, code = await comm.connect(timeout=5)
    if expect_hello:
        assert connected, f"refused with {code}"
        hello = await recv(comm)
        assert hello["type"] == "hello"
    comm.connected_result = (connected, code)  # type: ignore[attr-defined]
    return comm


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
