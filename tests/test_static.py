"""The standalone server's static files: WhiteNoise in front of Django (linkup_server/asgi.py),
collected at start by `python -m linkup_server serve`. A real server process: traversals and
missing files answer 404 (no 500, nothing in the log), every file carries nosniff, the names
pages use are hashed and cached for good, and the hashed chat module loads all it imports."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from tests.live import ROOT, free_port, live_server, new_user, refused_start

pytestmark = [pytest.mark.live, pytest.mark.embedded_only]

SOURCE = ROOT / "linkup" / "static"
FOREVER = "max-age=315360000, public, immutable"
HASHED = re.compile(r"^/static/(?P<name>.+)\.[0-9a-f]{12}(?P<ext>\.\w+)$")

TRAVERSALS = [
    "/static/../settings.py",
    "/static/../linkup_server/settings.py",
    "/static/../../../../../../etc/passwd",
    "/static/linkup/../../../pyproject.toml",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e/linkup_server/settings.py",
    "/static/%2E%2E/%2E%2E/manage.py",
    "/static/..%2f..%2fmanage.py",
    "/static/linkup/..%2f..%2f..%2fmanage.py",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static/%252e%252e/%252e%252e/manage.py",
    "/static/linkup/..%5c..%5c..%5cmanage.py",
    "/static//etc/passwd",
    "/static/linkup/%00chat.js",
    "/static/linkup/./chat.js/..",
]
MISSING = [
    "/static/linkup/nothere.js",
    "/static/linkup/chat.0123456789ab.js",
    "/static/linkup/",
    "/static/linkup",
    "/static/",
]


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    with live_server() as running:
        yield running


def fetch(
    server: dict[str, Any], path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as written (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def signed_in_chat_page(server: dict[str, Any]) -> str:
    """The chat page's HTML, through the sign-in form as a browser would get it."""
    user = new_user(server["base"], "static")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = opener.open(server["base"] + "/sign-in/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, form
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token[1], "username": user["name"], "password": user["password"]}
    ).encode()
    with opener.open(server["base"] + "/sign-in/", data=body, timeout=30) as response:
        assert response.status == 200 and response.url == server["base"] + "/"
        return response.read().decode()


def static_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def source_of(url: str) -> bytes:
    """The file in linkup/static that a URL names (hashed or not)."""
    path = urllib.parse.urlsplit(url).path
    match = HASHED.match(path)
    name = match["name"] + match["ext"] if match else path.removeprefix("/static/")
    return (SOURCE / name).read_bytes()


def log_size(server: dict[str, Any]) -> int:
    return Path(server["log"]).stat().st_size


def assert_no_error_logged(server: dict[str, Any], since: int = 0) -> None:
    with open(server["log"], "rb") as log:
        log.seek(since)
        written = log.read().decode(errors="replace")
    assert "Traceback" not in written and "Internal Server Error" not in written, written[-3000:]


@pytest.mark.parametrize("path", TRAVERSALS + MISSING)
def test_traversals_and_missing_files_are_not_found(server: dict[str, Any], path: str) -> None:
    logged = log_size(server)
    status, _headers, body = fetch(server, path)
    assert status == 404, (path, status, body[:500])
    for secret in (b"SECRET_KEY", b"root:", b"DJANGO_SETTINGS_MODULE", b"[project]"):
        assert secret not in body
    assert b"Traceback" not in body
    assert_no_error_logged(server, since=logged)


def test_pages_name_hashed_files_cached_for_good_and_nosniff(server: dict[str, Any]) -> None:
    html = signed_in_chat_page(server)
    urls = static_urls(html)
    # The stylesheet, the icon and the chat module, by hashed names only.
    named = set()
    for url in urls:
        match = HASHED.match(url)
        assert match, url
        named.add(match["name"] + match["ext"])
    assert named == {"linkup/chat.css", "linkup/icon.svg", "linkup/chat.js"}, urls
    for url in urls:
        status, headers, body = fetch(server, url)
        assert status == 200, url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == FOREVER
        assert "access-control-allow-origin" not in headers
        assert body == source_of(url)
        if url.endswith(".js"):
            assert headers["content-type"].startswith("text/javascript")
    # The service worker the page registers is served too.
    found = re.search(r'id="linkup-config" type="application/json">(.*?)<', html)
    assert found, html
    config = json.loads(found[1])
    # The service worker the page registers: its setup, then its source; every file it
    # keeps is one the server serves.
    status, headers, body = fetch(server, config["service_worker"])
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    setup_line, _, source = body.partition(b"\n")
    assert source == (SOURCE / "linkup" / "sw.js").read_bytes()
    setup = json.loads(setup_line.removeprefix(b"self.LINKUP = ").removesuffix(b";"))
    assert setup["home"] == "/" and setup["static"] == "/static/linkup/"
    assert set(setup["shell"]) >= set(urls) | {"/", "/static/linkup/api.js"}
    for url in setup["shell"]:
        if url != "/":  # the chat page itself is a signed-in person's
            assert fetch(server, url)[0] == 200, url
    # The manifest: installable (a name, the chat as start and scope, icons that are served).
    status, headers, body = fetch(server, "/manifest.webmanifest")
    assert status == 200 and headers["content-type"] == "application/manifest+json"
    manifest = json.loads(body)
    assert manifest["start_url"] == manifest["scope"] == "/"
    assert manifest["display"] == "standalone" and manifest["name"] == "Linkup"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert fetch(server, icon["src"])[0] == 200, icon


