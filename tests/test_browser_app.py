"""The web client as an app (issue 20), in a real Chromium: alerts from background tabs,
once per message across tabs; opening offline with recent messages; a group managed from
its info panel; a message's info.

Same fixtures and rules as tests/test_browser.py (CI=true fails without Chromium)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live import api, new_user, send_over_rest
from tests.test_browser import (
    Watch,
    browser,
    bubbles,
    open_room,
    pair,
    shot,
    sign_in,
    wait_bubble,
    watch,
    web,
)
from tests.test_browser_client import until

FIXTURES = (browser, watch, web)  # used by name, as parameters
# The page's side: what the server does for it is tested on both configurations by the
# Python tests, so the scale-out pass skips these.
pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.embedded_only]

# Records the page's desktop notifications (and keeps the last, to click it) in place of the
# browser's own, which a headless browser does not show; the permission is the real one.
NOTIFICATION_SPY = """
window.__notes = [];
const Real = window.Notification;
function Spy(title, options = {}) {
  window.__notes.push({title, body: options.body, tag: options.tag});
  Spy.last = this;
  this.close = () => {};
}
Object.defineProperty(Spy, "permission", {get: () => Real.permission});
Spy.requestPermission = (...args) => Real.requestPermission(...args);
window.Notification = Spy;
"""

AWAY = """() => { document.hasFocus = () => false; window.dispatchEvent(new Event('blur')); }"""


def test_a_tab_in_the_background_alerts_once_with_a_count_in_the_title(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    carol = new_user(base, "carol")
    walks = {"kind": "group", "name": "Walks", "members": [alice["id"], carol["id"]]}
    status, group = api(base, "POST", "/rooms", walks, bob["token"])
    assert status == 201, group
    context = browser.new_context()
    context.grant_permissions(["notifications"], origin=base)
    context.add_init_script(NOTIFICATION_SPY)
    tabs = [sign_in(watch, context, base, alice), watch.page(context)]
    tabs[1].goto(base + "/")
    tabs[1].wait_for_selector("#conn[data-state='online']")
    for tab in tabs:
        tab.evaluate(AWAY)  # both tabs in the background
    assert send_over_rest(base, room, "are you there?", bob["token"])[0] == 201
    assert send_over_rest(base, group["id"], "a walk, anyone?", bob["token"])[0] == 201
    assert send_over_rest(base, group["id"], f"@{alice['name']} you?", bob["token"])[0] == 201
    for tab in tabs:
        tab.wait_for_function("() => document.title === '(3) Linkup'")
        assert tab.eval_on_selector("link[rel~=icon]", "l => l.href").startswith(
            "data:image/svg+xml"
        )
    tabs[0].wait_for_timeout(500)  # any second alert would have come by now
    notes = [n for tab in tabs for n in tab.evaluate("window.__notes")]
    # One alert per message across both tabs; the group message without a mention: none.
    assert sorted((n["title"], n["body"]) for n in notes) == [
        (bob["name"], "are you there?"),
        (f"{bob['name']} in Walks", f"@{alice['name']} you?"),
    ], notes
    # A click on the alert brings its conversation up.
    holder = next(tab for tab in tabs if tab.evaluate("window.__notes.length") > 0)
    holder.evaluate("() => window.Notification.last.onclick()")
    holder.wait_for_function("() => document.getElementById('room-title').textContent !== 'Linkup'")
    # While one tab is in front, the others do not alert.
    front = tabs[0]
    front.evaluate(
        "() => { document.hasFocus = () => true; window.dispatchEvent(new Event('focus')); }"
    )
    before = sum(tab.evaluate("window.__notes.length") for tab in tabs)
    assert send_over_rest(base, room, "still there?", bob["token"])[0] == 201
    for tab in tabs:
        tab.wait_for_function(
            "room => (window.linkup.rooms.get(room).last_message || {}).body === 'still there?'",
            arg=room,
        )
    tabs[1].wait_for_timeout(300)
    assert sum(tab.evaluate("window.__notes.length") for tab in tabs) == before
    context.close()


def test_the_app_opens_offline_with_recent_messages_and_sends_when_back(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    for i in range(3):
        assert send_over_rest(base, room, f"kept {i}", bob["token"])[0] == 201
    context = browser.new_context()
    page = sign_in(watch, context, base, alice)
    # The worker is in charge of the page, and the conversations are kept.
    until(page, "async () => (await navigator.serviceWorker.ready).active.state === 'activated'")
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    open_room(page, bob["name"])
    wait_bubble(page, "kept 2")
    until(
        page,
        """async () => (await indexedDB.databases()).some(d => d.name === 'linkup-snapshot')
            && await new Promise(done => { const open = indexedDB.open('linkup-snapshot');
               open.onsuccess = () => { const get = open.result.transaction('snapshots')
                   .objectStore('snapshots').getAll(); get.onsuccess = () => done(
                   get.result.length > 0 && get.result[0].rooms.length > 0
                   && get.result[0].rooms[0].messages.length === 3); };
               open.onerror = () => done(false); })""",
    )
    context.set_offline(True)
    page.reload()  # from the worker's copy
    page.wait_for_selector("#conn[data-state='offline']")
    open_room(page, bob["name"])
    wait_bubble(page, "kept 2")
    assert [b["body"] for b in bubbles(page)] == ["kept 0", "kept 1", "kept 2"]
    shot(page, "offline")
    # The outbox works as ever: written offline, sent once back.
    page.fill("#composer-input", "written offline")
    page.press("#composer-input", "Enter")
    wait_bubble(page, "written offline", "pending")
    context.set_offline(False)
    wait_bubble(page, "written offline", "sent")
    status, history = api(base, "GET", f"/rooms/{room}/messages", token=bob["token"])
    assert status == 200 and history["messages"][-1]["body"] == "written offline"
    # Signing out forgets what was kept of this person: the chat page, the conversations
    # (static files may be kept again by the sign-in page).
    page.click("#sign-out")
    page.wait_for_url("**/sign-in/**")
    until(page, "async () => !(await caches.match('/'))")
    assert (
        page.evaluate(
            """() => new Promise(done => { const open = indexedDB.open('linkup-snapshot');
               open.onsuccess = () => { const get = open.result.transaction('snapshots')
                   .objectStore('snapshots').getAll(); get.onsuccess = () => done(
                   get.result.length); }; })"""
        )
        == 0
    )
    context.close()


def test_a_group_is_managed_from_its_info_panel_and_a_member_leaves(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, carol = new_user(base, "alice"), new_user(base, "bob"), new_user(base, "carol")
    walks = {"kind": "group", "name": "Walks", "members": [bob["id"], carol["id"]]}
    status, group = api(base, "POST", "/rooms", walks, alice["token"])
    assert status == 201, group
    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    a, b = sign_in(watch, a_ctx, base, alice), sign_in(watch, b_ctx, base, bob)
    for page in (a, b):
        page.on("dialog", lambda dialog: dialog.accept())  # the confirmations
        open_room(page, "Walks")
    # bob is a member: the panel shows, but offers him nothing to change.
    b.click("#room-info")
    assert b.is_visible("#info-leave") and not b.is_visible("#info-save")
    assert b.eval_on_selector("#info-name", "e => e.readOnly") is True
    assert b.query_selector_all("#info-members button[data-action]") == []
    b.click("#info-close")
    # alice, the owner: renames and describes it; bob's header follows.
    a.click("#room-info")
    listed = a.eval_on_selector_all(
        "#info-members .member",
        "els => els.map(e => [e.querySelector('.member-name').textContent,"
        " e.querySelector('.member-role').textContent])",
    )
    assert listed == [["You", "Owner"], [bob["name"], ""], [carol["name"], ""]]
    a.fill("#info-name", "Sunday walks")
    a.fill("#info-description", "Hills, then tea")
    a.click("#info-save")
    b.wait_for_function(
        "() => document.getElementById('room-title').textContent === 'Sunday walks'"
    )
    # bob made an admin: his panel now lets him manage; carol's row offers alice a choice.
    a.click("#room-info")
    a.click(f"#info-members li[data-user='{bob['id']}'] button[data-action='admin']")
    a.wait_for_selector(f"#info-members li[data-user='{bob['id']}'] .member-role:text-is('Admin')")
    assert a.is_visible(f"#info-members li[data-user='{bob['id']}'] button[data-action='member']")
    b.click("#room-info")
    b.wait_for_selector("#info-save:not([hidden])")
    assert b.input_value("#info-description") == "Hills, then tea"
    # bob leaves: the group goes from his list, and alice's panel shows two members.
    b.click("#info-leave")
    b.wait_for_function(
        "() => ![...document.querySelectorAll('#rooms .room-name')]"
        ".some(e => e.textContent === 'Sunday walks')"
    )
    a.wait_for_function("() => document.querySelectorAll('#info-members .member').length === 2")
    shot(a, "group-info")
    a.click("#info-close")
    a_ctx.close()
    b_ctx.close()


def test_my_message_s_info_says_who_read_it(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, _ = pair(base)
    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    a, b = sign_in(watch, a_ctx, base, alice), sign_in(watch, b_ctx, base, bob)
    open_room(a, bob["name"])
    open_room(b, alice["name"])
    a.fill("#composer-input", "did you read this?")
    a.press("#composer-input", "Enter")
    wait_bubble(a, "did you read this?", "read")
    a.click("#messages .msg.own .more")
    a.click("[role=menuitem][data-action=info]")
    a.wait_for_selector("#message-info-read li")
    assert a.text_content("#message-info-read li").startswith(f"{bob['name']} · ")
    a_ctx.close()
    b_ctx.close()
