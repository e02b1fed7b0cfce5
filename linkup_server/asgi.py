"""ASGI entry point of the standalone server (uvicorn linkup_server.asgi:application)."""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkup_server.settings")
http_application: Any = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.storage import (  # noqa: E402
    ManifestFilesMixin,
    staticfiles_storage,
)
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.handlers.asgi import get_script_prefix  # noqa: E402

from linkup.asgi import RequestThreads, websocket_application  # noqa: E402  (apps loaded)
from linkup_server.cli import static_lock  # noqa: E402

# A static file's body goes out in pieces of this size (the web client's files are one piece).
CHUNK = 64 * 1024


class StaticFiles:
    """The web client's files (STATIC_URL), answered by WhiteNoise in front of Django.

    WhiteNoise 6 has no ASGI interface, and its Django middleware is synchronous: listed in
    MIDDLEWARE, it would send every request, the API's too, to a thread and back, and hold
    that thread while the request's async view runs. Here its middleware is only the index of
    the files, built once at start from STATIC_ROOT (`collectstatic`'s output) and the
    WHITENOISE_* settings (in DEBUG, looked up on disk per request, the apps' folders too);
    a request for one of them is answered by WhiteNoise's responder for that file (headers
    computed at start, conditional and range requests, the gzip copy when accepted), the file
    opened and read on a worker thread. Any other path (a traversal, a missing file, a
    directory) is not in the index and goes on to Django, which answers 404."""

    def __init__(self, app: Any) -> None:
        from whitenoise.middleware import WhiteNoiseMiddleware

        self.app = app
        self.index = WhiteNoiseMiddleware(get_response=None)
        self.prefix: str = self.index.static_prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # The path as Django reads it (request.path_info), which WhiteNoise's index uses.
            path = scope["path"].removeprefix(get_script_prefix(scope))
            if path.startswith(self.prefix):
                static_file = await self.find(path)
                if static_file is not None:
                    await self.serve(static_file, scope, send)
                    return
        await self.app(scope, receive, send)

    async def find(self, path: str) -> Any:
        if self.index.autorefresh:
            # WhiteNoise refuses non-canonical paths (`..`, backslashes) before the disk.
            return await asyncio.to_thread(self.index.find_file, path)
        return self.index.files.get(path)

    async def serve(self, static_file: Any, scope: Any, send: Any) -> None:
        response, chunk = await asyncio.to_thread(
            _respond, static_file, scope["method"], _request_headers(scope)
        )
        try:
            headers = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers
            ]
            await send(
                {"type": "http.response.start", "status": int(response.status), "headers": headers}
            )
            while True:
                more = len(chunk) == CHUNK
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break
                chunk = await asyncio.to_thread(response.file.read, CHUNK)
        finally:
            if response.file is not None:
                response.file.close()


def _respond(static_file: Any, method: str, request_headers: dict[str, str]) -> tuple[Any, bytes]:
    """WhiteNoise's response to the request and the first CHUNK of its body (one thread hop
    for a file of the web client: opening it and reading it)."""
    response = static_file.get_response(method, request_headers)
    if response.file is None:  # HEAD, 304, 405
        return response, b""
    try:
        return response, response.file.read(CHUNK)
    except BaseException:
        response.file.close()
        raise


def _request_headers(scope: Any) -> dict[str, str]:
    """The request's headers under the WSGI names WhiteNoise reads (HTTP_IF_NONE_MATCH, …)."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def check_static_collected() -> None:
    """Pages name the web client's files by their hashed names, read from `collectstatic`'s
    manifest: without it every page would fail. Say so at start instead (`serve` and `demo`
    collect first; behind a web server, LINKUP_SERVE_STATIC=0, the deployment does)."""
    if settings.DEBUG or not isinstance(staticfiles_storage, ManifestFilesMixin):
        return
    if staticfiles_storage.read_manifest() is None:
        raise ImproperlyConfigured(
            f"No static files manifest in {settings.STATIC_ROOT}: run "
            "`python -m linkup_server manage collectstatic --no-input` first."
        )


if settings.SERVE_STATIC:
    # Not while another process starting on this LINKUP_VAR_DIR collects (linkup_server/cli.py).
    with static_lock(exclusive=False):
        check_static_collected()
        http_application = StaticFiles(http_application)
else:
    # Behind nginx, which serves STATIC_ROOT under /static/ (docs/deployment.md).
    check_static_collected()

application = ProtocolTypeRouter(
    {"http": RequestThreads(http_application), "websocket": websocket_application()}
)

# What start-up built (Django, the apps, URL patterns, API schemas: some 87,000 objects) lives
# as long as the process. Frozen, it is left out of every full collection, which then scans
# only what serving made: during tests/test_budgets.py's floods a full collection held the
# process 78-88 ms, every socket's frames waiting; frozen, 15-30 ms.
gc.collect()
gc.freeze()
