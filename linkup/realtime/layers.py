"""The embedded default's channel layer: Channels' in-memory layer, made to scale with sockets.

`channels.layers.InMemoryChannelLayer` (which its maintainers describe as meant for tests)
sweeps every channel and every group membership for expired entries on each `send`,
`receive` and `group_send`: with N sockets, every frame costs O(N). Profiled with 10,000
sockets open in one process, the sweep took over a third of the server's CPU and the
handshakes crawled. This subclass keeps the layer's behaviour (capacity, message expiry,
group expiry, `ChannelFull` dropped in group sends) and changes when work happens:

- the sweep runs at most once per `sweep_interval` seconds (default 1), so an expired
  message or membership may outlive its expiry by that much;
- `group_send` copies the message once and queues that copy for every member, where the
  parent deep-copies it once per recipient (a third of the server's CPU with 5,000
  deliveries a second) and creates a task per recipient. Recipients of one group send share
  the copy: treat received messages as read-only, as Linkup's consumers do. `send` to one
  channel still copies.
"""

from __future__ import annotations

import asyncio
import time
from copy import deepcopy
from typing import Any

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
        assert "__asgi_channel__" not in message
        self.require_valid_group_name(group)
        self._clean_expired()
        members = self.groups.get(group)
        if not members:
            return
        item = (time.time() + self.expiry, deepcopy(message))
        for channel in list(members):
            queue = self.channels.get(channel)
            if queue is None:
                queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                # ChannelFull: at-most-once, as the layer specification allows; Linkup's
                # clients catch up by their seq cursors.
                pass

    async def flush(self) -> None:
        await super().flush()
        self._next_sweep = 0.0
