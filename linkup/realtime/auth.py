"""Socket authentication: a bearer header, a one-use ticket, or the session cookie with its
Origin checked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.module_loading import import_string

from linkup.actions import credentials
from linkup.core.conf import allowed_origins
from linkup.core.errors import BAD_ORIGIN, UNAUTHORIZED
from linkup.realtime import coalesce


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _session_user(session_key: str) -> Any:
    engine = import_string(settings.SESSION_ENGINE)
    request = SimpleNamespace(session=engine.SessionStore(session_key))
    return get_user(request)  # type: ignore[arg-type]


def origin_allowed(origin: str, host: str | None) -> bool:
    """Is a cookie handshake's Origin ours: listed, or this very server under an allowed host?

    The same-origin case compares the whole `host:port` exactly (a look-alike such as
    `127.0.0.1:8000.evil.example` is not the host) and requires the Host header to match
    ALLOWED_HOSTS without a wildcard, so a DNS-rebinding page cannot pass as us."""
    if not origin:
        return False
    if origin in allowed_origins():
        return True
    scheme, sep, netloc = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not host or netloc != host.lower():
        return False
    hostname, _port = split_domain_port(host)
    patterns = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    return bool(hostname) and validate_host(hostname, patterns)


async def authenticate_socket(scope: dict[str, Any]) -> tuple[Any, int | None, int | None]:
    """Return (user, token id, refusal close code) for a WebSocket handshake."""
    headers = _headers(scope)
    authorization = headers.get("authorization")
    if authorization is not None:
        # A bearer header decides alone: it never falls back to the cookie.
        scheme, _, raw = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return AnonymousUser(), None, UNAUTHORIZED
        # Handshakes arriving together share one query (realtime.coalesce).
        found = await coalesce.tokens().get(raw.strip())
        if found is None:
            return AnonymousUser(), None, UNAUTHORIZED
        return found[0], found[1], None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "ticket" in query:
        user = await database_sync_to_async(credentials.redeem_ticket)(query["ticket"][0])
        if user is None:
            return AnonymousUser(), None, UNAUTHORIZED
        return user, None, None
    session_key = parse_cookie(headers.get("cookie", "")).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return AnonymousUser(), None, UNAUTHORIZED
    # The cookie rides along on any page's request: only our own origins may use it.
    origin = headers.get("origin", "").rstrip("/").lower()
    if not origin_allowed(origin, headers.get("host")):
        return AnonymousUser(), None, BAD_ORIGIN
    user = await database_sync_to_async(_session_user)(session_key)
    if not user.is_authenticated:
        return AnonymousUser(), None, UNAUTHORIZED
    return user, None, None


class SocketAuthMiddleware:
    """Put `user`, `linkup_token_id` and `linkup_refusal` in a WebSocket scope."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            user, token_id, refusal = await authenticate_socket(scope)
            scope = {**scope, "user": user, "linkup_token_id": token_id, "linkup_refusal": refusal}
        return await self.inner(scope, receive, send)
