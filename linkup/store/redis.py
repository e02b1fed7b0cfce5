"""The shared Redis, in one place: where it is, clients for it, the names of every key Linkup
keeps there, and how a process carries on while it does not answer.

Linkup uses the channel layer's Redis (channels_redis) and its key prefix, so a deployment
names Redis once. Without channels_redis there is no shared Redis: every helper here says so
(None), and each caller falls back to this process's own state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from linkup.core.log import log_event

# What a Redis that is down, refusing or too slow raises at its callers.
REDIS_DOWN = (RedisError, OSError, TimeoutError)


def address() -> str | None:
    """The Redis URL of the channel layer, when it is channels_redis; else None."""
    config = settings.CHANNEL_LAYERS.get("default", {})
    if not str(config.get("BACKEND", "")).startswith("channels_redis"):
        return None
    hosts = config.get("CONFIG", {}).get("hosts") or ["redis://localhost:6379"]
    first = hosts[0]
    if isinstance(first, dict):
        return str(first.get("address"))
    if isinstance(first, (tuple, list)):
        return f"redis://{first[0]}:{first[1]}"
    return str(first)


def prefix() -> str:
    """The channel layer's key prefix: Linkup's own keys live under it too."""
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    return str(config.get("prefix", "linkup"))


@dataclass(frozen=True)
class Keys:
    """The name of every key Linkup keeps in Redis. The server's presence store and the task
    worker (which asks who is online before emailing) both name keys through here, so a
    renamed key cannot leave one of them reading a key nobody writes."""

    prefix: str

    def presence_conns(self, user: int) -> str:
        """Sorted set: the user's live chat connections, scored by expiry."""
        return f"{self.prefix}:presence:conns:{user}"

    @property
    def presence_present(self) -> str:
        """Set: users shown online (or offline within their grace period)."""
        return f"{self.prefix}:presence:present"

    @property
    def presence_gone(self) -> str:
        """Hash: user -> when their last connection went (in their grace period)."""
        return f"{self.prefix}:presence:gone"

    def counted(self, kind: str, user: int) -> str:
        """Sorted set: the user's live sockets of another kind than chat (notifications)."""
        return f"{self.prefix}:presence:{kind}:{user}"

    def focus(self, room: int) -> str:
        """Hash: "user:connection" of every socket showing the room."""
        return f"{self.prefix}:presence:focus:{room}"

    def hidden(self, user: int) -> str:
        """Hash: the user's chat sockets whose tab is hidden (connection -> 1)."""
        return f"{self.prefix}:presence:hidden:{user}"

    def limit(self, name: str, key: object) -> str:
        """Hash: one token bucket of the limiter `name` (send, typing) for `key`."""
        return f"{self.prefix}:limit:{name}:{key}"


def keys() -> Keys:
    return Keys(prefix())


def hidden_of(live: list[Any], hidden: list[Any]) -> bool | None:
    """From a user's live chat connections and their hidden ones (as Redis answers them):
    whether every live one is in a hidden tab; None with none live."""
    if not live:
        return None
    return {_text(c) for c in live} <= {_text(c) for c in hidden}


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def async_client(connections: int, wait_s: float, timeout_s: float) -> aioredis.Redis | None:
    """A client with a pool of its own, for the running event loop; None without Redis.

    The pool is bounded and makes a caller wait for a free connection (up to `wait_s`):
    redis-py's default pool raises "Too many connections" past 100, which 1,000 sockets
    closing at once reach."""
    url = address()
    if url is None:
        return None
    pool: aioredis.BlockingConnectionPool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=wait_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return aioredis.Redis(connection_pool=pool)


def sync_client(timeout_s: float) -> redis.Redis | None:
    """A blocking client for the task worker (close it after use); None without Redis."""
    url = address()
    if url is None:
        return None
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


class Outage:
    """Whether to ask Redis now, with one log line an outage. After a failure Redis is left
    alone for `pause_s`; an answer ends the outage only if it was asked after the last
    failure (a late answer to an earlier call does not)."""

    def __init__(self, what: str, pause_s: float = 1.0) -> None:
        self.what = what
        self.pause_s = pause_s
        self.down_until = 0.0  # monotonic; non-zero from a failure until an answer
        self.failed_at = 0.0

    def ask(self) -> float | None:
        """The time of asking, or None while paused (decide without Redis)."""
        now = time.monotonic()
        return None if now < self.down_until else now

    def failed(self, exc: BaseException) -> None:
        if not self.down_until:
            log_event(
                logging.WARNING,
                "connection",
                f"{self.what} fall back to this process: Redis does not answer",
                exc,
            )
        self.failed_at = time.monotonic()
        self.down_until = self.failed_at + self.pause_s

    def answered(self, asked: float) -> None:
        if self.down_until and asked > self.failed_at:
            log_event(logging.INFO, "connection", f"{self.what} shared through Redis again")
            self.down_until = 0.0
