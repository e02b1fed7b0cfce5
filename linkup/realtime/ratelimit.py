"""Token buckets: a pure step function with time injected, an in-process store, and the
same buckets in Redis, shared by every server process, falling back to the in-process ones
while Redis is down."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from linkup.core.conf import setting
from linkup.core.looplocal import LoopLocal
from linkup.store import redis
from linkup.store.redis import REDIS_DOWN, Keys, Outage

EPSILON = 1e-9


@dataclass
class Bucket:
    tokens: float
    updated: float


def take(
    bucket: Bucket | None, now: float, rate: float, burst: int, cost: int = 1
) -> tuple[Bucket, float]:
    """Try to take one token; return the new bucket and 0.0, or the seconds until one is
    due. A cost of -1 gives a token back instead (never past the burst), and is never
    refused: a login charged up front is refunded when its password was right."""
    if bucket is None:
        bucket = Bucket(tokens=float(burst), updated=now)
    elapsed = max(0.0, now - bucket.updated)
    tokens = min(float(burst), bucket.tokens + elapsed * rate)
    if cost < 0:
        return Bucket(tokens=min(float(burst), tokens - cost), updated=now), 0.0
    # Float time: (now + wait) - now can fall a hair short of wait, so a client that waits
    # exactly the time it was told must be let in: allow within a billionth of a token.
    if tokens >= 1.0 - EPSILON:
        return Bucket(tokens=max(0.0, tokens - 1.0), updated=now), 0.0
    return Bucket(tokens=tokens, updated=now), (1.0 - tokens) / rate


def retry_after(wait: float) -> float:
    """The `retry_after_s` a refusal tells the client: the wait rounded up to the millisecond
    (REST's Retry-After header rounds it up to whole seconds)."""
    return math.ceil(wait * 1000) / 1000


class LocalLimiter:
    """Buckets keyed by user id, for one process (one event loop: no locking needed)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[object, Bucket] = {}
        self._max_keys = max_keys

    def hit(
        self, key: object, rate: float, burst: int, now: float | None = None, cost: int = 1
    ) -> float:
        """Take a token for `key` (cost -1: give one back); return 0.0 if allowed, else
        seconds to wait."""
        now = time.monotonic() if now is None else now
        bucket, wait = take(self._buckets.get(key), now, rate, burst, cost)
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            # Forget full buckets first: a full bucket is the same as no bucket.
            self._buckets = {
                k: b
                for k, b in self._buckets.items()
                if b.tokens + (now - b.updated) * rate < burst
            }
        self._buckets[key] = bucket
        return wait


send_limiter = LocalLimiter()
typing_limiter = LocalLimiter()
search_limiter = LocalLimiter()
login_limiter = LocalLimiter()


# take() in Redis, atomically, so every process spends from one bucket per user. ARGV: rate,
# burst, `now` ('' for Redis's own clock, which every process shares; tests inject it) and
# the cost (1, or -1 to give a token back).
# Numbers cross as %.17g strings, which round-trip a double exactly, so the script answers
# what take() answers for the same times.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[3])
end
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(saved[1]), tonumber(saved[2])
if tokens == nil or updated == nil then
  tokens, updated = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tonumber(ARGV[4]) < 0 then
  tokens = math.min(burst, tokens + 1)
elseif tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'updated', string.format('%.17g', now))
-- A bucket left alone refills in burst / rate seconds, and a full bucket is no bucket.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.17g', wait)
"""


class SharedLimiter:
    """Buckets in Redis, shared by every server process; while Redis cannot answer (within
    `timeout_s`), this process's own buckets decide instead, so a Redis outage never fails
    a send (it fails open to the per-process limit) and costs at most one timeout a
    `pause_s`."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        name: str,
        fallback: LocalLimiter,
        timeout_s: float = 0.25,
        pause_s: float = 1.0,
    ) -> None:
        self._take = client.register_script(_TAKE)
        self._keys = Keys(prefix)
        self._name = name
        self.fallback = fallback
        self.timeout_s = timeout_s
        self.outage = Outage(f"{name} rate limits", pause_s)

    async def hit(
        self, key: object, rate: float, burst: int, now: float | None = None, cost: int = 1
    ) -> float:
        """Take a token for `key` (cost -1: give one back); return 0.0 if allowed, else
        seconds to wait."""
        asked = self.outage.ask()
        if asked is None:
            return self.fallback.hit(key, rate, burst, cost=cost)
        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self._take(
                    keys=[self._keys.limit(self._name, key)],
                    args=[
                        repr(float(rate)),
                        burst,
                        "" if now is None else repr(float(now)),
                        cost,
                    ],
                )
        except REDIS_DOWN as exc:
            self.outage.failed(exc)
            return self.fallback.hit(key, rate, burst, cost=cost)
        self.outage.answered(asked)
        return float(raw)


class LocalLimits:
    """The embedded default: this process's buckets, behind the same awaitable call."""

    def __init__(self, limiter: LocalLimiter) -> None:
        self.fallback = limiter

    async def hit(
        self, key: object, rate: float, burst: int, now: float | None = None, cost: int = 1
    ) -> float:
        return self.fallback.hit(key, rate, burst, now, cost)


class Limits:
    """The limiters one event loop uses: shared through Redis when the channel layer is
    channels_redis (its address and prefix), else this process's own."""

    def __init__(self) -> None:
        self.send: SharedLimiter | LocalLimits = LocalLimits(send_limiter)
        self.typing: SharedLimiter | LocalLimits = LocalLimits(typing_limiter)
        self.search: SharedLimiter | LocalLimits = LocalLimits(search_limiter)
        self.login: SharedLimiter | LocalLimits = LocalLimits(login_limiter)
        if not setting("LIMITS_SHARED"):
            return
        timeout = float(setting("LIMITS_REDIS_TIMEOUT_S"))
        # Its own pool: a send never queues behind presence work for a Redis connection.
        client = redis.async_client(int(setting("LIMITS_REDIS_CONNECTIONS")), timeout, timeout)
        if client is None:
            return
        prefix = redis.prefix()
        self.send = SharedLimiter(client, prefix, "send", send_limiter, timeout_s=timeout)
        self.typing = SharedLimiter(client, prefix, "typing", typing_limiter, timeout_s=timeout)
        self.search = SharedLimiter(client, prefix, "search", search_limiter, timeout_s=timeout)
        self.login = SharedLimiter(client, prefix, "login", login_limiter, timeout_s=timeout)


limits = LoopLocal(Limits)
