"""Reads many sockets ask for at once share one database hop (linkup/realtime/coalesce.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.db import OperationalError

from linkup.actions.credentials import authenticate_tokens
from linkup.actions.rooms import do_create_room
from linkup.core.errors import Unavailable
from linkup.realtime.coalesce import Coalescer
from linkup.store import queries
from tests.conftest import token_for
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


async def test_the_batched_queries_answer_as_the_single_ones(alice: Any, bob: Any) -> None:
    def setup() -> tuple[int, str, str]:
        room, _ = do_create_room(alice, "direct", [bob.pk])
        return int(room["id"]), token_for(alice), token_for(bob)

    room, alice_token, bob_token = await db(setup)()
    seqs = await db(queries.rooms_and_seqs_of)([alice.pk, bob.pk, 10**9])
    assert seqs == {alice.pk: {room: 0}, bob.pk: {room: 0}}
    found = await db(authenticate_tokens)([alice_token, bob_token, "nope", "x" * 300])
    assert {raw: (user.pk, token) for raw, (user, token) in found.items()} == {
        alice_token: (alice.pk, found[alice_token][1]),
        bob_token: (bob.pk, found[bob_token][1]),
    }
