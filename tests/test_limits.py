"""Limits shared by every server process through Redis: the shared bucket answers exactly what
the in-process one answers, one budget holds across processes on the socket and REST paths,
connections per user are counted across processes (a killed process's expire), and while
Redis does not answer the limits fail open to each process's own."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from linkup.realtime.presence_store import CHAT, PresenceBook, RedisPresence
from linkup.realtime.ratelimit import Bucket, LocalLimiter, SharedLimiter, take
from tests.faults.services import RedisServer
from tests.live import api, free_port, live_server, new_user, send_over_rest
from tests.test_ratelimit import bursts, float_gaps, float_rates, float_starts, run, times_from

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.scaleout


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


# -- the shared bucket is take() --------------------------------------------------------------


@needs_redis
@given(float_rates, bursts, float_starts, float_gaps)
def test_shared_bucket_answers_what_take_answers(
    rate: float, burst: int, start: float, gaps: list[float]
) -> None:
    """The Lua bucket and take() agree exactly (every wait, to the last bit) on any rate,
    burst and non-decreasing times: the Redis limit is the limit test_ratelimit.py proves."""
    times = times_from(start, gaps)

    async def scenario() -> list[float]:
        client = aioredis.Redis.from_url(REDIS_URL)
        prefix = "t" + uuid.uuid4().hex[:10]
        try:
            # A generous timeout: a fallback (local, on the real clock) would not be this test.
            shared = SharedLimiter(client, prefix, "send", LocalLimiter(), timeout_s=5)
            waits = [await shared.hit("u", rate, burst, now=t) for t in times]
            assert shared.outage.down_until == 0, "Redis did not answer"
            return waits
        finally:
            await client.delete(f"{prefix}:limit:send:u")
            await client.aclose()

    assert asyncio.run(scenario()) == run(times, rate, burst)


@needs_redis
@given(float_rates, bursts, float_starts, float_gaps, st.lists(st.booleans(), min_size=60))
def test_shared_bucket_refunds_as_take_does(
    rate: float, burst: int, start: float, gaps: list[float], refunds: list[bool]
) -> None:
    """A charge given back (cost -1, a right password at sign-in) in Lua is take()'s too."""
    times = times_from(start, gaps)
    costs = [-1 if refund else 1 for refund in refunds[: len(times)]]

    async def scenario() -> list[float]:
        client = aioredis.Redis.from_url(REDIS_URL)
        prefix = "t" + uuid.uuid4().hex[:10]
        try:
            shared = SharedLimiter(client, prefix, "login", LocalLimiter(), timeout_s=5)
            waits = [
                await shared.hit("u", rate, burst, now=t, cost=c)
                for t, c in zip(times, costs, strict=True)
            ]
            assert shared.outage.down_until == 0, "Redis did not answer"
            return waits
        finally:
            await client.delete(f"{prefix}:limit:login:u")
            await client.aclose()

    bucket: Bucket | None = None
    expected = []
    for now, cost in zip(times, costs, strict=True):
        bucket, wait = take(bucket, now, rate, burst, cost)
        expected.append(wait)
    assert asyncio.run(scenario()) == expected


@needs_redis
def test_an_idle_bucket_expires_once_it_would_be_full() -> None:
    async def scenario() -> tuple[int, float]:
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            prefix = "t" + uuid.uuid4().hex[:10]
            shared = SharedLimiter(client, prefix, "send", LocalLimiter())
            await shared.hit("u", 4.0, 2)
            return await client.pttl(f"{prefix}:limit:send:u"), 2 / 4.0
        finally:
            await client.aclose()

    ttl_ms, refill_s = asyncio.run(scenario())
    # Kept for the refill time and a second more, then gone: no key outlives its meaning.
    assert refill_s * 1000 < ttl_ms <= refill_s * 1000 + 1000


# -- fail open --------------------------------------------------------------------------------


def test_a_refused_redis_leaves_the_decision_to_this_process() -> None:
    """Nothing listens on the port: every answer is the local bucket's, and after the first
    failure Redis is not asked again until the pause is over."""
    port = free_port()

    async def scenario() -> tuple[list[float], list[float], bool]:
        client = aioredis.Redis(port=port, socket_connect_timeout=0.2)
        try:
            shared = SharedLimiter(client, "t", "send", LocalLimiter(), pause_s=60)
            got = [await shared.hit("u", 0.5, 3) for _ in range(6)]
            paused = shared.outage.down_until > time.monotonic() + 50
        finally:
            await client.aclose()
        reference = LocalLimiter()
        return got, [reference.hit("u", 0.5, 3) for _ in range(6)], paused

    got, reference, paused = asyncio.run(scenario())
    assert [w == 0 for w in got] == [True, True, True, False, False, False]
    assert [w == 0 for w in got] == [w == 0 for w in reference]
    assert paused


