"""The embedded default's channel layer: Channels' in-memory layer, made to scale with sockets.

`channels.layers.InMemoryChannelLayer` (which its maintainers describe as meant for tests)
sweeps every channel and every group membership for expired entries on each `send`,
`receive` and `group_send`: with N sockets, every frame costs O(N). Profiled with 10,000
sockets open in one process, the sweep took over a third of the server's CPU and the
handshakes crawled. This subclass keeps the layer's behaviour (capacity, message expiry,
group expiry, the deep copy per recipient, `ChannelFull` dropped in group sends) and only
changes when work happens:

- the sweep runs at most once per `sweep_interval` seconds (default 1), so an expired
  message or membership may outlive its expiry by that much;
- `group_send` hands the message to each channel in turn instead of creating one task per
  recipient (`send` never waits, so the tasks bought nothing).
"""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class EmbeddedChannelLayer(InMemoryChannelLayer):
    def __init__(self, sweep_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass  # at-most-once, as the layer specification allows: seq cursors catch up

    async def flush(self) -> None:
        await super().flush()
        self._next_sweep = 0.0
