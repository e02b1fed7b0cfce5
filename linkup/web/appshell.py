"""The installable app: its web app manifest, and the service worker that keeps the app
shell (the chat page and the client's static files) for opening offline.

Both are served under the pages' own prefix (`<prefix>manifest.webmanifest`,
`<prefix>sw.js`), so the worker's scope is the chat itself. The worker's source is the
static file `linkup/sw.js`; this module puts in front of it what only the server knows:
the version (a hash of the client's files, so a deploy that changes any of them changes the
worker, which the browser then installs, dropping the old cache), the files to keep, and
where the chat lives.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.urls import reverse

CLIENT = Path(__file__).resolve().parent.parent / "static" / "linkup"
WORKER = "sw.js"
NOT_KEPT = {WORKER}  # the worker itself is the browser's to fetch


@lru_cache(maxsize=1)
def worker_source() -> str:
    """The worker's source, read once per process (it changes only with a deploy)."""
    return (CLIENT / WORKER).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def client_files() -> tuple[tuple[str, ...], str]:
    """The client's file names and a version: a hash of every one of them."""
    digest = hashlib.sha256()
    names = []
    for path in sorted(CLIENT.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
            names.append(path.name)
    return tuple(names), digest.hexdigest()[:16]


def static_prefix() -> str:
    """Where the client's files are served from (a path, or another origin's URL)."""
    url = str(settings.STATIC_URL or "/static/")
    url = url if url.startswith(("http://", "https://", "/")) else "/" + url
    return url.rstrip("/") + "/linkup/"


def _static_urls(name: str) -> set[str]:
    """Where a page or a module asks for a file: its plain name (modules import each other
    by it) and, with a hashing storage, the hashed one the templates write."""
    urls = {static_prefix() + name}
    try:
        urls.add(static(f"linkup/{name}"))
    except ValueError:  # not collected (a hashing storage's manifest lacks it): plain only
        pass
    return urls


def worker_setup() -> dict[str, Any]:
    names, version = client_files()
    home = reverse("linkup-chat")
    shell = sorted({url for name in names if name not in NOT_KEPT for url in _static_urls(name)})
    return {
        "version": version,
        "home": home,
        "static": static_prefix(),
        "shell": [home, *shell],
    }


async def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker, its setup in front of its source; never cached by HTTP (the
    browser compares it byte for byte to decide on an update)."""
    setup = json.dumps(worker_setup(), separators=(",", ":"))
    response = HttpResponse(
        f"self.LINKUP = {setup};\n{worker_source()}",
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


async def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest: a name, the chat as the start page and the scope, icons."""
    home = reverse("linkup-chat")
    icons = [
        {"src": static("linkup/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
        {"src": static("linkup/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        {"src": static("linkup/icon-512.png"), "sizes": "512x512", "type": "image/png"},
    ]
    answer = JsonResponse(
        {
            "name": "Linkup",
            "short_name": "Linkup",
            "description": "Chat",
            "start_url": home,
            "scope": home,
            "display": "standalone",
            "background_color": "#efeae2",
            "theme_color": "#075e54",
            "icons": icons,
        },
        content_type="application/manifest+json",
    )
    answer["X-Content-Type-Options"] = "nosniff"
    return answer
