"""The load generator: real WebSocket clients speaking a contender's protocol.

Two dialects:
- `linkup`: users registered and rooms made over Linkup's REST API, one socket per client at
  /ws/chat/ with a bearer token (ready at its `hello`), `message.send` frames out and
  `message.new` frames in, matched by client_id;
- `tutorial` (the baseline and the ceiling): a socket per client at /ws/chat/<room>/,
  `{"message": ...}` out and in, matched by the text.

A workload is open loop (a total rate, spread evenly over the senders, on a fixed schedule)
or closed loop (each sender sends its next message when its previous one came back to it).
Every delivery is checked: expected (each message, to every socket of its room, the
sender's included), received, lost and duplicated, and its latency from the moment the
frame was written to the moment a socket read it, on one monotonic clock."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.servers import Server
from tests.live import api, new_user

# -- REST set-up (Linkup) ----------------------------------------------------------------------


def make_users(base: str, count: int, run: str) -> list[dict[str, Any]]:
    """Register `count` users over REST (a few at a time: the server hashes passwords)."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: new_user(base, f"b{run}"), range(count)))


def make_room(base: str, members: list[dict[str, Any]], name: str) -> int:
    owner, others = members[0], members[1:]
    status, body = api(
        base,
        "POST",
        "/rooms",
        {"kind": "group", "name": name, "members": [m["id"] for m in others]},
        owner["token"],
    )
    if status != 201:
        raise RuntimeError(f"POST /rooms answered {status}: {body}")
    return int(body["id"])


# -- clients -----------------------------------------------------------------------------------


@dataclass
class Stats:
    sent: int = 0
    expected: int = 0
    received: int = 0
    duplicates: int = 0
    unknown: int = 0
    acked: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    closed: int = 0
    latencies: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)  # every client connected so far
    measure_from: float = 0.0
    last_delivery: float = 0.0
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def deliver(self, client: Client, key: str, now: float) -> None:
        at = self.sent_at.get(key)
        if at is None:
            self.unknown += 1
            return
        if key in client.seen:
            self.duplicates += 1
            return
        client.seen.add(key)
        self.received += 1
        if at >= self.measure_from:
            self.latencies.append(now - at)
        if client.waiting == key:
            client.waiting = None
            client.back.set()
        self.last_delivery = now
        if self.received >= self.expected:
            self.caught_up.set()

    async def drain(self, seconds: float) -> None:
        """Wait until every expected delivery arrived, or `seconds` passed."""
        self.caught_up.clear()
        if self.received >= self.expected:
            return
        try:
            async with asyncio.timeout(seconds):
                await self.caught_up.wait()
        except TimeoutError:
            pass


@dataclass
class Client:
    ws: ClientConnection
    room: Any  # a Linkup room id, or a tutorial room name
    seen: set[str] = field(default_factory=set)
    waiting: str | None = None
    back: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


def _linkup_key(raw: str | bytes, stats: Stats) -> str | None:
    text = raw if isinstance(raw, str) else raw.decode()
    if '"type":"message.new"' in text:
        return str(orjson.loads(text)["message"]["client_id"])
    if '"type":"message.ack"' in text:
        stats.acked += 1
    elif '"type":"error"' in text:
        stats.errors[orjson.loads(text).get("code", "?")] += 1
    return None


def _tutorial_key(raw: str | bytes, stats: Stats) -> str | None:
    return str(orjson.loads(raw)["message"])


async def _read(client: Client, stats: Stats, key_of: Callable[[Any, Stats], str | None]) -> None:
    try:
        async for raw in client.ws:
            now = time.perf_counter()
            key = key_of(raw, stats)
            if key is not None:
                stats.deliver(client, key, now)
    except ConnectionClosed:
        pass
    stats.closed += 1


def _frame(protocol: str, room: Any, key: str) -> str:
    if protocol == "linkup":
        return orjson.dumps(
            {"type": "message.send", "room": room, "client_id": key, "body": "bench " + key[:8]}
        ).decode()
    return orjson.dumps({"message": key}).decode()


async def open_client(server: Server, i: int, room: Any, token: str | None) -> ClientConnection:
    options: dict[str, Any] = {
        "compression": None,
        "max_size": 2**22,
        "ping_interval": None,
        "open_timeout": 60,
        "close_timeout": 5,
    }
    if server.protocol == "linkup":
        ws = await connect(
            server.ws(i) + "/ws/chat/",
            additional_headers={"Authorization": f"Bearer {token}"},
            **options,
        )
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
        if hello.get("type") != "hello":
            raise RuntimeError(f"expected hello, got {hello}")
        return ws
    return await connect(f"{server.ws(i)}/ws/chat/{room}/", **options)


