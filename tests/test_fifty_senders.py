"""50 senders x 100 messages into one room through a real server on PostgreSQL + Redis:
seq 1..5000, and every observer, three of which reconnect midway, ends with exactly that."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.live import api, new_user

pytestmark = [pytest.mark.scaleout, pytest.mark.live]

SENDERS = 50
PER_SENDER = 100
TOTAL = SENDERS * PER_SENDER


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


class Observer:
    """A client that follows the contract: live frames, sync from its contiguous cursor."""

    def __init__(self, user: dict[str, Any], url: str, room: int) -> None:
        self.user, self.url, self.room = user, url, room
        self.view: dict[int, int] = {}  # seq -> message id
        self.socket_seqs: list[int] = []  # message.new seqs on the current socket
        self.duplicates_across_sources = 0
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def cursor(self) -> int:
        seq = 0
        while seq + 1 in self.view:
            seq += 1
        return seq

    def hold(self, message: dict[str, Any]) -> None:
        known = self.view.setdefault(message["seq"], message["id"])
        assert known == message["id"], "one seq, two messages"

    async def open(self) -> None:
        self.ws = await connect(self.url, additional_headers=bearer(self.user), ping_interval=None)
        self.socket_seqs = []
        hello = json.loads(await self.ws.recv())
        assert hello["type"] == "hello"
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame["type"] == "message.new" and frame["message"]["room"] == self.room:
                seq = frame["message"]["seq"]
                assert seq not in self.socket_seqs, f"seq {seq} twice on one socket"
                assert not self.socket_seqs or seq > self.socket_seqs[-1], "out of order"
                self.socket_seqs.append(seq)
                if seq in self.view:
                    self.duplicates_across_sources += 1
                self.hold(frame["message"])
            future = self.waiting.pop(frame["type"], None)
            if future is not None and not future.done():
                future.set_result(frame)

    async def request(self, frame: dict[str, Any], reply: str) -> dict[str, Any]:
        assert self.ws is not None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[reply] = future
        await self.ws.send(json.dumps(frame))
        return await asyncio.wait_for(future, 30)

    async def sync(self) -> None:
        while True:
            result = await self.request(
                {"type": "sync", "cursors": {str(self.room): self.cursor()}}, "sync.result"
            )
            (entry,) = [e for e in result["rooms"] if e["room"] == self.room]
            for message in entry["messages"]:
                if message["seq"] in self.view:
                    self.duplicates_across_sources += 1
                self.hold(message)
            if not entry["has_more"]:
                return

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 10)  # re-raises what the reader asserted
        self.ws = None


async def sender(
    user: dict[str, Any],
    url: str,
    room: int,
    acks: dict[str, int],
    counters: dict[str, int],
    progress: asyncio.Event,
) -> None:
    """Send PER_SENDER messages, resending the same client_id after rate_limited."""
    async with connect(url, additional_headers=bearer(user), ping_interval=None) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        pending = [str(uuid.uuid4()) for _ in range(PER_SENDER)]
        frames = {
            cid: json.dumps(
                {
                    "type": "message.send",
                    "room": room,
                    "client_id": cid,
                    "body": f"{user['name']} {i}",
                }
            )
            for i, cid in enumerate(pending)
        }
        for cid in pending:
            await ws.send(frames[cid])
        unacked = set(pending)
        while unacked:
            raw = await asyncio.wait_for(ws.recv(), 60)
            if raw.startswith('{"type":"message.new"'):
                continue  # senders are members too; only their acks matter here
            frame = json.loads(raw)
            if frame["type"] == "message.ack":
                acks[frame["client_id"]] = frame["message"]["seq"]
                unacked.discard(frame["client_id"])
                if len(acks) >= TOTAL // 2:
                    progress.set()
            elif frame["type"] == "error":
                assert frame["code"] == "rate_limited", frame
                counters["rate_limited"] += 1
                await asyncio.sleep(frame["retry_after_s"])
                await ws.send(frames[frame["ref"]])


async def test_fifty_senders_converge(server: dict[str, Any]) -> None:
    base, url = server["base"], server["ws"] + "/ws/chat/"
    senders = [new_user(base, "s") for _ in range(SENDERS)]
    observers_users = [new_user(base, "o") for _ in range(5)]
    status, room = api(
        base,
        "POST",
        "/rooms",
        {
            "kind": "group",
            "name": "converge",
            "members": [u["id"] for u in senders[1:] + observers_users],
        },
        senders[0]["token"],
    )
    assert status == 201
    observers = [Observer(u, url, room["id"]) for u in observers_users]
    for observer in observers:
        await observer.open()
    acks: dict[str, int] = {}
    counters = {"rate_limited": 0, "reconnects": 0}
    progress = asyncio.Event()
    started = time.monotonic()

    async def reconnect_midway(observer: Observer) -> None:
        await progress.wait()
        await observer.close()
        await asyncio.sleep(0.5)
        await observer.open()
        await observer.sync()
        counters["reconnects"] += 1

    try:
        await asyncio.wait_for(
            asyncio.gather(
                *(sender(u, url, room["id"], acks, counters, progress) for u in senders),
                *(reconnect_midway(o) for o in observers[:3]),
            ),
            240,
        )
        elapsed = time.monotonic() - started
        for observer in observers:
            await observer.request({"type": "ping"}, "pong")
            await observer.sync()
    finally:
        for observer in observers:
            await observer.close()

    assert sorted(acks.values()) == list(range(1, TOTAL + 1))
    history: dict[int, tuple[int, str]] = {}
    after = 0
    while True:
        status, page = api(
            base,
            "GET",
            f"/rooms/{room['id']}/messages?after_seq={after}&limit=100",
            token=observers_users[0]["token"],
        )
        assert status == 200
        for message in page["messages"]:
            history[message["seq"]] = (message["id"], message["client_id"])
        if not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
    assert sorted(history) == list(range(1, TOTAL + 1))
    assert len({mid for mid, _ in history.values()}) == TOTAL
    assert {cid: seq for seq, (_, cid) in history.items()} == acks
    for observer in observers:
        assert sorted(observer.view) == list(range(1, TOTAL + 1))
        assert {seq: mid for seq, (mid, _) in history.items()} == observer.view
    assert counters["reconnects"] == 3
    print(
        f"\nconvergence: {TOTAL} messages from {SENDERS} senders in {elapsed:.1f} s "
        f"({TOTAL / elapsed:.0f} msg/s); {counters['reconnects']} observers reconnected; "
        f"{counters['rate_limited']} rate_limited retries; duplicates across sync and live "
        f"(deduplicated by seq): {[o.duplicates_across_sources for o in observers]}"
    )
