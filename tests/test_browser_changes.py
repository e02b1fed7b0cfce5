"""Messages that change, in a real Chromium: two people in two browsers reply, react, edit
and delete through the message menu (its button, a right-click, the keyboard), each seeing
the other's changes live; then one of them is offline while both change messages, and on
reconnect both pages end with what the server holds (the offline one's changes sent from
its outbox, the other's learnt by the change cursor).

Same fixtures and rules as tests/test_browser.py (CI=true fails without Chromium); the
offline test runs on PostgreSQL + Redis too."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.live import api, send_over_rest
from tests.test_browser import (  # noqa: F401  (fixtures: browser, web, watch)
    Watch,
    browser,
    in_room,
    pair,
    seed_messages,
    send,
    shot,
    wait_bubble,
    watch,
    web,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]

DELETED = "This message was deleted"
DELETED_FOR_ME = "You deleted this message"


# Every bubble as the page draws it: the fields compared with the server's view.
READ_BUBBLES = """() => [...document.querySelectorAll('#messages .msg')].map(e => ({
    seq: e.dataset.seq ? Number(e.dataset.seq) : null,
    body: e.querySelector('.body').textContent,
    edited: e.classList.contains('edited'),
    changing: e.classList.contains('changing'),
    quote: e.querySelector('.quote').hidden ? null : e.querySelector('.quote-text').textContent,
    reactions: [...e.querySelectorAll('.chip')].map(c =>
        [c.dataset.emoji, Number(c.textContent.split(' ').pop()),
         c.getAttribute('aria-pressed') === 'true']),
}))"""


def shown(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate(READ_BUBBLES))


def as_server_says(base: str, room: int, token: str) -> list[dict[str, Any]]:
    """The same fields from the server's history, as this person sees it."""
    status, page = api(base, "GET", f"/rooms/{room}/messages?limit=100", token=token)
    assert status == 200, page
    out = []
    for m in page["messages"]:
        body = {"everyone": DELETED, "me": DELETED_FOR_ME}.get(m["deleted"], m["body"])
        quote = m["reply_to"]
        out.append(
            {
                "seq": m["seq"],
                "body": body,
                "edited": bool(m["edited_at"]) and not m["deleted"],
                "changing": False,
                "quote": None if quote is None else (quote["preview"] or DELETED),
                # (an empty preview of an original that was not deleted is files alone)
                "reactions": [[r["emoji"], r["count"], r["me"]] for r in m["reactions"]],
            }
        )
    return out


def converges(page: Any, base: str, room: int, token: str) -> None:
    """The page ends showing exactly what the server holds for this person."""
    expected = as_server_says(base, room, token)
    try:
        page.wait_for_function(
            f"expected => JSON.stringify(({READ_BUBBLES})()) === JSON.stringify(expected)",
            arg=expected,
        )
    except Exception:
        raise AssertionError(f"page {shown(page)} != server {expected}") from None


def bubble(seq: int) -> str:
    return f"#messages .msg[data-seq='{seq}']"


def menu_action(page: Any, seq: int, action: str) -> None:
    """Open a message's menu with its button and choose an action."""
    page.hover(bubble(seq))
    page.click(f"{bubble(seq)} .more")
    page.click(f"{bubble(seq)} .menu [data-action='{action}']")


def react(page: Any, seq: int, emoji: str) -> None:
    page.hover(bubble(seq))
    page.click(f"{bubble(seq)} .more")
    page.click(f"{bubble(seq)} .menu [data-emoji='{emoji}']")


def chip_is(page: Any, seq: int, emoji: str, count: int, mine: bool) -> None:
    try:
        _chip_is(page, seq, emoji, count, mine)
    except Exception:
        state = page.evaluate(
            "() => ({outbox: window.linkup.outbox.all(),"
            " conn: document.getElementById('conn').dataset.state})"
        )
        raise AssertionError(f"no chip {emoji} {count} {mine}: {shown(page)} {state}") from None


def _chip_is(page: Any, seq: int, emoji: str, count: int, mine: bool) -> None:
    page.wait_for_function(
        """([sel, emoji, count, mine]) => [...document.querySelectorAll(sel + ' .chip')].some(c =>
            c.dataset.emoji === emoji && c.textContent === emoji + ' ' + count &&
            c.getAttribute('aria-pressed') === String(mine))""",
        arg=[bubble(seq), emoji, count, mine],
    )


