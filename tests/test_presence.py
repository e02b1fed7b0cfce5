"""Presence state with time injected: properties of the in-memory book, and the Redis store
giving exactly the same transitions for the same script (scale-out pass)."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from linkup.realtime.presence_store import PresenceBook, RedisPresence, Transition

TTL, GRACE, SWEEP_EVERY = 30.0, 30.0, 10.0
USERS = [1, 2]
CONNS = ["a", "b", "c"]

Step = tuple[str, int, str, float]
scripts = st.lists(
    st.tuples(
        st.sampled_from(["admit", "connect", "disconnect", "kill", "sweep", "refresh"]),
        st.sampled_from(USERS),
        st.sampled_from(CONNS),
        # Mostly quick steps (several between two sweeps), sometimes long silences.
        st.one_of(
            st.just(0.0), st.floats(0, 2, allow_nan=False), st.floats(0, 25, allow_nan=False)
        ),
    ),
    max_size=40,
)


# A reload followed by a close before any sweep: the grace must restart from the second close.
RELOAD_THEN_CLOSE: list[Step] = [
    ("connect", 1, "a", 0.0),
    ("disconnect", 1, "a", 1.0),
    ("connect", 1, "b", 1.0),
    ("disconnect", 1, "b", 1.0),
]


async def play(store: Any, script: list[Step]) -> tuple[list[Transition], dict[str, Any]]:
    """Run a script; the owning process refreshes its live connections as time passes and
    sweeps every SWEEP_EVERY seconds. Return the transitions and the reference facts."""
    now = 1_000.0
    last_sweep = now
    live: dict[tuple[int, str], bool] = {}  # (user, conn) -> still refreshed (not killed)
    admitted: set[tuple[int, str]] = set()  # counted at connect, before the socket joined
    transitions: list[Transition] = []
    last_alive: dict[int, float] = {}  # user -> last moment one of their conns surely lived

    async def advance(to: float) -> None:
        nonlocal now, last_sweep
        while last_sweep + SWEEP_EVERY <= to:
            last_sweep += SWEEP_EVERY
            now = last_sweep
            await store.refresh([k for k, ok in live.items() if ok], now)
            for key, ok in live.items():
                if ok:
                    last_alive[key[0]] = now
            transitions.extend(await store.sweep(now))
        now = to

    for action, user, conn, delay in script:
        await advance(now + delay)
        key = (user, conn)
        if action == "admit" and key not in live and key not in admitted:
            assert await store.admit(user, conn, 99, now)
            admitted.add(key)
        elif action == "connect" and key not in live:
            admitted.discard(key)
            live[key] = True
            last_alive[user] = now
            transitions.extend(await store.connect(user, conn, now))
        elif action == "disconnect" and key in admitted:  # closed during its set-up
            admitted.discard(key)
            await store.disconnect(user, conn, now)
        elif action == "disconnect" and key in live:
            del live[key]
            last_alive[user] = max(last_alive.get(user, now), now)
            await store.disconnect(user, conn, now)
        elif action == "kill" and live.get(key):
            live[key] = False  # SIGKILLed process: never refreshed nor closed again
        elif action == "sweep":
            transitions.extend(await store.sweep(now))
        elif action == "refresh":
            await store.refresh([k for k, ok in live.items() if ok], now)
    for user, conn in sorted(admitted):  # a socket is admitted, then joins or closes
        await store.disconnect(user, conn, now)
    end = now
    # Let every clock run out: whatever is not refreshed must end offline.
    for key in live:
        live[key] = False
    await advance(now + TTL + GRACE + 3 * SWEEP_EVERY)
    return transitions, {"end": end, "final": now}


@given(scripts)
@example(RELOAD_THEN_CLOSE)
def test_presence_transitions(script: list[Step]) -> None:
    book = PresenceBook(ttl_s=TTL, grace_s=GRACE)
    transitions, _ = asyncio.run(play(book, script))
    per_user: dict[int, list[Transition]] = {}
    for transition in transitions:
        per_user.setdefault(transition[0], []).append(transition)
    for events in per_user.values():
        states = [state for _, state, _ in events]
        # online, offline, online, ...: never twice the same, always starting online.
        assert states == ["online", "offline"] * (len(states) // 2) + (
            ["online"] if len(states) % 2 else []
        ), states
    # Once nothing refreshes, everyone ends offline, and nobody is left in the books.
    assert not asyncio.run(book.online(USERS))
    assert not book.conns and not book.gone_at
    for events in per_user.values():
        assert events[-1][1] == "offline"
    if script == RELOAD_THEN_CLOSE:
        assert transitions[-1] == (1, "offline", 1003.0)  # last seen: the second close


@given(st.floats(0, SWEEP_EVERY, allow_nan=False), st.floats(0, 25, allow_nan=False))
def test_a_killed_process_users_go_offline_within_90_s(phase: float, since_refresh: float) -> None:
    """TTL 30 + sweep 10 + grace 30 + sweep 10 = 80 s after the last refresh, at the worst."""

    async def scenario() -> float:
        book = PresenceBook(ttl_s=TTL, grace_s=GRACE)
        killed_at = 1_000.0
        last_refresh = killed_at - min(since_refresh, 10.0)
        await book.connect(7, "x", last_refresh)  # its last refresh (connect sets the expiry)
        now = killed_at + phase  # the first sweep after the kill
        while True:
            offline = [t for t in await book.sweep(now) if t[1] == "offline"]
            if offline:
                return now - killed_at
            now += SWEEP_EVERY

    assert asyncio.run(scenario()) <= 90.0


async def test_reload_within_grace_does_not_flicker() -> None:
    book = PresenceBook(ttl_s=TTL, grace_s=GRACE)
    assert await book.connect(1, "tab", 0.0) == [(1, "online", 0.0)]
    await book.disconnect(1, "tab", 5.0)
    assert await book.sweep(10.0) == []
    assert await book.connect(1, "tab-after-reload", 12.0) == []  # no offline, no new online
    await book.refresh([(1, "tab-after-reload")], 40.0)
    assert await book.sweep(60.0) == []
    await book.disconnect(1, "tab-after-reload", 61.0)
    assert await book.sweep(80.0) == []
    assert await book.sweep(91.0) == [(1, "offline", 61.0)]  # last_seen: when it went


@pytest.mark.scaleout
@given(scripts)
@example(RELOAD_THEN_CLOSE)
def test_redis_store_matches_the_book(script: list[Step]) -> None:
    import redis.asyncio as aioredis

    async def both() -> tuple[list[Transition], list[Transition]]:
        client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
        prefix = f"tp{uuid.uuid4().hex[:10]}"
        try:
            store = RedisPresence(client, prefix, ttl_s=TTL, grace_s=GRACE)
            in_redis, _ = await play(store, script)
            book, _ = await play(PresenceBook(ttl_s=TTL, grace_s=GRACE), script)
            keys = [k async for k in client.scan_iter(f"{prefix}:*")]
            assert keys == [], keys  # nothing left behind once everyone is offline
            return in_redis, book
        finally:
            await client.aclose()

    in_redis, book = asyncio.run(both())
    assert in_redis == book
