"""Presence state with time injected: properties of the in-memory book, and the Redis store
giving exactly the same transitions for the same script (scale-out pass)."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from linkup.realtime.presence_store import CHAT, PresenceBook, RedisPresence, Transition

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


async def play(
    store: Any, script: list[Step], batched: bool = False
) -> tuple[list[Transition], dict[str, Any]]:
    """Run a script; the owning process refreshes its live connections as time passes and
    sweeps every SWEEP_EVERY seconds. Return the transitions and the reference facts.
    `batched`: consecutive admits, connects or disconnects at the same moment go to the
    store as one call (`admit_many`, ...), as sockets opening or closing together do."""
    now = 1_000.0
    last_sweep = now
    live: dict[tuple[int, str], bool] = {}  # (user, conn) -> still refreshed (not killed)
    admitted: set[tuple[int, str]] = set()  # counted at connect, before the socket joined
    transitions: list[Transition] = []
    last_alive: dict[int, float] = {}  # user -> last moment one of their conns surely lived
    pending: list[tuple[str, int, str]] = []  # (admit | connect | disconnect, user, conn)

    async def flush() -> None:
        if not pending:
            return
        kind, items = pending[0][0], [(user, conn) for _, user, conn in pending]
        pending.clear()
        if kind == "admit":
            assert all(await store.admit_many([(u, c, CHAT) for u, c in items], 99, now))
        elif kind == "connect":
            for made in await store.connect_many(items, now):
                transitions.extend(made)
        else:
            await store.disconnect_many([(u, c, None) for u, c in items], now)

    async def call(kind: str, user: int, conn: str) -> None:
        if not batched:
            if kind == "admit":
                assert await store.admit(user, conn, 99, now)
            elif kind == "connect":
                transitions.extend(await store.connect(user, conn, now))
            else:
                await store.disconnect(user, conn, now)
            return
        if pending and pending[0][0] != kind:
            await flush()
        pending.append((kind, user, conn))

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
        if delay > 0 or action not in ("admit", "connect", "disconnect"):
            await flush()
        await advance(now + delay)
        key = (user, conn)
        if action == "admit" and key not in live and key not in admitted:
            await call("admit", user, conn)
            admitted.add(key)
        elif action == "connect" and key not in live:
            admitted.discard(key)
            live[key] = True
            last_alive[user] = now
            await call("connect", user, conn)
        elif action == "disconnect" and key in admitted:  # closed during its set-up
            admitted.discard(key)
            await call("disconnect", user, conn)
        elif action == "disconnect" and key in live:
            del live[key]
            last_alive[user] = max(last_alive.get(user, now), now)
            await call("disconnect", user, conn)
        elif action == "kill" and live.get(key):
            live[key] = False  # SIGKILLed process: never refreshed nor closed again
        elif action == "sweep":
            transitions.extend(await store.sweep(now))
        elif action == "refresh":
            await store.refresh([k for k, ok in live.items() if ok], now)
    await flush()
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


@given(scripts)
@example(RELOAD_THEN_CLOSE)
def test_calls_in_one_batch_are_the_calls_one_by_one(script: list[Step]) -> None:
    """Sockets opening or closing together go to the store as one call: it must make the
    same transitions as the same calls one at a time, in order."""
    batched, _ = asyncio.run(play(PresenceBook(ttl_s=TTL, grace_s=GRACE), script, batched=True))
    single, _ = asyncio.run(play(PresenceBook(ttl_s=TTL, grace_s=GRACE), script))
    assert batched == single


@pytest.mark.parametrize("store_kind", ["book", "redis"])
async def test_a_departure_clears_the_focus_it_had(store_kind: str) -> None:
    store: Any = PresenceBook(ttl_s=TTL, grace_s=GRACE)
    client = None
    if store_kind == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("runs in the PostgreSQL + Redis pass")
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
        store = RedisPresence(client, f"tp{uuid.uuid4().hex[:10]}", ttl_s=TTL, grace_s=GRACE)
    try:
        await store.connect_many([(1, "a"), (2, "b"), (1, "c")], 100.0)
        await store.set_focus(1, "a", None, 5)
        await store.set_focus(2, "b", None, 5)
        await store.set_focus(1, "c", None, 6)
        assert await store.focused([5, 6], 101.0) == {5: {1, 2}, 6: {1}}
        await store.disconnect_many([(1, "a", 5), (2, "b", None)], 102.0)
        # a's entry went with it; b's (left without naming its room) counts no more, as
        # its connection is gone.
        assert await store.focused([5, 6], 103.0) == {6: {1}}
        assert await store.focused([5], 100.0 + TTL + 1) == {}
        assert await store.online([1, 2]) == {1, 2}  # user 1 still has c; 2 in the grace
    finally:
        if client is not None:
            await client.aclose()


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
            # Batched: one pipeline of scripts must act as the scripts one by one (the
            # single calls are batches of one).
            in_redis, _ = await play(store, script, batched=True)
            book, _ = await play(PresenceBook(ttl_s=TTL, grace_s=GRACE), script)
            keys = [k async for k in client.scan_iter(f"{prefix}:*")]
            assert keys == [], keys  # nothing left behind once everyone is offline
            return in_redis, book
        finally:
            await client.aclose()

    in_redis, book = asyncio.run(both())
    assert in_redis == book


# -- away: every live tab hidden ----------------------------------------------------------------

away_steps = st.lists(
    st.tuples(
        st.sampled_from(["connect", "disconnect", "hide", "show", "wait"]),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=25,
)


async def _play_away(store: Any, steps: list[tuple[str, str]]) -> None:
    """Play the steps on a store and a model of it: after each, `all_hidden` is whether
    every live connection of user 1 is hidden (None with none). Another user's hidden tab
    never counts for user 1."""
    now, live, hidden = 100.0, {}, set()  # live: conn -> expiry
    await store.connect_many([(2, "z")], now)
    await store.set_hidden(2, "z", True)
    for step, conn in steps:
        if step == "connect":
            await store.connect_many([(1, conn)], now)
            live[conn] = now + TTL
        elif step == "disconnect":
            await store.disconnect_many([(1, conn, None)], now)
            live.pop(conn, None)
            hidden.discard(conn)
        elif step in ("hide", "show") and conn in live:
            await store.set_hidden(1, conn, step == "hide")
            (hidden.add if step == "hide" else hidden.discard)(conn)
        elif step == "wait":
            now += TTL / 2  # connections not refreshed expire: a process that died
        alive = [c for c, expiry in live.items() if expiry > now]
        expected = None if not alive else all(c in hidden for c in alive)
        assert await store.all_hidden(1, now) == expected, (step, conn, live, hidden)
    await store.disconnect_many([(1, c, None) for c in live] + [(2, "z", None)], now)


@settings(max_examples=100, deadline=None)
@given(away_steps)
def test_a_user_is_away_when_every_live_tab_is_hidden(steps: list[tuple[str, str]]) -> None:
    asyncio.run(_play_away(PresenceBook(ttl_s=TTL, grace_s=GRACE), steps))


@pytest.mark.scaleout
@settings(max_examples=100, deadline=None)
@given(away_steps)
def test_redis_knows_who_is_away_as_the_book_does(steps: list[tuple[str, str]]) -> None:
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
        try:
            await _play_away(RedisPresence(client, f"tp{uuid.uuid4().hex[:10]}", ttl_s=TTL), steps)
        finally:
            await client.aclose()

    asyncio.run(run())
