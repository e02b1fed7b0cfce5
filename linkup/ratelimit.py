"""Token buckets: a pure step function with time injected, and an in-process store."""

from __future__ import annotations

import time
from dataclasses import dataclass

EPSILON = 1e-9


@dataclass
class Bucket:
    tokens: float
    updated: float


def take(bucket: Bucket | None, now: float, rate: float, burst: int) -> tuple[Bucket, float]:
    """Try to take one token; return the new bucket and 0.0, or the seconds until one is due."""
    if bucket is None:
        bucket = Bucket(tokens=float(burst), updated=now)
    elapsed = max(0.0, now - bucket.updated)
    tokens = min(float(burst), bucket.tokens + elapsed * rate)
    # Float time: (now + wait) - now can fall a hair short of wait, so a client that waits
    # exactly the time it was told must be let in: allow within a billionth of a token.
    if tokens >= 1.0 - EPSILON:
        return Bucket(tokens=max(0.0, tokens - 1.0), updated=now), 0.0
    return Bucket(tokens=tokens, updated=now), (1.0 - tokens) / rate


class LocalLimiter:
    """Buckets keyed by user id, for one process (one event loop: no locking needed)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[object, Bucket] = {}
        self._max_keys = max_keys

    def hit(self, key: object, rate: float, burst: int, now: float | None = None) -> float:
        """Take a token for `key`; return 0.0 if allowed, else seconds to wait."""
        now = time.monotonic() if now is None else now
        bucket, wait = take(self._buckets.get(key), now, rate, burst)
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
