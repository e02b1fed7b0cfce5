"""ASGI pieces for a Django site that adds Linkup."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter

from linkup.checks import validate_startup
from linkup.middleware import SocketAuthMiddleware


def websocket_application() -> Any:
    """The authenticated WebSocket router, after validating routes and settings.

    ASGI servers do not run Django's system checks, so this raises ImproperlyConfigured at
    start-up, naming the broken route or setting, instead of failing on the first socket."""
    validate_startup()
    from linkup.routing import websocket_urlpatterns

    return SocketAuthMiddleware(URLRouter(websocket_urlpatterns))
