"""Shared by the socket and REST edges: run an action, translate failures to LinkupErrors."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError, DataError, IntegrityError

from linkup.conf import setting
from linkup.errors import InvalidInput, LinkupError, ServerError, Unavailable
from linkup.events import Event, collecting_events, publish
from linkup.log import log_event, record_error
from linkup.serialization import SerializationError, dumps_text

P = ParamSpec("P")
R = TypeVar("R")


# Arguments of actions and queries worth naming in a failure's log line (ids, never bodies).
_CONTEXT_NAMES = {
    "user": "user_id",
    "sender": "user_id",
    "viewer": "user_id",
    "actor": "user_id",
    "user_id": "user_id",
    "room": "room_id",
    "room_id": "room_id",
    "client_id": "client_id",
}


def failure_context(func: Callable[..., Any], args: Any, kwargs: Any) -> dict[str, Any]:
    """The ids among a call's arguments, however they were passed (user objects by pk)."""
    try:
        bound = inspect.signature(func).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}
    context: dict[str, Any] = {}
    for name, key in _CONTEXT_NAMES.items():
        if name not in bound or key in context:
            continue
        value = getattr(bound[name], "pk", bound[name])
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            context[key] = value
    return context


# Failures that are bugs, not outages: the client gets server_error, the operator a record.
BUGS = (SynchronousOnlyOperation, SerializationError, IntegrityError)


def record_failure(func: Callable[..., Any], args: Any, kwargs: Any, exc: BaseException) -> None:
    """Log and record one of BUGS raised by `func`, with the ids among its arguments."""
    context = failure_context(func, args, kwargs)
    name = func.__name__
    if isinstance(exc, SynchronousOnlyOperation):
        record_error("async_context", f"{name}: ORM call on the event loop", exc, **context)
    elif isinstance(exc, SerializationError):
        record_error("serialization", f"{name}: {exc}", exc, shape=dumps_text(exc.shape), **context)
    else:
        record_error("database", f"{name}: integrity error", exc, **context)


def _collect(func: Callable[..., R], args: Any, kwargs: Any) -> tuple[R, list[Event]]:
    with collecting_events() as events:
        result = func(*args, **kwargs)
    return result, events


async def perform(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, list[Event]]:
    """Run `func` on the database thread; return its result and the events it committed.

    Errors come back as LinkupErrors: storage failures as Unavailable (retry the same
    request), bugs as ServerError after logging and recording them."""
    try:
        return await database_sync_to_async(_collect)(func, args, kwargs)
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


async def perform_and_publish(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """perform(), then ring the doorbells for what it committed."""
    result, events = await perform(func, *args, **kwargs)
    await publish(events)
    return result


async def read(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a read-only query function on the database thread, with perform()'s error mapping."""
    result, _ = await perform(func, *args, **kwargs)
    return result
