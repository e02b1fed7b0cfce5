"""Socket authentication: a bearer header, a one-use ticket, or the session cookie with its
Origin checked."""

from __future__ import annotations

from dataclasses import dataclass
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
from linkup.core.conf import allowed_origins, normal_origin
from linkup.core.errors import BAD_ORIGIN, UNAUTHORIZED
from linkup.realtime import coalesce


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _session_user(session_key: str) -> Any:
    engine = import_string(settings.SESSION_ENGINE)
    request = SimpleNamespace(session=engine.SessionStore(session_key))
    return get_user(request)  # type: ignore[arg-type]


def origin_allowed(origin: str, host: str | None, scheme: str = "ws") -> bool:
    """Is a cookie handshake's Origin ours: listed exactly, or this very server as served?

    The server's own origin is the handshake's scheme (`wss` is `https`, `ws` is `http`)
    with the whole Host header: scheme, host and port must all match (default ports aside,
    which browsers leave out), so a page on another port or over the other scheme of the
    same host is another origin (RFC 6454). The Host must also match ALLOWED_HOSTS without
    a wildcard, so a DNS-rebinding page cannot pass as us."""
    if not origin:
        return False
    origin = normal_origin(origin)
    if origin in allowed_origins():
        return True
    served = "https" if scheme in ("wss", "https") else "http"
    if not host or origin != normal_origin(f"{served}://{host}"):
        return False
    hostname, _port = split_domain_port(host)
    patterns = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    return bool(hostname) and validate_host(hostname, patterns)


@dataclass(frozen=True)
class SocketAuth:
    """Who opened a socket, with what (the token's id, or the digest of the session that
    signed in, directly or through a ticket it minted: the socket closes when that ends),
    or why it is refused (a close code)."""

    user: Any
    token_id: int | None = None
    session: str | None = None
    refusal: int | None = None
    # The user's rooms, read with a bearer token (the chat socket subscribes them before it
    # reads their cursors); None when the handshake did not read them.
    rooms: frozenset[int] | None = None


def _refused(code: int) -> SocketAuth:
    return SocketAuth(AnonymousUser(), refusal=code)


async def authenticate_socket(scope: dict[str, Any]) -> SocketAuth:
    """Authenticate a WebSocket handshake."""
    headers = _headers(scope)
    authorization = headers.get("authorization")
    if authorization is not None:
        # A bearer header decides alone: it never falls back to the cookie.
        scheme, _, raw = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return _refused(UNAUTHORIZED)
        # Handshakes arriving together share one query (realtime.coalesce).
        found = await coalesce.tokens().get(raw.strip())
        if found is None:
            return _refused(UNAUTHORIZED)
        user, token_id, rooms = found
        return SocketAuth(user, token_id=token_id, rooms=rooms)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "ticket" in query:
        spent = await database_sync_to_async(credentials.spend_ticket)(query["ticket"][0])
        if spent is None:
            return _refused(UNAUTHORIZED)
        return SocketAuth(spent[0], token_id=spent[1], session=spent[2])
    session_key = parse_cookie(headers.get("cookie", "")).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return _refused(UNAUTHORIZED)
    # The cookie rides along on any page's request: only our own origins may use it.
    if not origin_allowed(
        headers.get("origin", ""), headers.get("host"), scope.get("scheme", "ws")
    ):
        return _refused(BAD_ORIGIN)
    user = await database_sync_to_async(_session_user)(session_key)
    if not user.is_authenticated:
        return _refused(UNAUTHORIZED)
    return SocketAuth(user, session=credentials.digest(session_key))


class SocketAuthMiddleware:
    """Put `user` and `linkup_auth` (a SocketAuth) in a WebSocket scope."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            auth = await authenticate_socket(scope)
            scope = {**scope, "user": auth.user, "linkup_auth": auth}
        return await self.inner(scope, receive, send)
