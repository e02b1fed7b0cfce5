"""One object per running event loop (per server process, and per test's loop)."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from asgiref.sync import SyncToAsync

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


def background(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task of the loop's own (a queue's drain, a batch's doorbells), not of whoever
    happened to start it. A task started inside an HTTP request inherits the request's
    thread-sensitive context, and its database calls would go to the request's thread,
    which is gone (or another request's) once that request ends: here that context is
    cleared, so they go to the process's database thread. (The rest of the context stays:
    under `async_to_sync`, as in tests, calls still go back to the calling thread.)"""
    context = contextvars.copy_context()
    context.run(SyncToAsync.thread_sensitive_context.set, None)  # type: ignore[arg-type]
    return asyncio.get_running_loop().create_task(coro, context=context)
