"""One object per running event loop (per server process, and per test's loop)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
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
