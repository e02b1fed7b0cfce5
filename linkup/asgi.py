"""ASGI pieces for a Django site that adds Linkup (public: `websocket_application`)."""

from __future__ import annotations

import logging
from typing import Any

from channels.routing import URLRouter
from django.conf import settings
from django.db import DatabaseError

from linkup.actions.presence import do_forget_stale_presence
from linkup.checks import validate_startup
from linkup.core.log import log_event
from linkup.realtime import routing
from linkup.realtime.auth import SocketAuthMiddleware


def websocket_application() -> Any:
    """The authenticated WebSocket router, after validating routes and settings.

    ASGI servers do not run Django's system checks, so this raises ImproperlyConfigured at
    start-up, naming the broken route or setting, instead of failing on the first socket."""
    validate_startup()
    forget_stale_presence()
    return SocketAuthMiddleware(URLRouter(routing.websocket_urlpatterns))


def forget_stale_presence() -> None:
    """With an in-process channel layer this process is the only one: nobody is connected
    as it starts, so whoever the database still shows online (the last process was killed
    before they could go offline) went when it died. The task worker reads that flag to
    decide who is away. (With Redis, the worker reads presence from Redis itself.)"""
    backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
    if backend.startswith("channels_redis") or not backend:
        return
    try:
        stale = do_forget_stale_presence()
    except DatabaseError as exc:  # not migrated yet, or not reachable: nothing to correct
        log_event(logging.WARNING, "database", "stale presence not reset", exc)
        return
    if stale:
        log_event(logging.INFO, "connection", "presence of a killed process reset", count=stale)
