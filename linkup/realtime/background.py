"""Tasks that belong to the event loop, not to whoever started them."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync

T = TypeVar("T")


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
