"""The web client in a real Chromium (Debian's, through Playwright), against a started server.

Two users in two browser contexts: send and receive with ticks moving to read, typing shown
and cleared, presence and last seen, two tabs of one user, the offline outbox surviving a
reload, a server restarted mid-conversation, infinite scroll over 200 messages, and a list
of XSS payloads rendered inert. Screenshots of the main states go to test-artifacts/.

With CI=true a missing Chromium fails these tests; elsewhere they are skipped with a reason.
They run in both passes of `make test`: on the embedded default and on PostgreSQL + Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import ROOT, api, live_server, new_user, send_over_rest

pytestmark = [pytest.mark.browser, pytest.mark.live]
# The web client is the same on both passes: the scale-out pass runs the tests whose server
# side its configuration changes (a conversation across PostgreSQL + Redis, a restart).
client_only = pytest.mark.embedded_only

CHROMIUM = "/usr/bin/chromium"
CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = ROOT / "test-artifacts"
# Short presence timings, so "last seen" shows within seconds of a tab closing.
FAST_PRESENCE = {
    "LINKUP_PRESENCE_TTL_S": "3",
    "LINKUP_PRESENCE_REFRESH_S": "0.5",
    "LINKUP_PRESENCE_GRACE_S": "1",
}
TIMEOUT_MS = 20_000

XSS_PAYLOADS = [
    "<script>window.__xss = 1</script>",
    '<img src="x" onerror="window.__xss = 2">',
    '"><svg onload="window.__xss = 3">',
    '<iframe src="javascript:window.parent.__xss = 4"></iframe>',
    "javascript:window.__xss = 5",
    '<a href="javascript:window.__xss = 6">click</a>',
    "{{constructor.constructor('window.__xss = 7')()}}",
    "<style>body { display: none }</style>",
    "&lt;b&gt;entities stay text&lt;/b&gt; <b>bold?</b>",
    "\u202egnp.exe  (right-to-left override)",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if CI:
            pytest.fail(message + "; with CI=true the browser tests never skip")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                # Voice notes: a fake microphone (a tone), never a real device or a prompt.
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def web() -> Iterator[dict[str, Any]]:
    with live_server(FAST_PRESENCE) as srv:
        yield srv


@pytest.fixture(scope="module")
def fast_reconnect_web() -> Iterator[dict[str, Any]]:
    """A server whose pages tell the client to retry every 0.1 s (doubling) and poll every
    0.5 s, so the fallback to HTTP and the way back take seconds, not minutes."""
    env = {**FAST_PRESENCE, "LINKUP_CLIENT_RECONNECT_FIRST_S": "0.1", "LINKUP_CLIENT_POLL_S": "0.5"}
    with live_server(env) as srv:
        yield srv


class Watch:
    """JavaScript errors and CSP violations of every page: a test fails if any occurs."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def page(self, context: Any) -> Any:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"console: {m.text}")
                if m.type == "error" and "net::ERR" not in m.text and "WebSocket" not in m.text
                else None
            ),
        )
        return page


@pytest.fixture
def watch() -> Iterator[Watch]:
    w = Watch()
    yield w
    assert w.errors == []


def sign_in(watch: Watch, context: Any, base: str, user: dict[str, Any]) -> Any:
    page = watch.page(context)
    page.goto(base + "/")
    if "/sign-in/" in page.url:  # a second tab of a signed-in context goes straight in
        page.fill("#username", user["name"])
        page.fill("#password", user["password"])
        page.click("form button[type=submit]")
    page.wait_for_selector("#conn[data-state=online]")
    # Flag any CSP violation (a policy that had to refuse something means unsafe markup).
    page.evaluate(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective))"
    )
    return page


def open_room(page: Any, name: str) -> None:
    page.click(f"#rooms button:has(.room-name:text-is('{name}'))")
    page.wait_for_function(
        "name => document.getElementById('room-title').textContent === name", arg=name
    )