def test_a_silent_redis_costs_one_timeout_then_nothing() -> None:
    """A Redis that accepts and never answers: the first hit gives up after timeout_s and
    answers locally; the next ones do not wait on it at all (one connection, no more)."""

    async def scenario() -> tuple[list[float], int, bool]:
        accepted = []

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            await reader.read()  # never answer

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = aioredis.Redis(port=port)
        try:
            shared = SharedLimiter(client, "t", "send", LocalLimiter(), timeout_s=0.2)
            got = [await asyncio.wait_for(shared.hit("u", 1.0, 2), 5) for _ in range(4)]
            paused = shared.outage.down_until > 0
        finally:
            for writer in accepted:
                writer.close()
            server.close()
            await client.aclose()
        return got, len(accepted), paused

    got, connections, paused = asyncio.run(scenario())
    assert [w == 0 for w in got] == [True, True, False, False]
    assert connections == 1
    assert paused


# -- connections per user, counted in the presence store -------------------------------------

ADMIT_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.integers(0, 7)),
        st.tuples(st.just("release"), st.integers(0, 7)),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 1.0, 3.0])),
    ),
    min_size=1,
    max_size=40,
)


def admission_model(ops: list[tuple[str, Any]], cap: int, ttl: float) -> list[bool]:
    """What admit() must answer: yes while fewer than `cap` admitted connections are alive."""
    alive: dict[int, float] = {}
    now, answers = 1000.0, []
    for op, arg in ops:
        if op == "wait":
            now += arg
        elif op == "release":
            alive.pop(arg, None)
        else:
            ok = sum(1 for exp in alive.values() if exp > now) < cap
            if ok:
                alive[arg] = now + ttl
            answers.append(ok)
    return answers


async def admissions(store: Any, ops: list[tuple[str, Any]], cap: int, kind: str) -> list[bool]:
    now, answers = 1000.0, []
    for op, arg in ops:
        if op == "wait":
            now += arg
        elif op == "release" and kind == CHAT:  # the socket closed (joined or not)
            await store.disconnect(7, f"c{arg}", now)
        elif op == "release":
            await store.forget(kind, 7, f"c{arg}")
        else:
            answers.append(await store.admit(7, f"c{arg}", cap, now, kind))
    return answers


KINDS = pytest.mark.parametrize("kind", [CHAT, "notify"])


@KINDS
@given(ops=ADMIT_OPS, cap=st.integers(1, 4))
def test_the_in_memory_store_admits_up_to_the_cap(
    kind: str, ops: list[tuple[str, Any]], cap: int
) -> None:
    store = PresenceBook(ttl_s=2.0)
    assert asyncio.run(admissions(store, ops, cap, kind)) == admission_model(ops, cap, 2.0)