async def connect_all(
    server: Server, plan: list[tuple[Any, str | None]], stats: Stats, concurrency: int = 100
) -> tuple[list[Client], float, int]:
    """Open one client per (room, token) of `plan`; return them, the seconds it took, and
    how many handshakes failed."""
    gate = asyncio.Semaphore(concurrency)
    key_of = _linkup_key if server.protocol == "linkup" else _tutorial_key
    failures = 0

    async def one(i: int, room: Any, token: str | None) -> Client | None:
        nonlocal failures
        async with gate:
            try:
                ws = await open_client(server, i, room, token)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, RuntimeError) as exc:
                failures += 1
                if failures <= 3:
                    print(f"    handshake failed: {exc!r}", flush=True)
                return None
        client = Client(ws, room)
        client.reader = asyncio.create_task(_read(client, stats, key_of))
        stats.clients.append(client)
        return client

    started = time.perf_counter()
    made = await asyncio.gather(*(one(i, r, t) for i, (r, t) in enumerate(plan)))
    return [c for c in made if c is not None], time.perf_counter() - started, failures


async def close_all(clients: list[Client]) -> None:
    async def one(client: Client) -> None:
        try:
            await client.ws.close()
        except Exception:
            pass
        if client.reader is not None:
            client.reader.cancel()

    gate = asyncio.Semaphore(500)

    async def gated(client: Client) -> None:
        async with gate:
            await one(client)

    await asyncio.gather(*(gated(c) for c in clients))


async def heartbeat(protocol: str, stats: Stats, every: float = 20.0) -> None:
    """Keep Linkup's heartbeat (a `ping` frame well within heartbeat_s) on every client
    connected so far, spread over the period, as a client following the contract does: the
    server closes sockets silent for 75 s."""
    if protocol != "linkup":
        return
    frame = orjson.dumps({"type": "ping"}).decode()
    while True:
        started = time.perf_counter()
        clients = list(stats.clients)
        for client in clients:
            try:
                await client.ws.send(frame)
            except ConnectionClosed:
                pass
            await asyncio.sleep(every / max(1, len(clients)))
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))


async def send_one(
    protocol: str, client: Client, stats: Stats, sockets_in_room: int, closed: bool
) -> None:
    key = uuid.uuid4().hex
    stats.sent_at[key] = time.perf_counter()
    stats.expected += sockets_in_room
    stats.sent += 1
    if closed:
        client.waiting = key
        client.back.clear()
    try:
        await client.ws.send(_frame(protocol, client.room, key))
    except ConnectionClosed:
        stats.errors["send_on_closed_socket"] += 1


async def open_loop(
    protocol: str,
    senders: list[Client],
    in_room: Counter[Any],
    stats: Stats,
    rate: float,
    seconds: float,
) -> float:
    """Send `rate` messages a second for `seconds`, round-robin over the senders, on a
    fixed schedule (a late tick sends what is due, so the offered rate holds)."""
    total = max(1, round(rate * seconds))
    started = time.perf_counter()
    n = 0
    while n < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while n < due:
            client = senders[n % len(senders)]
            stats.lag.append(time.perf_counter() - (started + n / rate))
            await send_one(protocol, client, stats, in_room[client.room], closed=False)
            n += 1
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def closed_loop(
    protocol: str, senders: list[Client], in_room: Counter[Any], stats: Stats, seconds: float
) -> float:
    """Each sender sends, waits until its own message comes back, and sends again."""
    started = time.perf_counter()
    deadline = started + seconds

    async def one(client: Client) -> None:
        while time.perf_counter() < deadline:
            await send_one(protocol, client, stats, in_room[client.room], closed=True)
            try:
                await asyncio.wait_for(client.back.wait(), 10)
            except TimeoutError:
                return

    await asyncio.gather(*(one(c) for c in senders))
    return time.perf_counter() - started


def percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summary(stats: Stats) -> dict[str, Any]:
    ordered = sorted(stats.latencies)
    lag = sorted(stats.lag)
    return {
        "sent": stats.sent,
        "acked": stats.acked,
        "expected": stats.expected,
        "received": stats.received,
        "lost": stats.expected - stats.received,
        "duplicates": stats.duplicates,
        "unmatched": stats.unknown,
        "errors": dict(stats.errors),
        "p50_ms": percentile(ordered, 0.50),
        "p90_ms": percentile(ordered, 0.90),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] * 1000 if ordered else None,
        "latency_samples": len(ordered),
        "generator_lag_p99_ms": percentile(lag, 0.99),
    }
