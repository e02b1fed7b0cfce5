"""Errors kept for the operator: logged, and stored as MessagingError rows (in the admin)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import IntegrityError
from django.utils import timezone

from linkup.core.conf import setting
from linkup.core.log import clean_context, log_event
from linkup.core.serialization import SerializationError, dumps_text
from linkup.models import MessagingError


def record_error(
    category: str, message: str, exc: BaseException | None = None, **context: Any
) -> None:
    """Log an error and store it for the operator (MessagingError, in the admin)."""
    log_event(logging.ERROR, category, message, exc, **context)
    if not setting("RECORD_ERRORS"):
        return
    stored = clean_context(context)
    if exc is not None:
        stored["exception"] = f"{type(exc).__name__}: {exc}"[:500]
    try:
        MessagingError.objects.create(
            category=category, message=message[:2000], context=stored, occurred_at=timezone.now()
        )
    except Exception as db_exc:  # the database may be what failed: the log line stands
        log_event(logging.WARNING, "database", "could not store a MessagingError", db_exc)


async def arecord_error(
    category: str, message: str, exc: BaseException | None = None, **context: Any
) -> None:
    """record_error from async code, on the database thread."""
    await sync_to_async(record_error)(category, message, exc, **context)


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
