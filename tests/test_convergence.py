"""Convergence on PostgreSQL + Redis through a real server process: 50 senders x 100 messages
into one room get seq 1..5000, and every observer, three of which reconnect midway, ends with
exactly that sequence (the same message ids and client_ids as the REST history).

Every client here follows the wire contract (docs: /work/shared/PROTOCOL.md): senders resend the
same client_id after `rate_limited` once `retry_after_s` has passed and count a message done on
its `message.ack`; observers merge live `message.new` frames and `sync` results by seq, syncing
from the highest seq they hold contiguously from 1."""

from __future__ import annotations

import asyncio
import heapq
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.live import api, live_server, new_user

pytestmark = [pytest.mark.scaleout, pytest.mark.live]

SENDERS = 50
PER_SENDER = 100
TOTAL = SENDERS * PER_SENDER
OBSERVERS = 5
RECONNECTING = 3
MIDWAY = 2000  # acks seen before the reconnecting observers drop their sockets
WINDOW = 20  # most unacknowledged sends a sender keeps in flight (the server's burst)
OVERALL_TIMEOUT_S = 240
STEP_TIMEOUT_S = 60
HEARTBEAT_S = 20  # below the server's heartbeat_s (30): a reading-only client must still ping


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


@pytest.fixture(scope="module")
def convergence_server() -> Iterator[dict[str, Any]]:
    with live_server() as srv:
        yield srv


class Run:
    """What the whole run observed, shared by every client."""

    def __init__(self) -> None:
        self.acks: dict[str, tuple[int, int]] = {}  # client_id -> (seq, message id)
        self.rate_limited = 0
        self.reconnects = 0
        self.problems: list[str] = []  # contract violations seen by any client
        self.midway = asyncio.Event()
        self.first_send = 0.0
        self.last_ack = 0.0

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)


