"""Password guessing, throttled on every login path (the REST token, the sign-in page and, in
the standalone server, the admin's login).

Two token buckets answer each attempt: one per account (whatever the address: a botnet
guessing one password gets LOGIN_ACCOUNT_BURST tries, then one every
LOGIN_ACCOUNT_REFILL_S) and one per client address (whatever the account: one address
spraying a common password over many accounts is held the same way). Each attempt is charged
to both up front, so parallel guesses cannot all slip past before the first is counted, and a
correct password gets its tokens back: a busy, honest client that signs in many users (a
benchmark, a test suite) never runs dry. The buckets refill, so there is no lock to lift: a
victim whose account an attacker hammered can sign in again LOGIN_ACCOUNT_REFILL_S after the
attack stops. With channels_redis the buckets live in Redis, shared by every process.
"""

from __future__ import annotations

import ipaddress
import math
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from linkup.core.conf import setting
from linkup.core.errors import RateLimited
from linkup.realtime.ratelimit import limits, retry_after


def client_address(request: HttpRequest) -> str:
    """The address a request came from, as the throttle counts it: an IPv6 client by its
    /64 (one host usually holds a whole /64, and could rotate through it)."""
    raw = str(request.META.get("REMOTE_ADDR") or "unknown")
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _buckets(username: str, address: str) -> list[tuple[str, float, int]]:
    return [
        (
            f"account:{unicodedata.normalize('NFKC', username[:150]).casefold()}",
            1.0 / float(setting("LOGIN_ACCOUNT_REFILL_S")),
            int(setting("LOGIN_ACCOUNT_BURST")),
        ),
        (
            f"address:{address}",
            1.0 / float(setting("LOGIN_ADDRESS_REFILL_S")),
            int(setting("LOGIN_ADDRESS_BURST")),
        ),
    ]


async def guarded(request: HttpRequest, username: str, check: Callable[[], Awaitable[Any]]) -> Any:
    """Run `check` (which verifies the password and returns a user or None) if neither the
    account nor the address has run out of attempts; raise RateLimited (with the wait)
    otherwise. A failure keeps its charge; a success is refunded."""
    limiter = limits().login
    charged: list[tuple[str, float, int]] = []
    for key, rate, burst in _buckets(username, client_address(request)):
        wait = await limiter.hit(key, rate, burst)
        if wait:
            for done in charged:  # refused: the attempt costs nothing
                await limiter.hit(*done, cost=-1)
            raise RateLimited(
                "too many failed sign-ins; wait before trying again",
                retry_after_s=retry_after(wait),
            )
        charged.append((key, rate, burst))
    user = await check()
    if user is not None:
        for done in charged:
            await limiter.hit(*done, cost=-1)
    return user


def admin_login(site: Any) -> Any:
    """The admin site's login view behind the same throttle: route it ahead of the admin's
    URLs (``path("admin/login/", admin_login(admin.site))``). The admin answers a wrong
    password with its form again (200) and a right one with a redirect."""

    async def view(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        login = sync_to_async(site.login)
        if request.method != "POST":
            return await login(request, extra_context)
        answered: list[HttpResponse] = []

        async def check() -> HttpResponse | None:
            response = await login(request, extra_context)
            answered.append(response)
            return response if response.status_code in (301, 302, 303) else None

        try:
            await guarded(request, str(request.POST.get("username", "")), check)
        except RateLimited as exc:
            wait = str(max(1, math.ceil(exc.retry_after_s or 1)))
            refused = HttpResponse(
                f"Too many failed sign-ins. Try again in {wait} seconds.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            refused["Retry-After"] = wait
            return refused
        return answered[0]

    return view
