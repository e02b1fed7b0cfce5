"""Typing and presence latency under a steady message load (issue 4's measurement).

    python bench/latency.py [--rate 300] [--seconds 20]

Starts a server of the current configuration (DATABASE_URL / REDIS_URL as for the server),
keeps `rate` messages a second flowing between 60 senders in 30 rooms, and meanwhile
measures how long a `typing` frame and an `online` presence frame take to reach another
client. Prints p50 / p90 / p99 / max in milliseconds. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import ClientConnection, connect

from tests.live import api, live_server, new_user


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    if not ordered:
        return "n=0 (no sample completed)"

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"n={len(ordered)} p50={at(0.50):.1f} p90={at(0.90):.1f} p99={at(0.99):.1f} "
        f"max={ordered[-1] * 1000:.1f} ms (mean {statistics.mean(ordered) * 1000:.1f})"
    )


ACKS = {"count": 0}


async def drain(ws: ClientConnection, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(ws.recv(), 0.5)
        except TimeoutError:
            continue
        if '"type":"message.ack"' in str(raw):
            ACKS["count"] += 1


async def run(base: str, ws_url: str, rate: float, seconds: float) -> dict[str, str]:
    headers = lambda u: {"Authorization": f"Bearer {u['token']}"}  # noqa: E731
    senders = [new_user(base, "l") for _ in range(60)]
    for i in range(0, 60, 2):
        api(
            base,
            "POST",
            "/rooms",
            {"kind": "direct", "members": [senders[i + 1]["id"]]},
            senders[i]["token"],
        )
    rooms = {}
    for user in senders:
        _, body = api(base, "GET", "/rooms", token=user["token"])
        rooms[user["id"]] = body["rooms"][0]["id"]
    typist, reader, comer = (new_user(base, "p") for _ in range(3))
    _, probe = api(
        base,
        "POST",
        "/rooms",
        {"kind": "group", "name": "probe", "members": [reader["id"], comer["id"]]},
        typist["token"],
    )
    stop = asyncio.Event()
    sockets = [await connect(ws_url, additional_headers=headers(u)) for u in senders]
    drains = [asyncio.create_task(drain(ws, stop)) for ws in sockets]

    async def load() -> None:
        interval = len(sockets) / rate

        async def one(ws: ClientConnection, room: int) -> None:
            while not stop.is_set():
                await ws.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "room": room,
                            "client_id": str(uuid.uuid4()),
                            "body": "load",
                        }
                    )
                )
                await asyncio.sleep(interval)

        await asyncio.gather(
            *(one(ws, rooms[u["id"]]) for ws, u in zip(sockets, senders, strict=True))
        )

    load_task = asyncio.create_task(load())
    await asyncio.sleep(2)  # let the load settle
    acks_before, measured_from = ACKS["count"], time.monotonic()
    typing_latency: list[float] = []
    presence_latency: list[float] = []
    presence_after_hello: list[float] = []
    async with (
        connect(ws_url, additional_headers=headers(typist)) as t_ws,
        connect(ws_url, additional_headers=headers(reader)) as r_ws,
    ):
        deadline = time.monotonic() + seconds
        state = "start"
        while time.monotonic() < deadline:
            sent = time.monotonic()
            await t_ws.send(json.dumps({"type": "typing", "room": probe["id"], "state": state}))
            while True:
                frame = json.loads(await asyncio.wait_for(r_ws.recv(), 10))
                if frame["type"] == "typing" and frame["state"] == state:
                    typing_latency.append(time.monotonic() - sent)
                    break
            state = "stop" if state == "start" else "start"
            await asyncio.sleep(0.05)
            if len(presence_latency) < 30 and len(typing_latency) % 10 == 0:
                came = time.monotonic()
                c_ws = await connect(ws_url, additional_headers=headers(comer))
                await asyncio.wait_for(c_ws.recv(), 10)  # hello: the server has it now
                accepted = time.monotonic()
                while True:
                    frame = json.loads(await asyncio.wait_for(r_ws.recv(), 10))
                    if frame["type"] == "presence" and frame["status"] == "online":
                        presence_latency.append(time.monotonic() - came)
                        presence_after_hello.append(time.monotonic() - accepted)
                        break
                await c_ws.close()
                await asyncio.sleep(0.1)
                # Let the comer go offline (grace) before it comes again.
                while True:
                    frame = json.loads(await asyncio.wait_for(r_ws.recv(), 10))
                    if frame["type"] == "presence" and frame["status"] == "offline":
                        break
    achieved = (ACKS["count"] - acks_before) / (time.monotonic() - measured_from)
    stop.set()
    load_task.cancel()
    await asyncio.gather(load_task, *drains, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    return {
        "typing": percentiles(typing_latency),
        "presence online (incl. handshake)": percentiles(presence_latency),
        "presence online (after its hello)": percentiles(presence_after_hello),
        "messages acknowledged": f"{achieved:.0f}/s",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    fast_presence = {
        "LINKUP_PRESENCE_GRACE_S": "0.5",
        "LINKUP_PRESENCE_REFRESH_S": "0.25",
        # The probe sends a typing frame every ~50 ms: far above what a person does, so
        # lift the per-user typing limit (2/s) that would otherwise refuse it.
        "LINKUP_TYPING_RATE_PER_S": "1000",
        "LINKUP_TYPING_BURST": "1000",
    }
    with live_server(fast_presence) as server:
        results = asyncio.run(
            run(server["base"], server["ws"] + "/ws/chat/", args.rate, args.seconds)
        )
    for name, line in results.items():
        print(f"{name:34s} {line}  (offered load {args.rate:.0f} msg/s)")


if __name__ == "__main__":
    main()
