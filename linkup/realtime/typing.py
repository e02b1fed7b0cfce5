"""Typing state of one socket: pure, with time injected (no timers inside)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TypingTracker:
    """Which rooms this socket is typing in, and what to tell the room's other members.

    A "start" is relayed when typing begins and, while it goes on, at most every
    `relay_interval_s` (clients re-send start every 3 s, so receivers can expire a stale
    indicator); refreshes in between are absorbed. Typing ends on "stop", on a send, when the
    socket closes, or `expire_s` after the last refresh."""

    expire_s: float = 5.0
    relay_interval_s: float = 3.0
    refreshed: dict[int, float] = field(default_factory=dict)  # room -> last start seen
    relayed: dict[int, float] = field(default_factory=dict)  # room -> last start relayed

    def start(self, room: int, now: float) -> bool:
        """Record a start; return True if it is to be relayed."""
        self.refreshed[room] = now
        last = self.relayed.get(room)
        if last is not None and now - last < self.relay_interval_s:
            return False
        self.relayed[room] = now
        return True

    def stop(self, room: int) -> bool:
        """Record a stop; return True if a stop is to be relayed (the room was typing)."""
        self.relayed.pop(room, None)
        return self.refreshed.pop(room, None) is not None

    def expired(self, now: float) -> list[int]:
        """Rooms whose typing lapsed (no refresh for expire_s); they are stopped."""
        lapsed = [r for r, at in self.refreshed.items() if now - at >= self.expire_s]
        for room in lapsed:
            self.stop(room)
        return sorted(lapsed)

    def next_expiry(self) -> float | None:
        """When the earliest typing lapses, or None when nothing is typing."""
        if not self.refreshed:
            return None
        return min(self.refreshed.values()) + self.expire_s

    def rooms(self) -> list[int]:
        return sorted(self.refreshed)
