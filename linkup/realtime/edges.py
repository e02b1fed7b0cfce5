"""Shared by the socket and REST edges: run an action or a query on the database thread,
ring the doorbells for what it committed, and translate failures to LinkupErrors.

`perform` is the one way the event loop calls into the layers below: whatever an action
committed is published after the commit, so no caller carries events and none can forget
them (Zulip's `send_event_on_commit`: the action queues its events, the edge sends them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import DatabaseError, DataError

from linkup.actions.events import Event, collecting_events
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, LinkupError, ServerError, Unavailable
from linkup.core.log import log_event
from linkup.realtime.hub import publish
from linkup.store.records import BUGS, failure_context, record_failure

P = ParamSpec("P")
R = TypeVar("R")


def _run(func: Callable[..., R], args: Any, kwargs: Any) -> tuple[R, list[Event]]:
    with collecting_events() as events:
        result = func(*args, **kwargs)
    return result, events


async def collect(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, list[Event]]:
    """Run `func` on the database thread; return its result and the events it committed,
    for a caller that publishes them itself (the send queue: after the batch's acks).

    Errors come back as LinkupErrors: storage failures as Unavailable (retry the same
    request), bugs as ServerError after logging and recording them."""
    try:
        return await database_sync_to_async(_run)(func, args, kwargs)
    except LinkupError:
        raise
    except BUGS as exc:
        await sync_to_async(record_failure)(func, args, kwargs, exc)
        raise ServerError() from exc
    except DataError as exc:
        # A value the database cannot store or compare (a NUL character in a string on
        # PostgreSQL, a number out of range): the request's fault, and nothing was written.
        raise InvalidInput(
            "a value in the request cannot be stored (a NUL character, or a number out of range)"
        ) from exc
    except DatabaseError as exc:
        # The database is down or refusing: nothing was committed, the client may retry.
        context = failure_context(func, args, kwargs)
        log_event(
            logging.WARNING, "database", f"{func.__name__}: storage unavailable", exc, **context
        )
        raise Unavailable(retry_after_s=setting("UNAVAILABLE_RETRY_S")) from exc


async def perform(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run an action on the database thread, then ring the doorbells for what it committed;
    return its result."""
    result, events = await collect(func, *args, **kwargs)
    await publish(events)
    return result


# A query goes the same way: should one ever commit events, they are published too.
read = perform
