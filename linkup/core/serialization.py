"""The one JSON path (orjson) for frames, REST bodies and channel-layer events."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class SerializationError(TypeError):
    """A value has no JSON form; `shape` describes the structure without its values."""

    def __init__(self, message: str, shape: Any = None) -> None:
        super().__init__(message)
        self.shape = shape


def describe_shape(value: Any, depth: int = 4) -> Any:
    """The structure of `value` with type names for leaves: loggable, unlike the values
    themselves (which may be message bodies)."""
    if isinstance(value, dict):
        if depth <= 0:
            return "dict"
        return {str(k)[:40]: describe_shape(v, depth - 1) for k, v in list(value.items())[:20]}
    if isinstance(value, (list, tuple)):
        if depth <= 0:
            return type(value).__name__
        return [describe_shape(v, depth - 1) for v in value[:5]]
    return type(value).__name__


def format_time(value: dt.datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with milliseconds and a Z."""
    if value.utcoffset() is None:
        raise SerializationError("naive datetime: Linkup stores aware UTC times only")
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    # isoformat pads the year to four digits (strftime's %Y does not, below 1000).
    return utc.isoformat(timespec="milliseconds") + "Z"


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        raise SerializationError("bytes have no JSON form")
    raise SerializationError(f"{type(value).__name__} has no JSON form")


def dumps(value: Any) -> bytes:
    """Serialize to JSON bytes; raise SerializationError for values with no JSON form."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except (orjson.JSONEncodeError, SerializationError) as exc:
        raise SerializationError(str(exc), describe_shape(value)) from exc


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


def loads(data: str | bytes) -> Any:
    """Parse JSON; raise ValueError on anything that is not JSON."""
    return orjson.loads(data)


def to_json_native(value: Any) -> Any:
    """Round-trip through JSON, so what goes on a channel layer is plain JSON data.

    The in-memory layer would carry datetimes and UUIDs; channels_redis's msgpack would
    reject them. Every event takes this path so both layers see the same values."""
    return orjson.loads(dumps(value))
