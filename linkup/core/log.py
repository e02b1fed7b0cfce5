"""Structured logging: JSON lines with a category and context (records: linkup.store.records)."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any

from linkup.core import serialization

logger = logging.getLogger("linkup")

CATEGORIES = (
    "async_context",
    "serialization",
    "connection",
    "routing",
    "database",
    "delivery",
    "storage",
)
# Never logged, whatever a caller passes: message bodies and credentials.
_SECRET_KEYS = frozenset({"body", "token", "password", "ticket", "authorization", "cookie"})


def clean_context(context: dict[str, Any]) -> dict[str, Any]:
    """Drop secrets and make every value JSON-safe."""
    clean: dict[str, Any] = {}
    for key, value in context.items():
        if key.lower() in _SECRET_KEYS or value is None:
            continue
        if not isinstance(value, (str, int, float, bool)):
            value = repr(value)[:200]
        clean[key] = value
    return clean


def log_event(
    level: int, category: str, message: str, exc: BaseException | None = None, **context: Any
) -> None:
    """Log one structured line: `category` from CATEGORIES, ids in `context`."""
    logger.log(
        level,
        message,
        extra={"category": category, "context": clean_context(context)},
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
    )


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, category, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": serialization.format_time(dt.datetime.fromtimestamp(record.created, tz=dt.UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        category = getattr(record, "category", None)
        if category:
            entry["category"] = category
        context = getattr(record, "context", None)
        if context:
            entry["context"] = context
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))[-4000:]
        return serialization.dumps_text(entry)
