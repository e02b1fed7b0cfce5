"""ASGI pieces for a Django site that adds Linkup (public: `websocket_application`,
`RequestThreads`)."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from channels.routing import URLRouter
from django.conf import settings
from django.db import DatabaseError

from linkup.actions.presence import do_forget_stale_presence
from linkup.checks import validate_startup
from linkup.core.conf import setting
from linkup.core.log import log_event
from linkup.core.looplocal import Turns
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


class RequestThreads:
    """Wrap Django's HTTP application so that each request's synchronous work (the ORM
    under async views, Django's own signal receivers) runs on one of a few long-lived
    threads, the least busy, instead of a thread Django starts for that request alone.

    A new thread per request costs a new database connection per request (SQLite opens its
    file and sets its pragmas; measured: 8.2 ms of CPU for `GET /me`, 5.7 ms without), and
    every request then queues behind the others for the CPU it spent. With these threads
    each keeps its connection (SQLite) or borrows one from the pool (PostgreSQL), and the
    sockets' own database thread is not among them, so no burst of requests queues a
    socket's work.

    Two more guards against one client taking the process (issue 16): at most
    HTTP_PER_ADDRESS requests of one client address run at once (the others wait, costing
    nothing; behind a proxy, let uvicorn take the client's address from its headers), and a
    request that carries a credential and was refused 429 by the API is refused here,
    without Django, until its `Retry-After` is over, each refusal held half a second to a
    second."""

    def __init__(self, app: Any, threads: int | None = None) -> None:
        self.app = app
        count = threads or int(setting("HTTP_THREADS"))
        self.executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"linkup-http-{n}")
            for n in range(count)
        ]
        self.busy = [0] * count
        self.addresses = Turns(lambda: int(setting("HTTP_PER_ADDRESS")))
        self.refused: dict[tuple[Any, ...], float] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _too_large(scope):
            await _refuse_too_large(send)
            return
        if _a_file(scope):
            # A file streams for as long as the client reads it (a player asking for ranges
            # it then stops reading): it takes no turn of its address, or two such would hold
            # up every other request from there. Its own budget and membership still apply.
            await self._run(scope, receive, send)
            return
        told = self.told_to_wait(scope)
        if told is not None and told[1] > 0:
            await _hold_and_refuse(send, told[1])
            return
        async with self.addresses.turn(str((scope.get("client") or ("?",))[0])):
            # Again: the same credential may have been refused while this one waited its
            # turn (a flood queues many at once), and a refusal here costs no Django.
            told = self.told_to_wait(scope)
            if told is None or told[1] <= 0:
                watched = send if told is None else self._watching(send, told[0])
                await self._run(scope, receive, watched)
                return
        await _hold_and_refuse(send, told[1])

    def told_to_wait(self, scope: Any) -> tuple[tuple[Any, ...], float] | None:
        """For a request that carries a credential (a bearer token or a session cookie):
        its key, and how long it was told to wait (`Retry-After`) when it was last refused
        429 and is not yet over (0.0 if not). A client that asks again before then is
        refused here, without Django: a flood of refused requests costs next to nothing."""
        credential = None
        for name, value in scope.get("headers") or ():
            if name in (b"authorization", b"cookie"):
                credential = (credential or b"") + value
        if credential is None:
            return None
        client = (scope.get("client") or ("?",))[0]
        key = (client, scope.get("method"), scope.get("path"), hash(credential))
        now = time.monotonic()
        until = self.refused.get(key, 0.0)
        if until and until <= now:
            del self.refused[key]
        return key, max(0.0, until - now)

    def _watching(self, send: Any, key: tuple[Any, ...]) -> Any:
        async def watched(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 429:
                headers = {n.lower(): v for n, v in message.get("headers") or ()}
                value = headers.get(b"retry-after", b"")
                # The API's refusals only (a page's 429 is a page, and stays one).
                json = headers.get(b"content-type", b"").startswith(b"application/json")
                if json and value.isdigit():
                    now = time.monotonic()
                    if len(self.refused) >= 100_000:
                        self.refused = {k: t for k, t in self.refused.items() if t > now}
                    self.refused[key] = now + int(value)
            await send(message)

        return watched

    async def _run(self, scope: Any, receive: Any, send: Any) -> None:
        chosen = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[chosen] += 1
        try:
            # Django's own per-request context, inside this one, then adds nothing.
            async with ThreadSensitiveContext(executor=self.executors[chosen]):
                await self.app(scope, receive, send)
        finally:
            self.busy[chosen] -= 1


# An upload's multipart framing around its file (boundaries, part headers).
UPLOAD_SLACK_BYTES = 16 * 1024


def _too_large(scope: Any) -> bool:
    """An upload whose stated length is over UPLOAD_MAX_BYTES: refused before Django reads
    (and spools to disk) a byte of its body."""
    if scope.get("method") != "POST" or not str(scope.get("path", "")).endswith("/uploads"):
        return False
    for name, value in scope.get("headers") or ():
        if name == b"content-length" and value.isdigit():
            return int(value) > int(setting("UPLOAD_MAX_BYTES")) + UPLOAD_SLACK_BYTES
    return True  # no length (chunked): it could be any size, and Django would read it all


def _a_file(scope: Any) -> bool:
    return scope.get("method") in ("GET", "HEAD") and "/attachments/" in str(scope.get("path", ""))


async def _refuse_too_large(send: Any) -> None:
    """The contract's 413, as the API would have answered it (the connection then closes:
    the body is never read)."""
    limit = int(setting("UPLOAD_MAX_BYTES"))
    detail = f"an upload states its Content-Length, and a file is at most {limit:,} bytes"
    body = b'{"error":{"code":"too_large","detail":"' + detail.encode() + b'"}}'
    await _answer(send, 413, body, (b"connection", b"close"))


async def _hold_and_refuse(send: Any, wait: float) -> None:
    """Hold a moment before the answer (a tarpit): a client that floods on gets its refusals
    at the pace it was asked to keep, not as fast as it asks. Each is held a while of its
    own, half a second to a second at random, not until the wait is over: held until then,
    a flood's refusals were all answered at that moment and its threads all asked again
    together, beside the first of them let through to Django (20 requests within 10 ms once
    a second: the reads flood's 2.2-3.3x idle ping p99 in tests/test_budgets.py)."""
    held = random.uniform(0.5, 1.0)
    await asyncio.sleep(held)
    await _refuse(send, wait - held)


async def _refuse(send: Any, wait: float) -> None:
    """The contract's 429, as the API would have answered it."""
    body = b'{"error":{"code":"rate_limited","detail":"Slow down: wait as Retry-After says."}}'
    await _answer(send, 429, body, (b"retry-after", str(max(1, math.ceil(wait))).encode()))


async def _answer(send: Any, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    """A JSON answer straight from here, Django never involved."""
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start + list(headers)})
    await send({"type": "http.response.body", "body": body})
