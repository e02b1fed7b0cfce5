"""One object per running event loop (per server process, and per test's loop)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class LoopLocal(Generic[T]):
    """Make `factory()` once for each event loop that asks, and forget it with the loop."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        found = self.made.get(loop)
        if found is None:
            found = self.made[loop] = self.factory()
        return found


class Turns:
    """At most `width()` holders at once per key (a client address, a user); the others wait
    their turn, costing nothing. A key nobody holds or waits for is forgotten."""

    def __init__(self, width: Callable[[], int]) -> None:
        self.width = width
        self.held: dict[Hashable, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        gate, users = self.held.get(key) or (asyncio.Semaphore(self.width()), 0)
        self.held[key] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self.held[key]
            if users == 1:
                del self.held[key]
            else:
                self.held[key] = (gate, users - 1)
