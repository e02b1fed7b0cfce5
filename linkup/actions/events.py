"""Events after commit: how actions queue them, and the group names.

Actions run on the database thread inside `transaction.atomic()` and call
`send_event_on_commit`. The event is round-tripped to plain JSON at once (so a payload the
Redis layer would refuse fails inside the transaction, where it rolls back), and queued when
the transaction commits. `linkup.realtime.edges.perform` runs an action on the database
thread, collects the events its commits queued, and hands them to the process's delivery
hub (`linkup.realtime.hub.publish`) on the async side: a slow or dead channel layer never
holds the one database thread, and never fails a committed write. Callers of an action
carry no events. `publish` here sends straight to the layer, for events committed where no
hub's event loop waits (the admin, management commands).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from linkup.core.log import log_event
from linkup.core.serialization import to_json_native
from linkup.core.shapes import EventPayload

# (group, payload): the payload already round-tripped to plain JSON, as Redis will carry it.
Event = tuple[str, dict[str, Any]]

_local = threading.local()


def room_group(room_id: int) -> str:
    """Group of every chat socket whose user is in the room."""
    return f"linkup.room.{room_id}"


def user_group(user_id: int) -> str:
    """Group of every chat socket of one user."""
    return f"linkup.user.{user_id}"


def notify_group(user_id: int) -> str:
    """Group of every notifications socket of one user."""
    return f"linkup.notify.{user_id}"


@contextmanager
def collecting_events() -> Iterator[list[Event]]:
    """Collect the events committed inside the block instead of sending them. Blocks nest:
    an event reaches every collection open when it was queued (one send's, within the
    batch's that the edge publishes)."""
    stack: list[list[Event]] = getattr(_local, "stack", None) or []
    _local.stack = stack
    events: list[Event] = []
    stack.append(events)
    try:
        yield events
    finally:
        stack.pop()


def send_event_on_commit(group: str, event: EventPayload) -> None:
    """Queue `event` for `group` when the current transaction commits (never if it rolls back)."""
    payload = to_json_native(event)
    targets = list(getattr(_local, "stack", None) or [])

    def queue() -> None:
        for target in targets:
            target.append((group, payload))
        if not targets:
            # Called outside edges.perform (admin, management commands): no event loop of
            # ours is waiting, so send from this thread.
            async_to_sync(publish)([(group, payload)])

    transaction.on_commit(queue)


async def publish(events: list[Event]) -> None:
    """Ring the doorbells; a channel-layer failure is logged, never raised (clients catch up)."""
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for group, payload in events:
        try:
            # The group named in the event: a process's hub, in many groups with one
            # channel, routes by it (linkup.realtime.hub).
            await layer.group_send(group, {**payload, "group": group})
        except Exception as exc:
            log_event(
                logging.WARNING,
                "delivery",
                "channel layer send failed",
                exc,
                group=group,
                event=payload.get("type"),
            )
