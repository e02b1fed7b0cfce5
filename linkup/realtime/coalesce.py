"""Reads (and writes) that many sockets ask for at once, answered by one hop (as sends are
by the group commit).

Concurrent handshakes each look up their token and read their user's rooms and last seqs;
every `ping` reads them again. Asked one socket at a time, that is a hop to the single
database thread per socket: with 10,000 sockets, hundreds a second. A `Coalescer` queues
the keys asked for while its previous query is on the database thread, and the next query
takes them all (up to `limit`): no wait for a lone request, one hop for many under load.
Below the load that fills a batch, every hop is paid per handshake, so a handshake makes
two: its token with its user's rooms (to subscribe them), then, subscribed, the rooms'
cursors with the user's block lists.
A `Batcher` does the same for operations that each need their own answer (presence writes
to Redis: one pipeline for the sockets that connect or close together).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from linkup.actions.blocks import block_sets_of
from linkup.actions.credentials import authenticate_tokens
from linkup.core.errors import LinkupError, ServerError
from linkup.core.looplocal import LoopLocal
from linkup.realtime.background import background
from linkup.realtime.edges import read
from linkup.store import queries

K = TypeVar("K")
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await get(key)`: `fetch(keys)` (run on the database thread through `edges.read`)
    returns {key: value} for many keys at once; a key it leaves out gets `missing`. Those
    who ask for one key together get the same value: treat it as read-only."""

    def __init__(
        self, fetch: Callable[[list[K]], Mapping[K, V]], missing: V, limit: int = 500
    ) -> None:
        self.fetch = fetch
        self.missing = missing
        self.limit = limit
        self.waiting: dict[K, list[asyncio.Future[V]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # the last batches, for tests and the curious

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(key, []).append(future)
        if self.task is None:
            self.task = background(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                keys = list(self.waiting)[: self.limit]
                asked = {key: self.waiting.pop(key) for key in keys}
                self.batch_sizes = [*self.batch_sizes[-99:], len(keys)]
                try:
                    found = await read(self.fetch, keys)
                except BaseException as exc:
                    error = copy.copy(exc) if isinstance(exc, LinkupError) else ServerError()
                    for futures in asked.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(copy.copy(error))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for key, futures in asked.items():
                    value = found.get(key, self.missing)
                    for future in futures:
                        if not future.done():
                            future.set_result(value)
        finally:
            self.task = None
            if self.waiting:  # asked for as this one stopped
                self.task = background(self._drain())


class Batcher(Generic[K, V]):
    """`await submit(item)`: `run(items)` (a coroutine) answers many items at once, one
    answer per item in order, as if each ran alone in that order. Items submitted while a
    run is under way go in the next. A run that fails fails each of its items."""

    def __init__(self, run: Callable[[list[K]], Awaitable[Sequence[V]]], limit: int = 500) -> None:
        self.run = run
        self.limit = limit
        self.waiting: list[tuple[K, asyncio.Future[V]]] = []
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # the last batches, for tests and the curious

    async def submit(self, item: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if self.task is None:
            self.task = background(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                taken, self.waiting = self.waiting[: self.limit], self.waiting[self.limit :]
                self.batch_sizes = [*self.batch_sizes[-99:], len(taken)]
                try:
                    answers = await self.run([item for item, _ in taken])
                except BaseException as exc:
                    for _, future in taken:
                        if future.done():
                            continue
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:
                            future.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), answer in zip(taken, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self.task = None
            if self.waiting:  # submitted as this one stopped
                self.task = background(self._drain())


SocketState = tuple[dict[int, queries.Cursors], tuple[set[int], set[int]]]
NO_STATE: SocketState = ({}, (set(), set()))


def tokens_and_rooms(raws: list[str]) -> dict[str, tuple[Any, int, frozenset[int]]]:
    """{raw: (user, token id, the user's rooms)} for the valid bearer tokens of `raws`: what
    a handshake needs before it subscribes (one hop)."""
    found = authenticate_tokens(raws)
    rooms = queries.room_ids_of(list({user.pk for user, _ in found.values()}))
    return {
        raw: (user, token, frozenset(rooms.get(user.pk, ())))
        for raw, (user, token) in found.items()
    }


def socket_states_of(user_ids: list[int]) -> dict[int, SocketState]:
    """{user: ({room: (last_seq, last_change)}, (blocking, blocked_by))}: what a chat socket
    reads once it has subscribed (one hop)."""
    cursors = queries.rooms_and_seqs_of(user_ids)
    blocks = block_sets_of(user_ids)
    return {user: (cursors.get(user, {}), blocks.get(user, (set(), set()))) for user in user_ids}


# This event loop's coalescers: bearer tokens with their users' rooms (handshakes), a
# user's rooms with their cursors and the user's block lists (handshakes, once
# subscribed), and a user's rooms with their cursors alone (pings).
tokens: LoopLocal[Coalescer[str, tuple[Any, int, frozenset[int]] | None]] = LoopLocal(
    lambda: Coalescer(tokens_and_rooms, None)
)
socket_states: LoopLocal[Coalescer[int, SocketState]] = LoopLocal(
    lambda: Coalescer(socket_states_of, NO_STATE)
)
rooms_and_seqs: LoopLocal[Coalescer[int, dict[int, queries.Cursors]]] = LoopLocal(
    lambda: Coalescer(queries.rooms_and_seqs_of, {})
)