class Observer:
    """A member that only reads: live frames plus sync from its contiguous cursor."""

    def __init__(self, run: Run, name: str, user: dict[str, Any], url: str, room: int) -> None:
        self.run, self.name, self.user, self.url, self.room = run, name, user, url, room
        self.view: dict[int, tuple[int, str]] = {}  # seq -> (message id, client_id)
        self.contiguous = 0
        self.cross_duplicates = 0  # a seq already held, arriving again by sync or live
        self.socket_duplicates = 0  # a seq twice by message.new on one socket
        self.live_frames = 0
        self.synced_messages = 0
        self.synced_after_reconnect = 0
        self.acks_at_disconnect: int | None = None
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.heartbeat: asyncio.Task[None] | None = None
        self.heartbeat_pongs = 0  # pongs owed to heartbeat pings, not to a request
        self.closing = False

    def hold(self, message: dict[str, Any], source: str) -> None:
        if message["room"] != self.room:
            self.run.problem(f"{self.name}: {source} message of room {message['room']}")
            return
        seq, entry = message["seq"], (message["id"], message["client_id"])
        known = self.view.get(seq)
        if known is not None:
            self.cross_duplicates += 1
            if known != entry:
                self.run.problem(f"{self.name}: seq {seq} is {known} and {entry}")
            return
        self.view[seq] = entry
        while self.contiguous + 1 in self.view:
            self.contiguous += 1

    async def open(self) -> None:
        self.ws = await connect(
            self.url, additional_headers=bearer(self.user), ping_interval=None, open_timeout=30
        )
        hello = json.loads(await asyncio.wait_for(self.ws.recv(), STEP_TIMEOUT_S))
        assert hello["type"] == "hello", hello
        self.closing = False
        self.replies = asyncio.Queue()
        self.heartbeat_pongs = 0
        self.reader = asyncio.create_task(self.read(self.ws))
        self.heartbeat = asyncio.create_task(self.beat(self.ws))

    async def beat(self, ws: ClientConnection) -> None:
        """Ping every HEARTBEAT_S as the contract asks; a silent socket is closed (4408).

        Pongs all mean the same (everything committed before the ping was delivered), so
        the reader hands a request the last of any pongs in flight, never an earlier one."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self.heartbeat_pongs += 1
            await ws.send(json.dumps({"type": "ping"}))

    async def read(self, ws: ClientConnection) -> None:
        seen: set[int] = set()  # message.new seqs on this socket
        last = 0
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message.new":
                    message = frame["message"]
                    seq = message["seq"]
                    self.live_frames += 1
                    if seq in seen:
                        self.socket_duplicates += 1
                        self.run.problem(f"{self.name}: message.new seq {seq} twice on a socket")
                    elif seq < last:
                        self.run.problem(f"{self.name}: message.new seq {seq} after {last}")
                    seen.add(seq)
                    last = max(last, seq)
                    self.hold(message, "live")
                elif kind == "pong" and self.heartbeat_pongs > 0:
                    self.heartbeat_pongs -= 1
                elif kind in ("sync.result", "pong", "error"):
                    self.replies.put_nowait(frame)
        except ConnectionClosed as exc:
            if not self.closing:
                self.run.problem(f"{self.name}: socket closed by the server: {exc!r}")

    async def request(self, frame: dict[str, Any], reply: str) -> dict[str, Any]:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))
        answer = await asyncio.wait_for(self.replies.get(), STEP_TIMEOUT_S)
        assert answer["type"] == reply, answer
        return answer

    async def sync(self) -> int:
        """Sync from the contiguous cursor until has_more is false; return messages fetched."""
        fetched = 0
        while True:
            cursor = self.contiguous
            result = await self.request(
                {"type": "sync", "cursors": {str(self.room): cursor}}, "sync.result"
            )
            entries = [e for e in result["rooms"] if e["room"] == self.room]
            assert len(entries) == 1, result
            entry = entries[0]
            seqs = [m["seq"] for m in entry["messages"]]
            if seqs != sorted(set(seqs)) or (seqs and seqs[0] <= cursor):
                self.run.problem(f"{self.name}: sync from {cursor} returned seqs {seqs[:5]}…")
            for message in entry["messages"]:
                self.hold(message, "sync")
            fetched += len(seqs)
            self.synced_messages += len(seqs)
            if not entry["has_more"]:
                return fetched
            if self.contiguous == cursor:
                self.run.problem(f"{self.name}: sync from {cursor}: has_more, no progress")
                return fetched

    async def close(self) -> None:
        self.closing = True
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            await asyncio.gather(self.heartbeat, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 30)
        self.ws, self.reader, self.heartbeat = None, None, None

    async def reconnect_midway(self, away_s: float) -> None:
        await self.run.midway.wait()
        self.acks_at_disconnect = len(self.run.acks)
        await self.close()
        await asyncio.sleep(away_s)
        await self.open()
        self.synced_after_reconnect = await self.sync()
        self.run.reconnects += 1


async def send_all(run: Run, user: dict[str, Any], url: str, room: int) -> None:
    """Send PER_SENDER messages as fast as the server allows.

    Up to WINDOW sends in flight; `rate_limited` puts the client_id back (in its original
    order), pauses every send for `retry_after_s` and shrinks the window to one, which grows
    again by one per ack."""
    loop = asyncio.get_running_loop()
    client_ids = [str(uuid.uuid4()) for _ in range(PER_SENDER)]
    index = {cid: i for i, cid in enumerate(client_ids)}
    frames = {
        cid: json.dumps(
            {"type": "message.send", "room": room, "client_id": cid, "body": f"{user['name']} {i}"}
        )
        for i, cid in enumerate(client_ids)
    }
    queue = list(range(PER_SENDER))  # a heap of indices still to send
    unacked = set(client_ids)
    in_flight: set[str] = set()
    state = {"window": WINDOW, "not_before": 0.0}
    wake = asyncio.Event()

    async with connect(
        url, additional_headers=bearer(user), ping_interval=None, open_timeout=30
    ) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S))
        assert hello["type"] == "hello", hello

        async def writer() -> None:
            while unacked:
                if not queue or len(in_flight) >= state["window"]:
                    wake.clear()
                    await wake.wait()
                    continue
                delay = state["not_before"] - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
                cid = client_ids[heapq.heappop(queue)]
                in_flight.add(cid)
                if not run.first_send:
                    run.first_send = time.monotonic()
                await ws.send(frames[cid])

        writing = asyncio.create_task(writer())
        try:
            while unacked:
                raw = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
                if isinstance(raw, str) and raw.startswith('{"type":"message.new"'):
                    continue  # senders are members too; only their acks matter here
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message.ack":
                    cid, message = frame["client_id"], frame["message"]
                    if cid not in index or message["client_id"] != cid:
                        run.problem(f"{user['name']}: ack for {cid}: {message}")
                        continue
                    if message["sender"]["id"] != user["id"] or message["room"] != room:
                        run.problem(f"{user['name']}: ack with a foreign message {message}")
                    got = (message["seq"], message["id"])
                    if cid in run.acks:  # not expected: each client_id is acked once
                        run.problem(f"{user['name']}: {cid} acked again as {got}")
                    run.acks.setdefault(cid, got)
                    unacked.discard(cid)
                    in_flight.discard(cid)
                    state["window"] = min(WINDOW, state["window"] + 1)
                    run.last_ack = time.monotonic()
                    if len(run.acks) >= MIDWAY:
                        run.midway.set()
                    wake.set()
                elif kind == "error":
                    cid = frame.get("ref")
                    if frame["code"] != "rate_limited" or cid not in in_flight:
                        run.problem(f"{user['name']}: unexpected error {frame}")
                        continue
                    run.rate_limited += 1
                    in_flight.discard(cid)
                    heapq.heappush(queue, index[cid])
                    state["window"] = 1
                    state["not_before"] = max(
                        state["not_before"], loop.time() + float(frame["retry_after_s"])
                    )
                    wake.set()
        finally:
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)


def history(base: str, room: int, token: str) -> dict[int, tuple[int, str]]:
    """The room's messages by REST, paged forward: seq -> (message id, client_id)."""
    found: dict[int, tuple[int, str]] = {}
    after = 0
    while True:
        status, page = api(
            base, "GET", f"/rooms/{room}/messages?after_seq={after}&limit=100", token=token
        )
        assert status == 200, page
        for message in page["messages"]:
            assert message["seq"] not in found, f"seq {message['seq']} twice in history"
            found[message["seq"]] = (message["id"], message["client_id"])
        if not page["has_more"]:
            return found
        assert page["messages"], "has_more with an empty page"
        after = page["messages"][-1]["seq"]


