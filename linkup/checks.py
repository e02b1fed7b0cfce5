"""System checks, also run from the ASGI entry point (ASGI servers skip Django's checks)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from linkup.core.conf import DEFAULTS
from linkup.core.log import log_event
from linkup.realtime import routing

TAG = "linkup"


@checks.register(TAG)
def check_routing(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems = routing.validate_routes(routing.websocket_urlpatterns, routing.ROUTE_EXAMPLES)
    hint = "Fix the pattern in linkup/realtime/routing.py."
    return [checks.Error(problem, id="linkup.E001", hint=hint) for problem in problems]


@checks.register(TAG)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    overrides = getattr(settings, "LINKUP", {}) or {}
    for name in overrides:
        if name not in DEFAULTS:
            errors.append(
                checks.Error(
                    f"Unknown Linkup setting {name!r}",
                    id="linkup.E002",
                    hint=f"Known settings: {', '.join(sorted(DEFAULTS))}",
                )
            )
    origins = overrides.get("ALLOWED_ORIGINS")
    if origins is not None and "*" in origins:
        errors.append(
            checks.Error(
                "LINKUP['ALLOWED_ORIGINS'] may not contain '*'",
                id="linkup.E003",
                hint="List the exact origins of the pages that open cookie sockets.",
            )
        )
    for name in ("SEND_RATE_PER_S", "TYPING_RATE_PER_S", "SEND_BURST", "TYPING_BURST"):
        value = overrides.get(name, DEFAULTS[name])
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            errors.append(
                checks.Error(
                    f"LINKUP[{name!r}] must be a number above 0, not {value!r}",
                    id="linkup.E005",
                    hint="A token bucket needs a positive rate and burst.",
                )
            )
    if not getattr(settings, "CHANNEL_LAYERS", None):
        errors.append(
            checks.Error(
                "CHANNEL_LAYERS is not configured",
                id="linkup.E004",
                hint="Use linkup.layers.EmbeddedChannelLayer for one process, "
                "channels_redis for several.",
            )
        )
    return errors


def validate_startup() -> None:
    """Run Linkup's checks; raise ImproperlyConfigured naming every problem."""
    problems = checks.run_checks(tags=[TAG])
    serious = [p for p in problems if p.is_serious()]
    if serious:
        for problem in serious:
            # A broken route is a routing problem; a bad setting breaks connection set-up.
            category = "routing" if problem.id == "linkup.E001" else "connection"
            log_event(logging.CRITICAL, category, f"{problem.id}: {problem.msg}")
        raise ImproperlyConfigured(
            "Linkup cannot start:\n" + "\n".join(f"  {p.id}: {p.msg} ({p.hint})" for p in serious)
        )