def body_is(page: Any, seq: int, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel + ' .body');"
        " return e && e.textContent === text; }",
        arg=[bubble(seq), text],
    )


@pytest.mark.embedded_only  # the page's side; the scale-out pass runs the sync test below
def test_reply_react_edit_and_delete_live_between_two_browsers(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    b_ctx, b = in_room(watch, browser, base, bob, alice)

    send(a, "meet at 5")
    wait_bubble(b, "meet at 5")

    # Bob replies from the menu: the quote sits above his composer, then on his message.
    menu_action(b, 1, "reply")
    assert b.is_visible("#composer-context")
    assert b.text_content("#context-title") == f"Replying to {alice['name']}"
    assert b.text_content("#context-text") == "meet at 5"
    send(b, "ok")
    wait_bubble(a, "ok")
    assert b.is_hidden("#composer-context")
    a.wait_for_selector(f"{bubble(2)} .quote:not([hidden]) .quote-text:text-is('meet at 5')")

    # Reactions: Bob's 👍 shows on both sides, pressed on his; Alice adds hers by its chip.
    react(b, 1, "👍")
    chip_is(a, 1, "👍", 1, False)
    chip_is(b, 1, "👍", 1, True)
    a.hover(f"{bubble(1)} .chip")  # who reacted, on hover
    a.wait_for_function(
        "([sel, name]) => document.querySelector(sel + ' .chip').title === name",
        arg=[bubble(1), bob["name"]],
    )
    a.click(f"{bubble(1)} .chip")
    chip_is(a, 1, "👍", 2, True)
    chip_is(b, 1, "👍", 2, True)
    # Bob takes his back by clicking his chip.
    b.click(f"{bubble(1)} .chip")
    chip_is(a, 1, "👍", 1, True)
    chip_is(b, 1, "👍", 1, False)

    # The menu by right-click and by keyboard: Escape closes it and gives focus back.
    a.click(bubble(2), button="right")
    a.wait_for_selector(f"{bubble(2)} .menu")
    a.keyboard.press("Escape")
    a.wait_for_selector(f"{bubble(2)} .menu", state="detached")
    a.focus(f"{bubble(1)} .more")
    a.keyboard.press("Enter")
    a.wait_for_selector(f"{bubble(1)} .menu [data-action='reply']:focus")
    a.keyboard.press("ArrowDown")  # the first emoji
    a.keyboard.press("ArrowDown")  # the second: ❤️
    a.keyboard.press("Enter")
    chip_is(b, 1, "❤️", 1, False)

    # Alice edits her message: "edited" on both sides, Bob's quote follows the new text.
    menu_action(a, 1, "edit")
    assert a.input_value("#composer-input") == "meet at 5"
    assert a.text_content("#context-title") == "Editing message"
    a.fill("#composer-input", "meet at 6")
    a.press("#composer-input", "Enter")
    body_is(b, 1, "meet at 6")
    b.wait_for_selector(f"{bubble(1)}.edited")
    b.wait_for_selector(f"{bubble(2)} .quote-text:text-is('meet at 6')")
    shot(b, "changes-live")

    # A click on the quote shows the original.
    b.click(f"{bubble(2)} .quote")
    b.wait_for_selector(f"{bubble(1)}.flash")

    # Bob deletes his reply for himself: gone on his side only.
    menu_action(b, 2, "delete-me")
    body_is(b, 2, DELETED_FOR_ME)
    # Alice deletes hers for everyone: a tombstone on both sides, the quote emptied.
    menu_action(a, 1, "delete-everyone")
    body_is(a, 1, DELETED)
    body_is(b, 1, DELETED)
    a.wait_for_selector(f"{bubble(2)} .quote-text:text-is('{DELETED}')")
    assert b.is_hidden(f"{bubble(2)} .more")  # nothing more to do with it
    converges(a, base, room, alice["token"])
    converges(b, base, room, bob["token"])
    assert a.evaluate("window.__csp") == [] and b.evaluate("window.__csp") == []
    a_ctx.close()
    b_ctx.close()


def test_changes_made_offline_and_missed_offline_converge_on_reconnect(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    for text in ("one", "two", "three"):
        send_over_rest(base, room, f"alice {text}", alice["token"])
    for text in ("four", "five"):
        send_over_rest(base, room, f"bob {text}", bob["token"])
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    b_ctx, b = in_room(watch, browser, base, bob, alice)
    wait_bubble(b, "bob five")
    react(a, 4, "😂")
    chip_is(b, 4, "😂", 1, False)

    b_ctx.set_offline(True)
    b.wait_for_selector("#conn[data-state=offline]")
    # Bob, offline: his changes show at once (with a clock) and wait in his outbox.
    react(b, 1, "🙏")
    menu_action(b, 5, "edit")
    b.fill("#composer-input", "bob five, fixed")
    b.press("#composer-input", "Enter")
    b.click(f"{bubble(4)} .chip")  # Alice's 😂: Bob adds his
    menu_action(b, 2, "delete-me")
    chip_is(b, 1, "🙏", 1, True)
    body_is(b, 5, "bob five, fixed")
    body_is(b, 2, DELETED_FOR_ME)
    chip_is(b, 4, "😂", 2, True)
    b.wait_for_selector(f"{bubble(5)}.changing.edited")
    queued = b.evaluate("window.linkup.outbox.all()")
    assert [q["kind"] for q in queued] == ["reaction", "edit", "reaction", "delete"], queued
    shot(b, "changes-offline")

    # Alice, meanwhile: an edit, a reaction, a reply and a delete for everyone Bob misses.
    menu_action(a, 3, "edit")
    a.fill("#composer-input", "alice three, edited")
    a.press("#composer-input", "Enter")
    react(a, 5, "❤️")
    menu_action(a, 4, "reply")
    send(a, "a reply to four")
    menu_action(a, 1, "delete-everyone")
    body_is(a, 1, DELETED)
    wait_bubble(a, "a reply to four")
    # Bob's queued reaction to message 1 will meet a deleted message: refused, and said so.

    b_ctx.set_offline(False)
    b.wait_for_selector("#conn[data-state=online]")
    b.wait_for_function("() => window.linkup.outbox.all().length === 0")
    b.wait_for_selector("#notice:not([hidden])")
    assert b.text_content("#notice").startswith("Could not react to the message: ")
    wait_bubble(b, "a reply to four")
    converges(b, base, room, bob["token"])
    converges(a, base, room, alice["token"])
    # What each of Bob's offline changes became on the server, as both see it.
    status, history = api(base, "GET", f"/rooms/{room}/messages?limit=100", token=alice["token"])
    assert status == 200
    by_seq = {m["seq"]: m for m in history["messages"]}
    assert by_seq[1]["deleted"] == "everyone" and by_seq[1]["reactions"] == []
    assert by_seq[2]["deleted"] is None  # Bob deleted it for himself only
    assert by_seq[3]["body"] == "alice three, edited"
    assert [(r["emoji"], r["count"]) for r in by_seq[4]["reactions"]] == [("😂", 2)]
    assert by_seq[5]["body"] == "bob five, fixed"
    assert [(r["emoji"], r["count"]) for r in by_seq[5]["reactions"]] == [("❤️", 1)]
    assert by_seq[6]["reply_to"]["seq"] == 4
    a_ctx.close()
    b_ctx.close()


@pytest.mark.embedded_only
def test_a_quote_of_a_message_far_up_loads_the_history_down_to_it(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    seed_messages(web, room, bob["id"], 120)
    reply = {"client_id": str(uuid.uuid4()), "body": "about the first", "reply_to": 1}
    status, sent = api(base, "POST", f"/rooms/{room}/messages", reply, alice["token"])
    assert status == 201 and sent["reply_to"]["preview"] == "message 1", sent
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    wait_bubble(a, "about the first")
    assert a.query_selector(bubble(1)) is None  # only the newest page is held
    a.click(f"{bubble(121)} .quote")
    a.wait_for_selector(f"{bubble(1)}.flash")
    # The original is on screen, and every message between it and the reply is held.
    top, bottom = a.eval_on_selector(
        "#scroller", "e => [e.getBoundingClientRect().top, e.getBoundingClientRect().bottom]"
    )
    y = a.eval_on_selector(bubble(1), "e => e.getBoundingClientRect().top")
    assert top <= y <= bottom, (top, y, bottom)
    assert [m["seq"] for m in shown(a)] == list(range(1, 122))
    a_ctx.close()
