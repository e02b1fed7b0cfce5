"""The Origin check of cookie sockets, in a real Chromium (Debian's, through Playwright).

The attack: a user signed in to Linkup (a session cookie for its host) opens a page served
from another origin of the same host, another port. Cookies are not isolated by port and the
site is the same, so the browser sends the SameSite=Lax session cookie on that page's
WebSocket handshake to Linkup: only the Origin check stands between the page and the user's
rooms. Each case proves three things with the same script and the same browser context:

- what the browser sends: the page's handshake to a recorder on a third port of the host
  carries the session cookie and the page's Origin (so a refusal below is the Origin check,
  not a missing cookie);
- the attack fails: from the page, `/ws/chat/` and `/ws/notifications/` of Linkup never
  open (or close with 4403) and deliver no frame at all, not even `hello`;
- the positive control: from a page Linkup served, the same script opens both sockets, gets
  `hello` for the signed-in user first, then the room data the attacker was after.

With CI=true a missing Chromium fails these tests; elsewhere they are skipped with a reason
(the `browser` fixture of tests/test_browser.py)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.live import send_over_rest
from tests.test_browser import (  # noqa: F401  (`browser` and `watch` are fixtures)
    Watch,
    browser,
    pair,
    sign_in,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.embedded_only]

# Each socket, and the frame that brings it a message sent to the user (docs/protocol.md).
SOCKETS = {"/ws/chat/": "message.new", "/ws/notifications/": "notification"}

# One socket, and what became of it, in `window.result`. The attacker's page runs it as it
# loads; the positive control runs the very same function in a page Linkup served.
PROBE_JS = """url => {
    const result = {url, opened: false, closed: false, closeCode: null, frames: []};
    window.result = result;
    const socket = new WebSocket(url);
    socket.onopen = () => { result.opened = true; };
    socket.onmessage = event => { result.frames.push(String(event.data)); };
    socket.onclose = event => { result.closed = true; result.closeCode = event.code; };
}"""

EVIL_HTML = (
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">'
    "<title>not Linkup</title><p>A page of another origin on the same host."
    f"<script>({PROBE_JS})(new URLSearchParams(location.search).get('ws'));</script>"
).encode()


class Attacker(http.server.ThreadingHTTPServer):
    """A tiny server on 127.0.0.1 and a port of its own: `/evil.html` is the attacker's page;
    a WebSocket handshake is recorded (its headers, names in lower case) and refused."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), AttackerHandler)
        self.port = int(self.server_address[1])
        self.handshakes: list[dict[str, str]] = []


class AttackerHandler(http.server.BaseHTTPRequestHandler):
    server: Attacker

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.server.handshakes.append({k.lower(): v for k, v in self.headers.items()})
            self._answer(403, b"")
        elif urlsplit(self.path).path == "/evil.html":
            self._answer(200, EVIL_HTML)
        else:
            self._answer(404, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def attacker() -> Iterator[tuple[Attacker, Attacker]]:
    """The attacker's page server and the handshake recorder, on two more ports."""
    servers = (Attacker(), Attacker())
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield servers
    for server_, thread in zip(servers, threads, strict=True):
        server_.shutdown()
        server_.server_close()
        thread.join(timeout=10)


def settle(page: Any) -> dict[str, Any]:
    """`window.result` once its socket has closed or delivered a frame."""
    try:
        page.wait_for_function(
            "() => window.result && (window.result.closed || window.result.frames.length > 0)"
        )
    except Exception:
        raise AssertionError(f"the socket neither closed nor answered: {result(page)}") from None
    return result(page)


def result(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("() => window.result || {}"))


def attack(page: Any, evil_origin: str, target: str) -> dict[str, Any]:
    """Load the attacker's page, which opens a socket to `target`; what became of it."""
    page.goto(f"{evil_origin}/evil.html?" + urlencode({"ws": target}))
    assert page.evaluate("location.origin") == evil_origin
    return settle(page)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_page_of_another_origin_cannot_open_a_signed_in_user_s_sockets(
    host: str,
    browser: Any,  # noqa: F811  (first: without Chromium, no server is started)
    server: dict[str, Any],
    attacker: tuple[Attacker, Attacker],
    watch: Watch,  # noqa: F811
):
    evil_server, recorder = attacker
    linkup = f"http://{host}:{server['port']}"
    evil_origin = f"http://{host}:{evil_server.port}"
    alice, bob, room = pair(server["base"])
    context = browser.new_context()
    # Alice signs in through the sign-in page: the browser holds her session for `host`.
    sign_in(watch, context, linkup, alice).close()
    session = {c["name"]: c for c in context.cookies(linkup)}["sessionid"]
    assert session["domain"] == host and session["sameSite"] == "Lax"
    page = watch.page(context)

    # What the browser sends from the attacker's page on a handshake to another port of the
    # host: Alice's session cookie, and the page's Origin.
    recorded = attack(page, evil_origin, f"ws://{host}:{recorder.port}/ws/chat/")
    assert not recorded["opened"] and recorded["frames"] == [], f"recorder: {recorded}"
    sent = recorder.handshakes.pop()
    assert sent["origin"] == evil_origin, f"handshake sent: {sent}"
    assert f"sessionid={session['value']}" in sent.get("cookie", ""), f"handshake sent: {sent}"

    # The attack: each socket is refused before it delivers anything.
    for path in SOCKETS:
        res = attack(page, evil_origin, f"ws://{host}:{server['port']}{path}")
        assert res["closed"] and res["frames"] == [], f"from {evil_origin}: {res}"
        assert not res["opened"] or res["closeCode"] == 4403, f"from {evil_origin}: {res}"

    # The positive control: the same script, from a page Linkup served, opens both sockets,
    # gets `hello` for Alice, then what Bob sends her (the message, and its notification).
    own = watch.page(context)
    own.goto(linkup + "/")
    own.wait_for_selector("#conn[data-state=online]")
    assert own.evaluate("location.origin") == linkup
    for path in SOCKETS:
        own.evaluate(PROBE_JS, f"ws://{host}:{server['port']}{path}")
        res = settle(own)
        assert res["opened"] and not res["closed"], f"from {linkup}: {res}"
        hello = json.loads(res["frames"][0])
        assert hello["type"] == "hello" and hello["user"] == alice["id"], f"from {linkup}: {res}"
        body = f"for alice only {path} {host}"
        status, message = send_over_rest(server["base"], room, body, bob["token"])
        assert status == 201, message
        own.wait_for_function("body => window.result.frames.some(f => f.includes(body))", arg=body)
        res = result(own)
        carrying = [json.loads(frame)["type"] for frame in res["frames"] if body in frame]
        assert carrying == [SOCKETS[path]], f"from {linkup}: {res}"
    context.close()
    assert evil_server.handshakes == [] and recorder.handshakes == []