def direct_room(base: str, a: dict[str, Any], b: dict[str, Any]) -> int:
    status, room = api(base, "POST", "/rooms", {"kind": "direct", "members": [b["id"]]}, a["token"])
    assert status in (200, 201), room
    return int(room["id"])


def pair(base: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Alice and Bob, new, and the direct room between them."""
    alice, bob = new_user(base, "alice"), new_user(base, "bob")
    return alice, bob, direct_room(base, alice, bob)


def in_room(
    watch: Watch, browser: Any, base: str, user: dict[str, Any], other: dict[str, Any]
) -> tuple[Any, Any]:
    """A new browser context where `user` has signed in and opened the chat with `other`."""
    context = browser.new_context()
    page = sign_in(watch, context, base, user)
    open_room(page, other["name"])
    return context, page


def bubbles(page: Any) -> list[dict[str, Any]]:
    return list(
        page.eval_on_selector_all(
            "#messages .msg",
            """els => els.map(e => ({
                body: e.querySelector('.body').textContent,
                seq: e.dataset.seq ? Number(e.dataset.seq) : null,
                status: e.dataset.status || null,
                own: e.classList.contains('own'),
            }))""",
        )
    )


def send(page: Any, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def wait_bubble(page: Any, text: str, status: str | None = None) -> None:
    try:
        _wait_bubble(page, text, status)
    except Exception:
        state = page.evaluate(
            """() => ({conn: document.getElementById('conn').dataset.state,
                       outbox: Object.entries(localStorage),
                       rooms: [...window.linkup.rooms.values()].map(r => ({id: r.id,
                           lo: r.seg.lo, hi: r.seg.hi, last_seq: r.last_seq}))})"""
        )
        raise AssertionError(f"no bubble {text!r} ({status}): {bubbles(page)} {state}") from None


def _wait_bubble(page: Any, text: str, status: str | None = None) -> None:
    page.wait_for_function(
        """([text, status]) => [...document.querySelectorAll('#messages .msg')].some(e =>
            e.querySelector('.body').textContent === text &&
            (status === null || e.dataset.status === status))""",
        arg=[text, status],
    )


def history(base: str, room: int, token: str) -> list[dict[str, Any]]:
    status, page = api(base, "GET", f"/rooms/{room}/messages?limit=100", token=token)
    assert status == 200, page
    return list(page["messages"])


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_conversation_ticks_typing_and_presence(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob = new_user(base, "alice"), new_user(base, "bob")
    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    a = sign_in(watch, a_ctx, base, alice)
    b = sign_in(watch, b_ctx, base, bob)

    # Alice finds Bob and starts a direct chat from the search box.
    a.fill("#search", bob["name"][:8])
    a.click(f"#search-results button:has-text('{bob['name']}')")
    a.wait_for_function(
        "n => document.getElementById('room-title').textContent === n", arg=bob["name"]
    )
    a.wait_for_function("() => document.getElementById('room-status').textContent === 'online'")

    # The bubble is drawn before the server has answered: its first status is "pending".
    a.evaluate(
        """() => {
            window.__t = {};
            document.addEventListener('keydown', e => {
                if (e.key === 'Enter') window.__t.enter = performance.now(); }, true);
            new MutationObserver(() => {
                const el = [...document.querySelectorAll('#messages .msg')]
                    .find(e => e.querySelector('.body').textContent === 'hello bob');
                if (el && !window.__t.bubble) {
                    window.__t.bubble = performance.now();
                    window.__t.first_status = el.dataset.status;
                }
            }).observe(document.getElementById('messages'), {childList: true, subtree: true});
        }"""
    )
    send(a, "hello bob")
    wait_bubble(a, "hello bob")
    timing = a.evaluate("window.__t")
    assert timing["first_status"] == "pending", timing
    print(f"\nEnter to bubble: {timing['bubble'] - timing['enter']:.1f} ms")

    # Bob's client receives it and sends "delivered" by itself: Alice sees ✓✓ (grey).
    b.wait_for_selector("#rooms .badge:text-is('1')")
    wait_bubble(a, "hello bob", "delivered")
    shot(a, "delivered")
    # Bob opens the room: it is read, Alice's ticks turn blue, Bob's badge goes.
    open_room(b, alice["name"])
    wait_bubble(b, "hello bob")
    wait_bubble(a, "hello bob", "read")
    # Blue (#027eb5: the lighter #34b7f1 reached only 2:1 on the bubble; see the contrast audit).
    assert a.eval_on_selector(".msg.own .tick", "e => getComputedStyle(e).color") == (
        "rgb(2, 126, 181)"
    )
    b.wait_for_selector("#rooms .badge", state="hidden")

    # Bob answers; typing shows on Alice's side while he writes and clears when he stops.
    b.fill("#composer-input", "typing a rep")
    b.type("#composer-input", "l")
    a.wait_for_function("() => document.getElementById('room-status').textContent === 'typing…'")
    shot(a, "typing")
    a.wait_for_function(
        "() => document.getElementById('room-status').textContent === 'online'", timeout=8000
    )
    send(b, "hi alice")
    wait_bubble(a, "hi alice")
    wait_bubble(b, "hi alice", "read")  # Alice has the room open and in view
    shot(b, "conversation")

    # Bob leaves: Alice sees him offline, with a last seen time, and his dot goes.
    b_ctx.close()
    a.wait_for_function(
        "() => document.getElementById('room-status').textContent.startsWith('last seen today')"
    )
    assert a.is_hidden("#rooms button.room-name ~ .dot, #rooms .dot")
    assert a.evaluate("window.__csp") == []
    shot(a, "last-seen")
    a_ctx.close()
    room = direct_room(base, alice, bob)
    assert [m["body"] for m in history(base, room, alice["token"])] == ["hello bob", "hi alice"]


@client_only
def test_two_tabs_of_one_user_stay_consistent(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    tab1 = sign_in(watch, a_ctx, base, alice)
    tab2 = sign_in(watch, a_ctx, base, alice)
    b = sign_in(watch, b_ctx, base, bob)
    open_room(b, alice["name"])

    # A message from tab 1 shows once in both tabs, and is stored once.
    open_room(tab1, bob["name"])
    send(tab1, "from tab one")
    wait_bubble(tab1, "from tab one", "read")
    open_room(tab2, bob["name"])
    wait_bubble(tab2, "from tab one")
    for tab in (tab1, tab2):
        assert [m["body"] for m in bubbles(tab)].count("from tab one") == 1
    assert [m["body"] for m in history(base, room, alice["token"])] == ["from tab one"]

    # Read state follows: with no room shown in either tab, Bob's answer is unread in both;
    # tab 1 opens the room and reads it, and tab 2's badge goes too.
    for tab in (tab1, tab2):
        tab.evaluate("document.getElementById('back').click()")  # hidden on a desktop
    send(b, "for both tabs")
    tab1.wait_for_selector("#rooms .badge:text-is('1')")
    tab2.wait_for_selector("#rooms .badge:text-is('1')")
    open_room(tab1, bob["name"])
    wait_bubble(tab1, "for both tabs")
    tab2.wait_for_selector("#rooms .badge", state="hidden")  # read in tab 1: gone in tab 2
    wait_bubble(b, "for both tabs", "read")
    a_ctx.close()
    b_ctx.close()


@client_only
def test_offline_outbox_survives_a_reload_and_delivers_once(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)

    a_ctx.set_offline(True)
    a.wait_for_selector("#conn[data-state=offline]")
    texts = ["written offline 1", "written offline 2", "written offline 3"]
    for text in texts:
        send(a, text)
    for text in texts:
        wait_bubble(a, text, "pending")
    shot(a, "offline-outbox")
    queued = a.evaluate("window.linkup.outbox.all()")
    # Kept in localStorage, one key per message.
    keys = a.evaluate("Object.keys(localStorage)")
    assert sorted(keys) == sorted(f"linkup:outbox:{alice['id']}:{q['client_id']}" for q in queued)
    assert [item["body"] for item in queued] == texts
    assert history(base, room, alice["token"]) == []

    # The tab goes away while offline; a new one, once online, sends the outbox in order.
    a.close()
    a_ctx.set_offline(False)
    a2 = watch.page(a_ctx)
    a2.goto(base + "/")
    a2.wait_for_selector("#conn[data-state=online]")
    open_room(a2, bob["name"])
    for text in texts:
        wait_bubble(a2, text)
    a2.wait_for_function(
        "() => [...document.querySelectorAll('#messages .msg')].every(e => e.dataset.seq)"
    )
    # Stored once each, in the order written, under the client_ids chosen while offline.
    stored = history(base, room, alice["token"])
    assert [m["body"] for m in stored] == texts
    assert [m["client_id"] for m in stored] == [item["client_id"] for item in queued]
    assert a2.evaluate("window.linkup.outbox.all()") == []
    assert [m["body"] for m in bubbles(a2)] == texts
    a_ctx.close()


def test_server_restart_mid_conversation_loses_and_doubles_nothing(browser: Any, watch: Watch):
    with live_server(FAST_PRESENCE) as first:
        base = first["base"]
        alice, bob, room = pair(base)
        a_ctx, b_ctx = browser.new_context(), browser.new_context()
        a = sign_in(watch, a_ctx, base, alice)
        b = sign_in(watch, b_ctx, base, bob)
        open_room(a, bob["name"])
        open_room(b, alice["name"])
        send(a, "before the restart")
        wait_bubble(b, "before the restart")

        os.killpg(first["proc"].pid, signal.SIGTERM)
        first["proc"].wait(timeout=30)
        a.wait_for_selector("#conn:not([data-state=online])")
        b.wait_for_selector("#conn:not([data-state=online])")
        send(a, "alice while it is down")
        send(b, "bob while it is down")
        wait_bubble(a, "alice while it is down", "pending")

        with live_server(share=first, port=first["port"]):
            for page in (a, b):
                page.wait_for_selector("#conn[data-state=online]", timeout=60_000)
            for page in (a, b):
                for text in ("alice while it is down", "bob while it is down"):
                    wait_bubble(page, text)
                page.wait_for_function(
                    "() => [...document.querySelectorAll('#messages .msg')]"
                    ".every(e => e.dataset.seq)"
                )
            send(a, "after the restart")
            wait_bubble(b, "after the restart")
            stored = history(base, room, alice["token"])
            assert sorted(m["body"] for m in stored) == sorted(
                [
                    "before the restart",
                    "alice while it is down",
                    "bob while it is down",
                    "after the restart",
                ]
            )
            assert [m["seq"] for m in stored] == [1, 2, 3, 4]
            for page in (a, b):
                shown = bubbles(page)
                assert [m["seq"] for m in shown] == [1, 2, 3, 4]
                assert [m["body"] for m in shown] == [m["body"] for m in stored]
            a_ctx.close()
            b_ctx.close()


def seed_messages(web: dict[str, Any], room: int, sender: int, count: int) -> None:
    """Write `count` messages through the write path itself (the rate limit is a client's)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'linkup_server.settings';"
        "django.setup();"
        "from django.contrib.auth import get_user_model;"
        "from linkup.actions.messages import Send, do_send_batch;"
        f"u = get_user_model().objects.get(pk={sender});"
        f"do_send_batch([Send(u, {room}, f'seed-{{i}}', f'message {{i}}')"
        f" for i in range(1, {count} + 1)])"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=web["env"], check=True)


@client_only
def test_infinite_scroll_over_two_hundred_messages(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob, room = pair(base)
    seed_messages(web, room, bob["id"], 200)
    # Read already (elsewhere): the chat opens at the newest, not at the first unread.
    read = {"kind": "read", "seq": 200}
    assert api(base, "POST", f"/rooms/{room}/receipts", read, alice["token"])[0] == 200
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    a.wait_for_function("() => document.querySelectorAll('#messages .msg').length === 50")
    assert [m["seq"] for m in bubbles(a)] == list(range(151, 201))

    expected = 50
    while expected < 200:
        top_seq = bubbles(a)[0]["seq"]
        # Scroll to the top, and note where the top message is then on screen.
        before = a.evaluate(
            """seq => {
                document.getElementById('scroller').scrollTop = 0;
                return document.querySelector(`#messages .msg[data-seq='${seq}']`)
                    .getBoundingClientRect().top;
            }""",
            top_seq,
        )
        expected = min(200, expected + 20)
        a.wait_for_function(
            f"() => document.querySelectorAll('#messages .msg').length === {expected}"
        )
        after = a.eval_on_selector(
            f"#messages .msg[data-seq='{top_seq}']", "e => e.getBoundingClientRect().top"
        )
        # The message that was at the top stays where it was on screen (scroll position kept).
        assert abs(after - before) < 40, (top_seq, before, after)
    shown = bubbles(a)
    assert [m["seq"] for m in shown] == list(range(1, 201))
    assert [m["body"] for m in shown] == [f"message {i}" for i in range(1, 201)]
    a_ctx.close()


@client_only
def test_xss_payloads_render_as_text(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob, room = pair(base)
    for i, payload in enumerate(XSS_PAYLOADS):
        status, body = api(
            base,
            "POST",
            f"/rooms/{room}/messages",
            {"client_id": f"xss-{i}", "body": payload},
            bob["token"],
        )
        assert status == 201, body
    a_ctx = browser.new_context()
    a = sign_in(watch, a_ctx, base, alice)
    open_room(a, bob["name"])
    a.wait_for_function(
        f"() => document.querySelectorAll('#messages .msg').length === {len(XSS_PAYLOADS)}"
    )
    a.wait_for_timeout(300)  # let any onerror/onload that could fire, fire
    assert [m["body"] for m in bubbles(a)] == [p.strip() for p in XSS_PAYLOADS]
    assert a.evaluate("window.__xss") is None
    assert (
        a.evaluate(
            "document.querySelectorAll('#messages script, #messages img, #messages svg,"
            " #messages iframe, #messages a, #messages style, #rooms img, #rooms script').length"
        )
        == 0
    )
    assert a.evaluate("window.__csp") == []
    assert a.is_visible("#messages")
    shot(a, "xss-inert")
    a_ctx.close()


@client_only
def test_sign_up_sign_out_and_phone_layout(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    bob = new_user(base, "bob")
    phone = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True)
    page = watch.page(phone)
    page.goto(base + "/sign-up/")
    name = "dora" + bob["name"][-6:]
    page.fill("#username", name)
    page.fill("#password", "a long enough password")
    page.fill("#password2", "a long enough password")
    page.click("form button[type=submit]")
    page.wait_for_selector("#conn[data-state=online]")
    assert page.inner_text("#me") == name

    # On a phone one pane shows at a time: the list, then the conversation, then back.
    page.fill("#search", bob["name"])
    page.click(f"#search-results button:has-text('{bob['name']}')")
    page.wait_for_selector("#composer-input", state="visible")
    assert page.is_hidden("#rooms")
    send(page, "from a phone")
    wait_bubble(page, "from a phone")
    shot(page, "phone-conversation")
    page.click("#back")
    page.wait_for_selector("#rooms", state="visible")
    assert page.is_hidden("#composer-input")

    # A request already in flight when the session ends is answered 401, and the browser
    # logs it: let the page's requests (the room list refreshed for the new room) finish.
    page.wait_for_load_state("networkidle")
    page.click("#sign-out")
    page.wait_for_url(base + "/sign-in/")
    page.goto(base + "/")
    assert page.url.startswith(base + "/sign-in/")
    phone.close()


@client_only
def test_group_typing_names_and_senders(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob, carol = (new_user(base, n) for n in ("alice", "bob", "carol"))
    contexts = [browser.new_context() for _ in range(3)]
    a, b, c = (
        sign_in(watch, ctx, base, u) for ctx, u in zip(contexts, (alice, bob, carol), strict=True)
    )

    # Alice creates the group in the dialog, picking Bob and Carol from a search.
    a.click("#new-group")
    a.fill("#group-name", "Trip")
    for person in (bob, carol):
        a.fill("#people-search", person["name"])
        a.check(f"#people-choices label:has-text('{person['name']}') input")
    a.click("#people-ok")
    a.wait_for_function("() => document.getElementById('room-title').textContent === 'Trip'")
    for page in (b, c):
        open_room(page, "Trip")
    for page in (b, c):
        page.type("#composer-input", "so")
    a.wait_for_function(
        """([x, y]) => [`${x} and ${y} are typing…`, `${y} and ${x} are typing…`]
            .includes(document.getElementById('room-status').textContent)""",
        arg=[bob["name"], carol["name"]],
    )
    shot(a, "group-typing")
    # Shift+Enter is a new line, Enter sends; in a group the sender's name is on the bubble.
    b.fill("#composer-input", "line one")
    b.press("#composer-input", "Shift+Enter")
    b.type("#composer-input", "line two")
    b.press("#composer-input", "Enter")
    wait_bubble(a, "line one\nline two")
    assert a.eval_on_selector("#messages .msg:not(.own) .who", "e => e.textContent") == bob["name"]

    # Alice adds Dora to the group: the room appears in Dora's list, live, with its history.
    dora = new_user(base, "dora")
    contexts.append(browser.new_context())
    d = sign_in(watch, contexts[-1], base, dora)
    a.click("#add-members")
    a.fill("#people-search", dora["name"])
    a.check(f"#people-choices label:has-text('{dora['name']}') input")
    a.click("#people-ok")
    a.wait_for_function(
        "n => document.getElementById('room-status').textContent.includes(n)", arg=dora["name"]
    )
    open_room(d, "Trip")
    wait_bubble(d, "line one\nline two")
    for ctx in contexts:
        ctx.close()


@client_only
def test_failed_send_shows_retry_and_old_outbox_items_expire(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    # A control character is refused by the server (invalid_frame): ✗ and a Retry button.
    send(a, "bell \u0007 here")
    wait_bubble(a, "bell \u0007 here", "failed")
    assert a.is_visible("#messages .msg[data-status=failed] .retry")

    # An item queued 8 days ago (say, in a tab that was closed offline) expires as failed;
    # Retry sends it, under its original client_id, once.
    eight_days_ms = 8 * 24 * 3600 * 1000
    a.evaluate(
        """([prefix, room, age]) => {
            for (const key of Object.keys(localStorage)) {
                if (key.startsWith(prefix)) localStorage.removeItem(key);
            }
            localStorage.setItem(prefix + 'old-one', JSON.stringify({
                client_id: 'old-one', room, body: 'from last week',
                queued_at: Date.now() - age, state: 'pending'}));
        }""",
        [f"linkup:outbox:{alice['id']}:", room, eight_days_ms],
    )
    a.reload()
    a.wait_for_selector("#conn[data-state=online]")
    open_room(a, bob["name"])
    wait_bubble(a, "from last week", "failed")
    assert history(base, room, alice["token"]) == []
    a.click("#messages .msg[data-status=failed] .retry")
    wait_bubble(a, "from last week", "sent")
    stored = history(base, room, alice["token"])
    assert [(m["body"], m["client_id"]) for m in stored] == [("from last week", "old-one")]
    a_ctx.close()


@client_only
def test_http_fallback_when_the_socket_cannot_connect(
    fast_reconnect_web: dict[str, Any], browser: Any, watch: Watch
):
    base = fast_reconnect_web["base"]
    alice, bob, room = pair(base)
    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    b = sign_in(watch, b_ctx, base, bob)
    open_room(b, alice["name"])
    a = sign_in(watch, a_ctx, base, alice)
    open_room(a, bob["name"])

    # From now on every socket Alice's page opens is closed at once (a proxy that blocks
    # WebSockets): after the retries the client falls back to HTTP.
    blocked = {"on": True}

    def gate(ws: Any) -> None:
        if blocked["on"]:
            ws.close()
        else:
            ws.connect_to_server()

    a.route_web_socket("**/ws/chat/", gate)
    a.evaluate("window.linkup.connection.dead()")
    a.wait_for_selector("#conn[data-state=fallback]", timeout=30_000)
    shot(a, "fallback")
    send(a, "sent over http")
    wait_bubble(b, "sent over http")
    wait_bubble(a, "sent over http", "read")  # Bob's read came back by polling
    send(b, "polled by alice")
    wait_bubble(a, "polled by alice")

    # The socket comes back by itself (background retries): live again, nothing doubled.
    blocked["on"] = False
    a.wait_for_selector("#conn[data-state=online]", timeout=30_000)
    send(b, "live again")
    wait_bubble(a, "live again")
    expected = ["sent over http", "polled by alice", "live again"]
    assert [m["body"] for m in bubbles(a)] == expected
    assert [m["body"] for m in history(base, room, alice["token"])] == expected
    a_ctx.close()
    b_ctx.close()


@client_only
def test_focus_frames_and_one_batched_read_receipt(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx = browser.new_context()
    page = watch.page(a_ctx)
    sent: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent", lambda payload: sent.append(json.loads(payload)) if payload else None
        ),
    )
    page.goto(base + "/")
    page.fill("#username", alice["name"])
    page.fill("#password", alice["password"])
    page.click("form button[type=submit]")
    page.wait_for_selector("#conn[data-state=online]")
    for i in range(5):
        status, body = api(
            base,
            "POST",
            f"/rooms/{room}/messages",
            {"client_id": f"batch-{i}", "body": f"unread {i}"},
            bob["token"],
        )
        assert status == 201, body
    page.wait_for_selector("#rooms .badge:text-is('5')")
    open_room(page, bob["name"])
    wait_bubble(page, "unread 4")
    page.wait_for_selector("#rooms .badge", state="hidden")
    page.evaluate("document.getElementById('back').click()")
    page.wait_for_timeout(300)  # anything more the client would send, it sends now

    reads = [f for f in sent if f.get("type") == "receipt" and f["kind"] == "read"]
    assert reads == [{"type": "receipt", "room": room, "kind": "read", "seq": 5}]
    delivered = [f["seq"] for f in sent if f.get("type") == "receipt" and f["kind"] == "delivered"]
    assert delivered == sorted(delivered) and delivered[-1] == 5
    assert len(delivered) <= 5  # batched: never more than one per message
    focus = [f["room"] for f in sent if f.get("type") == "focus"]
    assert focus[-2:] == [room, None]  # the room when shown, nothing when back at the list
    a_ctx.close()


@client_only
def test_notification_bell_updates_live_and_across_tabs(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    context = browser.new_context()
    tab1 = sign_in(watch, context, base, bob)
    tab2 = sign_in(watch, context, base, bob)
    for tab in (tab1, tab2):
        tab.wait_for_selector("#bell-count", state="hidden")
    status, _ = send_over_rest(base, room, "ring <b>the</b> bell", alice["token"])
    assert status == 201
    for tab in (tab1, tab2):  # live, with no reload
        try:
            tab.wait_for_selector("#bell-count:text-is('1')")
        except Exception:
            state = tab.evaluate(
                """() => ({count: document.getElementById('bell-count').textContent,
                           hidden: document.getElementById('bell-count').hidden,
                           notes: [...window.linkup.notes.values()],
                           notifier: window.linkup.notifier.state})"""
            )
            raise AssertionError(f"bell not rung: {state}") from None
    tab1.click("#bell")
    tab1.wait_for_selector("#notification-list li, #notifications li[data-read=false]")
    item = tab1.eval_on_selector(
        "#notifications li",
        "e => [e.querySelector('.n-title').textContent, e.querySelector('.n-body').textContent]",
    )
    assert item == [alice["name"], "ring <b>the</b> bell"]  # text, never markup
    shot(tab1, "notifications-bell")
    tab1.click("#notifications li")
    tab1.wait_for_function(
        "name => document.getElementById('room-title').textContent === name", arg=alice["name"]
    )
    for tab in (tab1, tab2):  # read in one tab: read in every tab
        tab.wait_for_selector("#bell-count", state="hidden")
    # A page loaded later shows it from the store, read.
    tab3 = sign_in(watch, context, base, bob)
    tab3.click("#bell")
    tab3.wait_for_selector("#notifications li[data-read=true]")
    status, listed = api(base, "GET", "/notifications", token=bob["token"])
    assert status == 200 and [n["read"] for n in listed["notifications"]] == [True]
    # Muted from the conversation's header: the room rings no bell any more.
    tab1.click("#mute")
    tab1.wait_for_selector("#mute[aria-pressed=true]:text-is('Unmute')")
    tab1.evaluate("document.getElementById('back').click()")
    status, _ = send_over_rest(base, room, "muted now", alice["token"])
    assert status == 201
    tab3.wait_for_function(
        "() => [...document.querySelectorAll('#messages .msg, #rooms .room-last')]"
        ".some(e => e.textContent.includes('muted now'))"
    )
    assert tab1.is_hidden("#bell-count") and tab3.is_hidden("#bell-count")
    status, listed = api(base, "GET", "/notifications", token=bob["token"])
    assert [n["body"] for n in listed["notifications"]] == ["ring <b>the</b> bell"]
    context.close()


@client_only
def test_web_push_subscribes_through_the_service_worker(browser: Any, watch: Watch):
    """With VAPID keys set, the bell's panel offers Web Push: the service worker registers
    and the browser subscribes (or, where the browser has no push service, as in a headless
    Chromium without one, says so plainly); either way no script error."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    key = ec.generate_private_key(ec.SECP256R1())
    env = {
        "LINKUP_VAPID_PRIVATE_KEY": b64(key.private_numbers().private_value.to_bytes(32, "big")),
        "LINKUP_VAPID_PUBLIC_KEY": b64(
            key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        ),
        "LINKUP_CLIENT_PUSH_WAIT_S": "3",
    }
    with live_server(env) as srv:
        base = srv["base"]
        user = new_user(base, "pushy")
        status, key_answer = api(base, "GET", "/push/key", token=user["token"])
        assert status == 200 and key_answer["public_key"] == env["LINKUP_VAPID_PUBLIC_KEY"]
        # A profile on disk: Chromium has no Push API in its incognito-like contexts.
        import tempfile

        context = browser.browser_type.launch_persistent_context(
            tempfile.mkdtemp(prefix="linkup-push-"),
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        context.grant_permissions(["notifications"], origin=base)
        page = sign_in(watch, context, base, user)
        page.click("#bell")
        page.click("#push-enable")
        page.wait_for_function(
            "() => !document.getElementById('push-status').textContent.startsWith('Asking')",
        )
        outcome = page.text_content("#push-status") or ""
        scopes = page.evaluate(
            "async () => (await navigator.serviceWorker.getRegistrations()).map(r => r.scope)"
        )
        assert scopes == [base + "/"]  # the app's one worker: offline shell and push
        assert outcome.startswith("Done") or outcome.startswith(
            "Push notifications are not available: "
        ), outcome
        print(f"Web Push in this Chromium: {outcome}")
        context.close()