def test_the_hashed_chat_module_loads_every_module_it_imports(server: dict[str, Any]) -> None:
    """The storage hashes file names but leaves JS imports (`from "./api.js"`) as written:
    from the hashed module they resolve to the plain names, which must be served (briefly
    cached: they change with a deploy under the same name)."""
    (entry,) = [u for u in static_urls(signed_in_chat_page(server)) if u.endswith(".js")]
    assert HASHED.match(entry)
    pending, seen = [entry], {entry}
    while pending:
        url = pending.pop()
        status, headers, body = fetch(server, url)
        assert status == 200, url
        assert headers["content-type"].startswith("text/javascript"), url
        assert headers["x-content-type-options"] == "nosniff", url
        assert body == source_of(url), url
        if url != entry:
            assert headers["cache-control"] == "max-age=60, public", url
        for spec in re.findall(
            r"""\b(?:from|import)\s*\(?\s*["'](\.\.?/[^"']+)["']""", body.decode()
        ):
            target = urllib.parse.urljoin(url, spec)
            if target not in seen:
                seen.add(target)
                pending.append(target)
    modules = {u.rsplit("/", 1)[1] for u in seen - {entry}}
    assert {"api.js", "bell.js", "connection.js", "model.js", "outbox.js"} <= modules, modules


def test_conditional_compressed_head_and_other_methods(server: dict[str, Any]) -> None:
    logged = log_size(server)
    status, headers, body = fetch(server, "/static/linkup/chat.css")
    assert status == 200 and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "max-age=60, public"
    assert headers["content-type"].startswith("text/css")
    etag = headers["etag"]

    status, headers, _ = fetch(server, "/static/linkup/chat.css", headers={"If-None-Match": etag})
    assert status == 304

    status, headers, zipped = fetch(
        server, "/static/linkup/chat.css", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(zipped) == body

    status, headers, empty = fetch(server, "/static/linkup/chat.css", "HEAD")
    assert status == 200 and empty == b"" and int(headers["content-length"]) == len(body)

    status, headers, part = fetch(server, "/static/linkup/chat.css", headers={"Range": "bytes=0-9"})
    assert status == 206 and part == body[:10]

    status, headers, _ = fetch(server, "/static/linkup/chat.css", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert_no_error_logged(server, since=logged)


def test_the_admin_s_files_are_collected_and_served(server: dict[str, Any]) -> None:
    status, _, html = fetch(server, "/admin/login/")
    assert status == 200
    (css, *_) = [u for u in static_urls(html.decode()) if u.endswith(".css")]
    assert HASHED.match(css), css
    status, headers, _ = fetch(server, css)
    assert status == 200 and headers["cache-control"] == FOREVER


def _server_env(var_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["LINKUP_VAR_DIR"] = var_dir
    return env


def test_behind_a_web_server_the_process_serves_no_static_file() -> None:
    """LINKUP_SERVE_STATIC=0: the deployment collects (for nginx); pages still name the hashed
    files, and the process answers none of them."""
    var_dir = tempfile.mkdtemp(prefix="linkup-static-")
    subprocess.run(
        [sys.executable, "-m", "linkup_server", "manage", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=_server_env(var_dir),
        check=True,
    )
    with live_server({"LINKUP_VAR_DIR": var_dir, "LINKUP_SERVE_STATIC": "0"}) as running:
        status, _, html = fetch(running, "/sign-in/")
        assert status == 200
        urls = static_urls(html.decode())
        assert urls and all(HASHED.match(u) for u in urls), urls
        for path in [*urls, "/static/linkup/chat.js", "/static/../settings.py"]:
            status, _, _ = fetch(running, path)
            assert status == 404, path
        assert_no_error_logged(running)


def test_without_collected_files_behind_a_web_server_the_server_refuses_to_start() -> None:
    env = {
        **_server_env(tempfile.mkdtemp(prefix="linkup-static-")),
        "LINKUP_SERVE_STATIC": "0",
        "PORT": str(free_port()),
    }
    stderr = refused_start(env)
    assert "No static files manifest" in stderr and "collectstatic" in stderr


def test_a_collection_never_keeps_a_copy_newer_than_its_source(tmp_path: Path) -> None:
    """collectstatic skips a file whose copy is newer than its source; when the sources
    changed (another checkout's copies, a restored file), the server collects afresh, so
    what it serves is always what the sources say."""
    root = tmp_path / "static"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({"LINKUP_VAR_DIR": str(tmp_path), "LINKUP_STATIC_ROOT": str(root)})
    collect = [
        sys.executable,
        "-c",
        "from linkup_server import cli; cli._setup(); cli.collect_static()",
    ]
    subprocess.run(collect, cwd=ROOT, env=env, check=True)
    copy = root / "linkup" / "model.js"
    source = (ROOT / "linkup" / "static" / "linkup" / "model.js").read_bytes()
    assert copy.read_bytes() == source
    copy.write_bytes(b"// stale")
    future = time.time() + 3600
    os.utime(copy, (future, future))
    (tmp_path / ".static.sources").unlink()  # as if a source had changed
    subprocess.run(collect, cwd=ROOT, env=env, check=True)
    assert copy.read_bytes() == source
