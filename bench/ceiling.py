"""The ceiling: a bare ASGI WebSocket broadcaster, no framework, no database, no layer.

    uvicorn bench.ceiling:app

A socket at /ws/chat/<room>/ joins that room; every text frame it sends goes to every socket
of the room (the sender's included), as `{"message": ...}` frames of the Channels tutorial
do, so the load generator drives it exactly as it drives the tutorial baseline. It keeps
nothing and checks nothing: it is what the work costs with no durability at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

rooms: defaultdict[str, set[Send]] = defaultdict(set)


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ceiling"})
        return
    parts = [p for p in scope["path"].split("/") if p]
    if parts[:2] != ["ws", "chat"] or len(parts) != 3:
        await send({"type": "websocket.close", "code": 4404})
        return
    members = rooms[parts[2]]
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    members.add(send)
    try:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                break
            text = event.get("text")
            if text is None:
                continue
            frame = {"type": "websocket.send", "text": text}
            for peer in list(members):
                try:
                    await peer(frame)
                except Exception:  # the peer went away meanwhile
                    members.discard(peer)
    finally:
        members.discard(send)