async def test_fifty_senders_converge_with_reconnecting_observers(
    convergence_server: dict[str, Any],
) -> None:
    base, url = convergence_server["base"], convergence_server["ws"] + "/ws/chat/"
    senders = [new_user(base, "cs") for _ in range(SENDERS)]
    watchers = [new_user(base, "co") for _ in range(OBSERVERS)]
    status, room = api(
        base,
        "POST",
        "/rooms",
        {
            "kind": "group",
            "name": "convergence",
            "members": [u["id"] for u in senders[1:] + watchers],
        },
        senders[0]["token"],
    )
    assert status == 201, room
    room_id = room["id"]
    run = Run()
    observers = [
        Observer(run, f"observer{i}", user, url, room_id) for i, user in enumerate(watchers)
    ]
    reconnecting = observers[:RECONNECTING]

    async def scenario() -> tuple[float, float, dict[int, tuple[int, str]]]:
        for observer in observers:
            await observer.open()
        await asyncio.gather(
            *(send_all(run, user, url, room_id) for user in senders),
            *(o.reconnect_midway(0.5 + 0.25 * i) for i, o in enumerate(reconnecting)),
        )
        sending_s = run.last_ack - run.first_send
        settled = time.monotonic()

        async def settle(observer: Observer) -> None:
            await observer.request({"type": "ping"}, "pong")
            await observer.sync()

        await asyncio.gather(*(settle(o) for o in observers))
        settle_s = time.monotonic() - settled
        for observer in observers:
            await observer.close()
        rest = await asyncio.to_thread(history, base, room_id, watchers[-1]["token"])
        return sending_s, settle_s, rest

    try:
        sending_s, settle_s, rest = await asyncio.wait_for(scenario(), OVERALL_TIMEOUT_S)
    finally:
        for observer in observers:
            observer.closing = True
        await asyncio.gather(
            *(o.ws.close() for o in observers if o.ws is not None), return_exceptions=True
        )
        tasks = [t for o in observers for t in (o.reader, o.heartbeat) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    print(
        f"\nconvergence: {TOTAL} messages from {SENDERS} senders in {sending_s:.1f} s "
        f"({TOTAL / sending_s:.0f} msg/s); settled (ping + final sync) in {settle_s:.2f} s; "
        f"reconnects: {run.reconnects} (acks seen at each disconnect: "
        f"{[o.acks_at_disconnect for o in reconnecting]}; fetched by the sync after "
        f"reconnecting: {[o.synced_after_reconnect for o in reconnecting]}); "
        f"duplicates across sync and live (expected, deduplicated by seq): "
        f"{[o.cross_duplicates for o in observers]}, total "
        f"{sum(o.cross_duplicates for o in observers)}; per-socket duplicate message.new: "
        f"{sum(o.socket_duplicates for o in observers)}; rate_limited retries: "
        f"{run.rate_limited}"
    )

    assert run.problems == [], run.problems
    # The acks (one per client_id, each sender stops once all of its own are in) are exactly
    # seq 1..TOTAL, of TOTAL distinct messages.
    assert sorted(seq for seq, _ in run.acks.values()) == list(range(1, TOTAL + 1))
    assert len({mid for _, mid in run.acks.values()}) == TOTAL
    # The REST history is the same sequence, and agrees with every ack.
    assert sorted(rest) == list(range(1, TOTAL + 1))
    assert {cid: (seq, mid) for seq, (mid, cid) in rest.items()} == run.acks
    for observer in observers:
        assert observer.socket_duplicates == 0, observer.name
        assert sorted(observer.view) == list(range(1, TOTAL + 1)), observer.name
        assert observer.view == rest, observer.name
    # The reconnects happened midway, and their sync had something to catch up on.
    for observer in reconnecting:
        assert (observer.acks_at_disconnect or TOTAL) < TOTAL, observer.name
        assert observer.synced_after_reconnect > 0, observer.name