@needs_redis
@KINDS
@given(ops=ADMIT_OPS, cap=st.integers(1, 4))
def test_the_redis_store_admits_up_to_the_cap(
    kind: str, ops: list[tuple[str, Any]], cap: int
) -> None:
    async def scenario() -> list[bool]:
        client = aioredis.Redis.from_url(REDIS_URL)
        prefix = "t" + uuid.uuid4().hex[:10]
        try:
            store = RedisPresence(client, prefix, ttl_s=2.0)
            return await admissions(store, ops, cap, kind)
        finally:
            keys = [key async for key in client.scan_iter(f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    assert asyncio.run(scenario()) == admission_model(ops, cap, 2.0)


# -- across real processes --------------------------------------------------------------------

SHARED = {
    "LINKUP_SEND_RATE_PER_S": "0.001",  # no refill within the test: the burst is the budget
    "LINKUP_SEND_BURST": "12",
    "LINKUP_MAX_CONNECTIONS_PER_USER": "4",
    "LINKUP_PRESENCE_TTL_S": "3",
    "LINKUP_PRESENCE_REFRESH_S": "0.5",
    "LINKUP_PRESENCE_GRACE_S": "1",
}


@pytest.fixture
def two_processes() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    with live_server(SHARED) as first, live_server(SHARED, share=first) as second:
        yield first, second


def group_of(base: str, owner: dict[str, Any]) -> int:
    status, room = api(base, "POST", "/rooms", {"kind": "group", "name": "limits"}, owner["token"])
    assert status == 201, room
    return int(room["id"])


async def hello(ws: ClientConnection) -> None:
    import json

    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"


@needs_redis
@pytest.mark.live
def test_one_send_budget_across_processes_and_paths(
    two_processes: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """24 sends at once, half over REST to one process and half over a socket to the other:
    exactly the burst (12) is accepted in all, not 12 a process."""
    import json

    first, second = two_processes
    user = new_user(first["base"])
    room = group_of(first["base"], user)
    rest_statuses: list[int] = []

    def over_rest() -> None:
        for i in range(12):
            rest_statuses.append(send_over_rest(first["base"], room, f"r{i}", user["token"])[0])

    async def over_socket() -> list[str]:
        answers = []
        async with connect(second["ws"] + "/ws/chat/", additional_headers=bearer(user)) as ws:
            await hello(ws)
            for i in range(12):
                frame = {"type": "message.send", "room": room, "body": f"s{i}"}
                await ws.send(json.dumps({**frame, "client_id": str(uuid.uuid4())}))
            while len(answers) < 12:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if reply["type"] == "message.ack":
                    answers.append("ack")
                elif reply["type"] == "error":
                    answers.append(reply["code"])
        return answers

    rest = threading.Thread(target=over_rest)
    rest.start()
    socket_answers = asyncio.run(over_socket())
    rest.join()
    accepted = rest_statuses.count(201) + socket_answers.count("ack")
    assert accepted == 12, (rest_statuses, socket_answers)
    assert set(rest_statuses) <= {201, 429}
    assert set(socket_answers) <= {"ack", "rate_limited"}
    status, page = api(
        first["base"], "GET", f"/rooms/{room}/messages?limit=100", None, user["token"]
    )
    assert status == 200 and len(page["messages"]) == 12


async def admitted(url: str, user: dict[str, Any], within: float) -> ClientConnection:
    """A socket for `user` at `url`, retried while refused, for at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await connect(url, additional_headers=bearer(user))
        except InvalidStatus:
            assert time.monotonic() < deadline, f"still refused after {within} s"
            await asyncio.sleep(0.1)


@needs_redis
@pytest.mark.live
@pytest.mark.parametrize("path", ["/ws/chat/", "/ws/notifications/"])
def test_connections_per_user_are_counted_across_processes(
    two_processes: tuple[dict[str, Any], dict[str, Any]], path: str
) -> None:
    """A cap of 4 (for each kind of socket): two sockets on each process fill it on both;
    closing one frees a place on the other; a SIGKILLed process's sockets stop counting once
    their entries expire (presence TTL, 3 s here)."""
    first, second = two_processes
    user = new_user(first["base"])

    async def scenario() -> float:
        url_a, url_b = first["ws"] + path, second["ws"] + path
        on_a = [await connect(url_a, additional_headers=bearer(user)) for _ in range(2)]
        on_b = [await connect(url_b, additional_headers=bearer(user)) for _ in range(2)]
        for ws in on_a + on_b:
            await hello(ws)
        for url in (url_a, url_b):
            with pytest.raises(InvalidStatus):
                await connect(url, additional_headers=bearer(user))
        await on_b.pop().close()
        on_a.append(await admitted(url_a, user, within=5))  # once process B has let it go
        await hello(on_a[-1])
        # Process B dies with one socket of the user's: it stays counted until it expires
        # (presence TTL, 3 s here), then process A admits in its place.
        os.killpg(second["proc"].pid, signal.SIGKILL)
        with pytest.raises(InvalidStatus):
            await connect(url_a, additional_headers=bearer(user))
        killed = time.monotonic()
        on_a.append(await admitted(url_a, user, within=10))
        waited = time.monotonic() - killed
        for ws in on_a:
            await ws.close()
        return waited

    waited = asyncio.run(scenario())
    assert waited >= 1.0  # not at once: the dead socket counted until it expired


@needs_redis
@pytest.mark.live
def test_limits_fail_open_while_redis_is_down() -> None:
    """Redis SIGKILLed: REST sends still commit (201, never 503), up to this process's own
    burst, then 429 as before; with Redis back, the shared bucket decides again."""
    redis_server = RedisServer()
    redis_server.start()
    try:
        env = {**SHARED, "REDIS_URL": redis_server.url, "LINKUP_SEND_BURST": "5"}
        with live_server(env) as srv:
            user = new_user(srv["base"])
            room = group_of(srv["base"], user)
            assert send_over_rest(srv["base"], room, "before", user["token"])[0] == 201
            redis_server.kill()
            during = [
                send_over_rest(srv["base"], room, f"d{i}", user["token"])[0] for i in range(8)
            ]
            log = srv["log"].read_text()
            assert "send rate limits fall back to this process" in log
            redis_server.start()  # empty: the shared bucket starts full again
            # Probes from someone else: the user above was told to wait (Retry-After), and
            # the server answers her repeats itself until then, without asking any bucket.
            other = new_user(srv["base"])
            other_room = group_of(srv["base"], other)
            deadline = time.monotonic() + 10
            while "send rate limits shared through Redis again" not in srv["log"].read_text():
                send_over_rest(srv["base"], other_room, "probe", other["token"])
                assert time.monotonic() < deadline, "limits never went back to Redis"
                time.sleep(0.3)
    finally:
        redis_server.stop()
    # The local bucket was full (its first hit): 5 through, then refused: the limit held,
    # and no send failed because Redis did.
    assert during == [201] * 5 + [429] * 3, during
