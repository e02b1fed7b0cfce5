"""One user flooding a live server with one kind of request, as fast as one client can, for a
while (a process of its own, so the test that measures someone else's latency is not slowed
by it): `python -m tests.flood BASE TOKEN ROOM MODE SECONDS`. Prints a JSON summary.

Modes: ping, receipt, focus, sync (4,999 cursors a frame) over a socket that is opened again
whenever the server closes it; reads (GET /rooms from 20 threads) and rooms (POST /rooms
from 10 threads) over REST."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live import api


def frame_for(mode: str, room: int) -> str:
    if mode == "ping":
        return json.dumps({"type": "ping"})
    if mode == "receipt":
        return json.dumps({"type": "receipt", "room": room, "kind": "read", "seq": 1})
    if mode == "focus":
        return json.dumps({"type": "focus", "room": room})
    if mode == "sync":
        return json.dumps({"type": "sync", "cursors": {str(room + n): 0 for n in range(4999)}})
    raise ValueError(mode)


async def over_a_socket(ws_base: str, token: str, text: str, until: float) -> dict[str, Any]:
    seen: Counter[str] = Counter()
    sent = opened = 0
    while time.monotonic() < until:
        try:
            async with connect(
                ws_base + "/ws/chat/",
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
                max_size=None,
                ping_interval=None,
                close_timeout=0.1,
            ) as ws:
                opened += 1

                async def read() -> None:
                    async for raw in ws:
                        frame = json.loads(raw)
                        seen[frame.get("code") or frame["type"]] += 1

                reader = asyncio.ensure_future(read())
                try:
                    while time.monotonic() < until:
                        # A send the server does not read (it holds a flooder's frames
                        # unread) blocks: it counts only if it went before the end.
                        try:
                            await asyncio.wait_for(ws.send(text), until - time.monotonic())
                        except TimeoutError:
                            break
                        sent += 1
                        if sent % 20 == 0:
                            await asyncio.sleep(0)
                finally:
                    reader.cancel()
                    if time.monotonic() >= until:
                        # Drop the connection: a graceful close would wait until the server
                        # had read every frame it holds unread.
                        ws.transport.abort()
        except ConnectionClosed as exc:
            seen[f"closed {exc.rcvd.code if exc.rcvd else None}"] += 1
        except InvalidStatus as exc:
            seen[f"refused {exc.response.status_code}"] += 1
            await asyncio.sleep(0.05)
    return {"sent": sent, "sockets": opened, "answers": dict(seen)}


def over_rest(base: str, token: str, mode: str, until: float) -> dict[str, Any]:
    seen: Counter[int] = Counter()
    lock = threading.Lock()
    members = [int(m) for m in sys.argv[6].split(",")] if len(sys.argv) > 6 else []

    def worker() -> None:
        while time.monotonic() < until:
            if mode == "reads":
                status, _ = api(base, "GET", "/rooms", token=token)
            else:
                body = {"kind": "group", "name": "flood", "members": members}
                status, _ = api(base, "POST", "/rooms", body, token=token)
            with lock:
                seen[status] += 1

    threads = [threading.Thread(target=worker) for _ in range(20 if mode == "reads" else 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"sent": sum(seen.values()), "answers": {str(k): v for k, v in seen.items()}}


def main() -> None:
    base, token, room, mode, seconds = sys.argv[1:6]
    until = time.monotonic() + float(seconds)
    if mode in ("reads", "rooms"):
        summary = over_rest(base, token, mode, until)
    else:
        ws_base = base.replace("http://", "ws://")
        text = frame_for(mode, int(room))
        summary = asyncio.run(over_a_socket(ws_base, token, text, until))
    print(json.dumps({"mode": mode, **summary}))


if __name__ == "__main__":
    main()
