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
from linkup.core.errors import RateLimited
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
    """Try to take `cost` tokens (at most the burst: a request that costs more needs a full
    bucket); return the new bucket and 0.0, or the seconds until they are due. A negative
    cost gives tokens back instead (never past the burst), and is never refused: a login
    charged up front is refunded when its password was right."""
    if bucket is None:
        bucket = Bucket(tokens=float(burst), updated=now)
    elapsed = max(0.0, now - bucket.updated)
    tokens = min(float(burst), bucket.tokens + elapsed * rate)
    if cost < 0:
        return Bucket(tokens=min(float(burst), tokens - cost), updated=now), 0.0
    need = float(min(cost, burst))
    # Float time: (now + wait) - now can fall a hair short of wait, so a client that waits
    # exactly the time it was told must be let in: allow within a billionth of a token.
    if tokens >= need - EPSILON:
        return Bucket(tokens=max(0.0, tokens - need), updated=now), 0.0
    return Bucket(tokens=tokens, updated=now), (need - tokens) / rate


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
        """Take `cost` tokens for `key` (negative: give them back); return 0.0 if allowed,
        else seconds to wait."""
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
budget_limiter = LocalLimiter()

# Budgets per user for the work that is not a send (issue 16): each names its rate and burst
# settings and what a refusal says ran out. A request costs one token, except sync (one per
# cursor) and member additions (one per member).
BUDGETS = {
    "frames": ("FRAME_RATE_PER_S", "FRAME_BURST", "pings, receipts and focus changes"),
    "sync": ("SYNC_CURSORS_PER_S", "SYNC_CURSOR_BURST", "sync cursors"),
    "reads": ("READ_RATE_PER_S", "READ_BURST", "reads"),
    "rooms": ("ROOM_CREATE_RATE_PER_S", "ROOM_CREATE_BURST", "rooms created"),
    "members": ("MEMBER_ADD_RATE_PER_S", "MEMBER_ADD_BURST", "members added"),
    "groups": ("GROUP_CREATE_RATE_PER_S", "GROUP_CREATE_BURST", "groups created"),
    "verify_email": ("VERIFY_EMAIL_RATE_PER_S", "VERIFY_EMAIL_BURST", "verification emails"),
    "uploads": ("UPLOAD_RATE_PER_S", "UPLOAD_BURST", "uploads"),
    "files": ("FILE_READ_RATE_PER_S", "FILE_READ_BURST", "attachment fetches"),
    "search": ("MESSAGE_SEARCH_RATE_PER_S", "MESSAGE_SEARCH_BURST", "message searches"),
    "reports": ("REPORT_RATE_PER_S", "REPORT_BURST", "reports"),
    "exports": ("EXPORT_RATE_PER_S", "EXPORT_BURST", "data exports"),
}


# take() in Redis, atomically, so every process spends from one bucket per user. ARGV: rate,
# burst, `now` ('' for Redis's own clock, which every process shares; tests inject it) and
# the cost (tokens to take, or a negative number to give back).
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
local cost = tonumber(ARGV[4])
local need = math.min(cost, burst)
local wait = 0
if cost < 0 then
  tokens = math.min(burst, tokens - cost)
elseif tokens >= need - 1e-9 then
  tokens = math.max(0, tokens - need)
else
  wait = (need - tokens) / rate
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
        """Take `cost` tokens for `key` (negative: give them back); return 0.0 if allowed,
        else seconds to wait."""
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
        self.budget: SharedLimiter | LocalLimits = LocalLimits(budget_limiter)
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
        self.budget = SharedLimiter(client, prefix, "budget", budget_limiter, timeout_s=timeout)


limits = LoopLocal(Limits)


async def spend(budget: str, user_id: int, cost: int = 1) -> None:
    """Charge a user's budget (see BUDGETS); RateLimited, with the wait, when it is spent."""
    rate, burst, what = BUDGETS[budget]
    wait = await limits().budget.hit(
        f"{budget}:{user_id}", float(setting(rate)), int(setting(burst)), cost=max(1, cost)
    )
    if wait:
        raise RateLimited(
            f"too many {what}; wait retry_after_s before asking again",
            retry_after_s=retry_after(wait),
        )
