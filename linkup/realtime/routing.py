"""WebSocket routes, each with the documented example path it must match."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, path

from linkup.realtime.consumers import ChatConsumer, NotificationConsumer

# name -> example path from the protocol documentation.
ROUTE_EXAMPLES = {"linkup-chat": "/ws/chat/", "linkup-notifications": "/ws/notifications/"}

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi(), name="linkup-chat"),
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="linkup-notifications"),
]


def route_regex(pattern: URLPattern) -> re.Pattern[str]:
    """Compile a route's pattern (raises re.error or ImproperlyConfigured when broken)."""
    return pattern.pattern.regex


def validate_routes(patterns: list[Any], examples: dict[str, str]) -> list[str]:
    """Return one message per broken route: a pattern that does not compile, a route with no
    documented example, or an example its route does not match."""
    problems: list[str] = []
    for pattern in patterns:
        name = getattr(pattern, "name", None) or str(getattr(pattern, "pattern", pattern))
        try:
            regex = route_regex(pattern)
        except Exception as exc:  # re.error, ImproperlyConfigured, TypeError: all fatal here
            problems.append(f"WebSocket route {name!r} does not compile: {exc}")
            continue
        example = examples.get(name)
        if example is None:
            problems.append(f"WebSocket route {name!r} has no documented example path")
            continue
        # Channels' URLRouter matches the path without its leading slash.
        if not regex.search(example.removeprefix("/")):
            problems.append(
                f"WebSocket route {name!r} ({pattern.pattern}) "
                f"does not match its example {example!r}"
            )
    return problems
