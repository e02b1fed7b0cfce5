"""Reads many sockets ask for at once share one database hop, and writes one hop
(linkup/realtime/coalesce.py); presence announcements for many users at once
(linkup/actions/presence.py) are the announcements one by one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.db import OperationalError
from hypothesis import given
from hypothesis import strategies as st

from linkup.actions.blocks import do_block
from linkup.actions.credentials import authenticate_tokens
from linkup.actions.events import collecting_events, user_group
from linkup.actions.presence import do_announce_presences
from linkup.actions.rooms import do_create_room
from linkup.core.errors import Unavailable
from linkup.models import UserPresence
from linkup.realtime.coalesce import Batcher, Coalescer, socket_states_of, tokens_and_rooms
from linkup.store import queries
from tests.conftest import make_user, token_for
from tests.wsutil import db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_concurrent_asks_share_one_query_and_each_gets_its_own_answer() -> None:
    calls: list[list[int]] = []

    def fetch(keys: list[int]) -> dict[int, int]:
        calls.append(sorted(keys))
        return {k: k * 10 for k in keys if k != 3}

    coalescer: Coalescer[int, int | None] = Coalescer(fetch, None, limit=4)
    first = await coalescer.get(1)  # a lone ask goes at once, alone
    assert first == 10 and calls == [[1]]
    answers = await asyncio.gather(*(coalescer.get(k) for k in [2, 3, 2, 4, 5, 6, 7, 8]))
    assert answers == [20, None, 20, 40, 50, 60, 70, 80]  # 3 was not found: the default
    # Asked together: one query for them all, at most `limit` keys a query, each key once.
    assert calls[1:] == [[2, 3, 4, 5], [6, 7, 8]]


async def test_a_failed_query_fails_every_ask_with_the_same_error() -> None:
    def down(keys: list[int]) -> dict[int, int]:
        raise OperationalError("connection refused")

    coalescer: Coalescer[int, int | None] = Coalescer(down, None)
    results = await asyncio.gather(*(coalescer.get(k) for k in range(5)), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    assert len({id(r) for r in results}) == 5  # a copy each: no shared traceback state


async def test_the_batched_queries_answer_as_the_single_ones(
    alice: Any, bob: Any, carol: Any
) -> None:
    def setup() -> tuple[int, str, str, str]:
        room, _ = do_create_room(alice, "direct", [bob.pk])
        do_block(alice, carol.pk)
        return int(room["id"]), token_for(alice), token_for(bob), token_for(carol)

    room, alice_token, bob_token, carol_token = await db(setup)()
    seqs = await db(queries.rooms_and_seqs_of)([alice.pk, bob.pk, 10**9])
    assert seqs == {alice.pk: {room: (0, 0)}, bob.pk: {room: (0, 0)}}
    found = await db(authenticate_tokens)([alice_token, bob_token, "nope", "x" * 300])
    assert {raw: (user.pk, token) for raw, (user, token) in found.items()} == {
        alice_token: (alice.pk, found[alice_token][1]),
        bob_token: (bob.pk, found[bob_token][1]),
    }
    # What a handshake reads: its token with its user's rooms, then the rooms' cursors
    # with the user's block lists, each for many at once as for each alone.
    tokens = [alice_token, bob_token, carol_token, "nope"]
    opened = await db(tokens_and_rooms)(tokens)
    assert {raw: (user.pk, rooms) for raw, (user, _, rooms) in opened.items()} == {
        alice_token: (alice.pk, frozenset({room})),
        bob_token: (bob.pk, frozenset({room})),
        carol_token: (carol.pk, frozenset()),
    }
    # The user, read by a statement written as SQL, is the ORM's to the last field.
    orm = await db(lambda: type(alice).objects.get(pk=alice.pk))()
    user = opened[alice_token][0]
    assert user._state.adding is False and user._state.db == orm._state.db
    for field in type(alice)._meta.concrete_fields:
        ours, theirs = getattr(user, field.attname), getattr(orm, field.attname)
        assert (ours, type(ours)) == (theirs, type(theirs)), field.name
    for raw in tokens:
        alone = await db(tokens_and_rooms)([raw])
        assert {k: (u.pk, t, r) for k, (u, t, r) in alone.items()} == {
            k: (u.pk, t, r) for k, (u, t, r) in opened.items() if k == raw
        }
    states = await db(socket_states_of)([alice.pk, bob.pk, carol.pk])
    assert states == {
        alice.pk: ({room: (0, 0)}, ({carol.pk}, set())),
        bob.pk: ({room: (0, 0)}, (set(), set())),
        carol.pk: ({}, (set(), {alice.pk})),
    }
    for user in (alice.pk, bob.pk, carol.pk):
        assert await db(socket_states_of)([user]) == {user: states[user]}


async def test_a_batcher_answers_items_submitted_together_in_one_run_in_order() -> None:
    runs: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        runs.append(items)
        if len(runs) == 1:
            await gate.wait()  # the first run is under way while more are submitted
        return [item * 2 for item in items]

    batcher: Batcher[int, int] = Batcher(run, limit=3)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(batcher.submit(k)) for k in [5, 4, 5, 6]]
    await asyncio.sleep(0)
    gate.set()
    assert await first == 2
    assert await asyncio.gather(*later) == [10, 8, 10, 12]
    # Submitted during the first run: the next runs take them, `limit` at a time, in order,
    # a repeated item once per submission (each is an operation of its own).
    assert runs == [[1], [5, 4, 5], [6]]


async def test_a_failed_batch_fails_each_of_its_items_and_not_the_next() -> None:
    async def run(items: list[int]) -> list[int]:
        if 0 in items:
            raise ConnectionError("down")
        return items

    batcher: Batcher[int, int] = Batcher(run)
    results = await asyncio.gather(*(batcher.submit(k) for k in [0, 1, 2]), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batcher.submit(3) == 3


Transitions = list[tuple[int, str, float]]
TRANSITIONS = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["online", "offline"]), st.integers(0, 99)),
    max_size=8,
)


@given(plan=TRANSITIONS)
def test_announcing_many_transitions_at_once_is_announcing_them_one_by_one(
    plan: list[tuple[int, str, int]], presence_cast: list[int]
) -> None:
    """Who is told what, and what is stored, are the same for a batch as for its
    transitions one at a time (a user may go and come back within one batch)."""
    transitions = [(presence_cast[u], status, 1_000.0 + at) for u, status, at in plan]
    outcomes = []
    for batches in ([transitions], [[t] for t in transitions]):
        UserPresence.objects.filter(user_id__in=presence_cast).update(online=False, last_seen=None)
        with collecting_events() as events:
            for batch in batches:
                do_announce_presences(batch)
        stored = sorted(
            UserPresence.objects.filter(user_id__in=presence_cast).values_list(
                "user_id", "online", "last_seen", "hide_last_seen"
            )
        )
        outcomes.append((events, stored))
    assert outcomes[0] == outcomes[1]
    told, _ = outcomes[0]
    a, b, c, d = presence_cast
    contacts = {a: {b}, b: {a, c}, c: {b}, d: set()}
    assert len(told) == sum(len(contacts[user]) for user, _, _ in transitions)
    for group, event in told:
        assert group in {user_group(x) for x in contacts[event["user"]]}
        if event["status"] == "online" or c in (event["user"], int(group.rsplit(".", 1)[1])):
            assert event["last_seen"] is None  # c hides it, so sees no one's either
        else:
            assert event["last_seen"] is not None


@pytest.fixture
def presence_cast(db: Any) -> list[int]:
    """a and b share a direct room, b and c a group; d is alone; c hides last seen."""
    a, b, c, d = (make_user(name) for name in ("pa", "pb", "pc", "pd"))
    do_create_room(a, "direct", [b.pk])
    do_create_room(b, "group", [c.pk], "bc")
    UserPresence.objects.create(user=c, hide_last_seen=True)
    return [a.pk, b.pk, c.pk, d.pk]
