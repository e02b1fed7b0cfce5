"""The web client people keep open all day (issue 20), in a real Chromium: drafts per room;
formatted text, links and mentions (hostile ones inert); the conversation at the bottom,
day separators, the "new messages" line above the first unread and the jump to the latest;
dark colours; the keyboard and the screen reader's line. (tests/test_browser_app.py: alerts,
offline, groups.)

Same fixtures and rules as tests/test_browser.py (CI=true fails without Chromium)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.live import api, new_user, send_over_rest
from tests.test_browser import (
    Watch,
    browser,
    bubbles,
    direct_room,
    open_room,
    pair,
    seed_messages,
    shot,
    sign_in,
    wait_bubble,
    watch,
    web,
)

FIXTURES = (browser, watch, web)  # used by name, as parameters
# The page's side: what the server does for it (away, groups, themes) is tested on both
# configurations by the Python tests, so the scale-out pass skips these.
pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.embedded_only]


def until(page: Any, check: str, timeout_s: float = 20) -> None:
    """Wait until an async check in the page answers true (wait_for_function takes the
    promise an async function returns for a true answer)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(check):
        assert time.monotonic() < deadline, check
        page.wait_for_timeout(100)


def composer(page: Any) -> str:
    return str(page.input_value("#composer-input"))


def test_a_draft_stays_with_its_room_across_switches_and_a_reload(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, carol = new_user(base, "alice"), new_user(base, "bob"), new_user(base, "carol")
    direct_room(base, alice, bob)
    direct_room(base, alice, carol)
    context = browser.new_context()
    page = sign_in(watch, context, base, alice)
    open_room(page, bob["name"])
    page.fill("#composer-input", "half a thought for bob")
    open_room(page, carol["name"])
    assert composer(page) == ""  # nothing carried over: Enter here cannot send bob's words
    page.press("#composer-input", "Enter")
    page.fill("#composer-input", "for carol")
    # The list shows the other room's draft.
    line = page.text_content(f"#rooms button:has(.room-name:text-is('{bob['name']}')) .room-last")
    assert line == "Draft: half a thought for bob"
    page.reload()
    open_room(page, bob["name"])
    assert composer(page) == "half a thought for bob"
    # Editing a sent message borrows the box and gives the draft back.
    page.fill("#composer-input", "sent to bob")
    page.press("#composer-input", "Enter")
    wait_bubble(page, "sent to bob", "sent")
    assert composer(page) == ""
    page.fill("#composer-input", "the next one")
    open_room(page, carol["name"])
    assert composer(page) == "for carol"
    page.press("#composer-input", "Enter")
    wait_bubble(page, "for carol")
    open_room(page, bob["name"])
    assert composer(page) == "the next one"
    page.click("#messages .msg.own .more")
    page.click("[role=menuitem][data-action=edit]")
    assert composer(page) == "sent to bob"
    page.press("#composer-input", "Escape")
    assert composer(page) == "the next one"
    # Nothing went anywhere it was not sent.
    assert [b["body"] for b in bubbles(page)] == ["sent to bob"]
    open_room(page, carol["name"])
    assert [b["body"] for b in bubbles(page)] == ["for carol"]
    page.reload()
    open_room(page, carol["name"])
    assert composer(page) == ""  # sent: its draft is gone
    context.close()


# Formatting that tries to become markup: each must stay text, or become a safe link.
RICH_PAYLOADS = [
    "*<img src=x onerror=window.__xss=8>*",
    'https://ex.com/"onmouseover="window.__xss=9',
    "```<script>window.__xss=10</script>```",
    "_[x](javascript:window.__xss=11)_",
    "www.ex.com/<svg/onload=window.__xss=12>",
    "`<iframe src=javascript:window.__xss=13>`",
    "~<style>body{display:none}</style>~",
]


def test_formatting_links_and_mentions_render_safely(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    bodies = [
        f"*bold* _italic_ ~gone~ `code` and https://example.org/a_b?x=1. Hi @{alice['name']}!",
        *RICH_PAYLOADS,
    ]
    for body in bodies:
        status, answer = send_over_rest(base, room, body, bob["token"])
        assert status == 201, answer
    context = browser.new_context()
    page = sign_in(watch, context, base, alice)
    open_room(page, bob["name"])
    page.wait_for_function(
        f"() => document.querySelectorAll('#messages .msg').length === {len(bodies)}"
    )
    page.wait_for_timeout(300)  # let any onerror/onload that could fire, fire
    first = page.eval_on_selector(
        "#messages .msg .body",
        """b => ({strong: b.querySelector('strong').textContent,
                  em: b.querySelector('em').textContent, del: b.querySelector('del').textContent,
                  code: b.querySelector('code').textContent,
                  link: [b.querySelector('a').textContent, b.querySelector('a').href],
                  mine: b.querySelector('.mention.me').textContent})""",
    )
    assert first == {
        "strong": "bold",
        "em": "italic",
        "del": "gone",
        "code": "code",
        "link": ["https://example.org/a_b?x=1", "https://example.org/a_b?x=1"],
        "mine": f"@{alice['name']}",
    }
    assert page.evaluate("window.__xss") is None
    assert (
        page.evaluate(
            "document.querySelectorAll('#messages script, #messages img, #messages svg,"
            " #messages iframe, #messages style').length"
        )
        == 0
    )
    links = page.eval_on_selector_all(
        "#messages a",
        "els => els.map(a => [a.getAttribute('href'), a.target, a.rel])",
    )
    assert links and all(
        href.startswith(("https://", "http://"))
        and target == "_blank"
        and rel == "noopener noreferrer nofollow"
        for href, target, rel in links
    ), links
    # The text read is the text sent, markers aside.
    texts = [b["body"] for b in bubbles(page)][1:]
    assert texts == [
        "<img src=x onerror=window.__xss=8>",
        'https://ex.com/"onmouseover="window.__xss=9',
        "<script>window.__xss=10</script>",
        "[x](javascript:window.__xss=11)",
        "www.ex.com/<svg/onload=window.__xss=12>",
        "<iframe src=javascript:window.__xss=13>",
        "<style>body{display:none}</style>",
    ]
    assert page.evaluate("window.__csp") == []
    # The @ list: typing "@" and a letter offers the member, Enter puts the name in.
    page.fill("#composer-input", f"ping @{bob['name'][:2]}")
    page.press("#composer-input", "End")  # input and caret as a person leaves them
    page.type("#composer-input", bob["name"][2:3])
    page.wait_for_selector("#mention-list:not([hidden]) .mention-choice")
    page.press("#composer-input", "Enter")
    assert page.input_value("#composer-input") == f"ping @{bob['name']} "
    page.press("#composer-input", "Enter")
    page.wait_for_function(
        """name => [...document.querySelectorAll('#messages .msg.own .body .mention')]
                     .some(m => m.textContent === '@' + name)""",
        arg=bob["name"],
    )
    shot(page, "formatting")
    context.close()


def test_a_room_opens_at_the_first_unread_under_a_new_messages_line(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    carol = new_user(base, "carol")
    other = direct_room(base, alice, carol)
    for i in range(3):
        assert send_over_rest(base, room, f"early {i}", bob["token"])[0] == 201
    assert send_over_rest(base, other, "hello from carol", carol["token"])[0] == 201
    context = browser.new_context()
    page = sign_in(watch, context, base, alice)
    open_room(page, bob["name"])  # reads the three
    page.wait_for_function(f"() => window.linkup.rooms.get({room}).read_seq === 3")
    # A short conversation sits at the bottom of the pane, under today's separator.
    low = page.evaluate(
        """() => { const s = document.getElementById('scroller').getBoundingClientRect();
                   const m = [...document.querySelectorAll('#messages .msg')].pop()
                       .getBoundingClientRect();
                   return s.bottom - m.bottom; }"""
    )
    assert 0 <= low < 40, low
    assert page.text_content("#messages li.day") == "Today"
    open_room(page, carol["name"])
    seed_messages(web, room, bob["id"], 40)  # seqs 4 to 43, while alice is elsewhere
    page.wait_for_function(
        """name => [...document.querySelectorAll('#rooms button')].some(b =>
               b.querySelector('.room-name').textContent === name
               && b.querySelector('.badge').textContent === '40')""",
        arg=bob["name"],
    )
    open_room(page, bob["name"])
    page.wait_for_selector("#messages .unread-divider")
    placed = page.evaluate(
        """() => { const line = document.querySelector('#messages .unread-divider');
                   const s = document.getElementById('scroller').getBoundingClientRect();
                   const r = line.getBoundingClientRect();
                   const next = Number(line.nextElementSibling.dataset.seq);
                   return {text: line.textContent, next,
                           top: r.top - s.top, height: s.height}; }"""
    )
    assert placed["text"] == "40 new messages" and placed["next"] == 4, placed
    assert 0 <= placed["top"] < placed["height"] / 3, placed  # near the top, in view
    # The newest are out of sight: the jump button says how many are still unread.
    page.wait_for_selector("#jump-latest:not([hidden]) #jump-count:not([hidden])")
    unread = int(page.text_content("#jump-count"))
    assert 0 < unread < 40
    shot(page, "unread-divider")
    page.click("#jump-latest")
    page.wait_for_selector("#jump-latest", state="hidden")
    page.wait_for_function(f"() => window.linkup.rooms.get({room}).read_seq === 43")
    context.close()


def test_dark_colours_follow_the_device_and_the_toggle_and_are_kept(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    for body in ("*Dark* mode, with a link: https://example.org", "and `code` 😀"):
        assert send_over_rest(base, room, body, bob["token"])[0] == 201
    background = "() => getComputedStyle(document.querySelector('.sidebar')).backgroundColor"
    # The device asks for dark: dark, with nothing chosen.
    context = browser.new_context(color_scheme="dark")
    page = sign_in(watch, context, base, alice)
    open_room(page, bob["name"])
    assert page.evaluate(background) == "rgb(17, 27, 33)"
    assert page.get_attribute("#theme-toggle", "aria-pressed") == "true"
    shot(page, "dark")
    context.close()
    # A light device; the toggle picks dark, kept by the server across a reload and a
    # new browser.
    context = browser.new_context(color_scheme="light")
    page = sign_in(watch, context, base, alice)
    assert page.evaluate(background) == "rgb(255, 255, 255)"
    page.click("#theme-toggle")
    assert page.evaluate(background) == "rgb(17, 27, 33)"
    until(page, "async () => (await (await fetch('/api/v1/me')).json()).theme === 'dark'")
    page.reload()
    page.wait_for_selector("html[data-theme='dark']")
    assert page.evaluate(background) == "rgb(17, 27, 33)"
    context.close()


def test_keyboard_shortcuts_and_new_messages_told_to_screen_readers(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    carol = new_user(base, "carol")
    direct_room(base, alice, carol)
    assert send_over_rest(base, room, "first from bob", bob["token"])[0] == 201
    context = browser.new_context()
    page = sign_in(watch, context, base, alice)
    page.wait_for_selector("#rooms button")
    order = page.eval_on_selector_all("#rooms .room-name", "els => els.map(e => e.textContent)")
    page.keyboard.press("Alt+ArrowDown")  # nothing open: the first chat
    page.wait_for_function(
        "name => document.getElementById('room-title').textContent === name", arg=order[0]
    )
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_function(
        "name => document.getElementById('room-title').textContent === name", arg=order[1]
    )
    page.keyboard.press("Alt+ArrowUp")
    page.wait_for_function(
        "name => document.getElementById('room-title').textContent === name", arg=order[0]
    )
    open_room(page, bob["name"])
    page.keyboard.press("Alt+r")  # reply to bob's newest
    page.wait_for_selector("#composer-context:not([hidden])")
    assert page.text_content("#context-title") == f"Replying to {bob['name']}"
    page.keyboard.press("Escape")
    page.keyboard.press("Control+k")
    assert page.evaluate("document.activeElement.id") == "find"
    # A new message in the open chat is read out, politely.
    assert send_over_rest(base, room, "*are* you there?", bob["token"])[0] == 201
    page.wait_for_function(
        "text => document.getElementById('announcer').textContent === text",
        arg=f"{bob['name']}: are you there?",
    )
    assert page.get_attribute("#announcer", "aria-live") == "polite"
    context.close()


def picture_png() -> bytes:
    """A picture for a profile: a teal disc on white, wider than tall (the server squares it)."""
    import io

    from PIL import Image, ImageDraw

    out = io.BytesIO()
    image = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(image).ellipse((60, 10, 240, 190), fill=(0, 128, 106))
    image.save(out, "PNG")
    return out.getvalue()


def test_spanish_pages_and_profiles_render(web: dict[str, Any], browser: Any, watch: Watch) -> None:
    base = web["base"]
    ana, ben, direct = pair(base)
    carol = new_user(base, "carol")
    assert (
        api(base, "PATCH", "/me", {"display_name": "Ana Pérez", "about": "Hola"}, ana["token"])[0]
        == 200
    )
    assert api(base, "PATCH", "/me", {"display_name": "Carolina"}, carol["token"])[0] == 200
    members = [ben["id"], carol["id"]]
    new_group = {"kind": "group", "name": "Equipo", "members": members}
    status, group = api(base, "POST", "/rooms", new_group, ana["token"])
    assert status == 201, group
    for room, body, who in (
        (group["id"], "¡Hola a todos! *Mañana* a las 10", ana),
        (group["id"], "Perfecto 👍", carol),
        (direct, "¿Comemos juntos?", ana),
    ):
        assert send_over_rest(base, room, body, who["token"])[0] == 201
    context = browser.new_context(locale="es-ES")  # Accept-Language: es-ES
    answer = context.request.post(
        base + "/api/v1/me/avatar",
        headers={"Authorization": f"Bearer {ana['token']}"},
        multipart={"file": {"name": "ana.png", "mimeType": "image/png", "buffer": picture_png()}},
    )
    assert answer.status == 200, answer.text()
    # Signed out, the page speaks the browser's language.
    page = watch.page(context)
    page.goto(base + "/sign-in/")
    assert page.get_attribute("html", "lang") == "es"
    assert page.text_content("form button[type=submit]").strip() == "Iniciar sesión"
    page = sign_in(watch, context, base, ben)
    assert page.get_attribute("html", "lang") == "es"
    assert page.text_content("#new-group") == "Nuevo grupo"
    assert page.get_attribute("#composer-input", "placeholder") == "Escribe un mensaje"
    # Ana's name and picture in the list: the direct room is named by her display name.
    picture = page.locator("#rooms button:has(.room-name:text-is('Ana Pérez')) img.picture")
    picture.wait_for()
    loaded = "[...document.querySelectorAll('#rooms img.picture')].some(i => i.naturalWidth)"
    until(page, f"() => {loaded}")
    open_room(page, "Equipo")
    page.wait_for_selector("#messages .msg .who:text-is('Carolina')")
    assert page.text_content("#messages .msg .who") == "Ana Pérez"
    assert page.text_content("#messages li.day") == "Hoy"
    # No English left on the page where the client has a Spanish word for it.
    left = page.evaluate(
        """() => {
          const config = JSON.parse(document.getElementById('linkup-config').textContent);
          const text = document.body.innerText;
          return Object.entries(config.catalog)
            .filter(([id, es]) => typeof es === 'string' && es !== id && id.length > 4)
            .filter(([id]) => !id.includes('%(') && text.includes(id))
            .map(([id]) => id);
        }"""
    )
    assert left == []
    shot(page, "spanish")
    # Ana's profile, from the direct chat's title: picture, name, username, about.
    open_room(page, "Ana Pérez")
    page.click("#room-title")
    page.wait_for_selector("#person-dialog[open]")
    page.wait_for_function("() => document.getElementById('person-about').textContent === 'Hola'")
    assert page.text_content("#person-name") == "Ana Pérez"
    assert page.text_content("#person-handle") == f"@{ana['name']}"
    assert page.locator("#person-avatar img.picture").count() == 1
    page.click("#person-close")
    context.close()
