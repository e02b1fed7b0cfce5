"""Search and safety in a real Chromium (issue 19): a search across every chat finds a word
said 200 messages up, its hit shows the word marked, and a click opens the chat at that
message with the history down to it loaded and the word marked there; the chat's own Search
button narrows the box to it; and a person whose chat partner deleted their account sees
"Deleted user".

Same fixtures and rules as tests/test_browser.py (CI=true fails without Chromium)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.live import ROOT, api, send_over_rest
from tests.test_browser import (
    Watch,
    browser,
    open_room,
    pair,
    seed_messages,
    sign_in,
    watch,
    web,
)
from tests.test_browser_changes import bubble

FIXTURES = (browser, watch, web)  # used by name, as parameters
pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_hit_opens_its_chat_at_the_message_with_the_word_marked(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    status, _ = send_over_rest(
        base, room, "Meet me at the zebra crossing, running late", bob["token"]
    )
    assert status == 201
    seed_messages(web, room, bob["id"], 200)  # the hit is now 200 messages up
    page = sign_in(watch, browser.new_context(), base, alice)
    page.fill("#find", "run")
    hit = page.wait_for_selector("#find-results .hit")
    assert hit.query_selector(".hit-room").text_content() == bob["name"]
    assert [m.text_content() for m in hit.query_selector_all("mark")] == ["running"]
    hit.click()
    # Opened at the hit: the history down to it loaded, the hit marked (and in view).
    page.wait_for_function(
        """() => document.querySelectorAll('#messages .msg').length === 201
                 && document.querySelector('#messages .msg.found mark') !== null"""
    )
    found = page.evaluate(
        """() => { const li = document.querySelector('#messages .msg.found');
                   const r = li.getBoundingClientRect(), s = document.getElementById('scroller')
                       .getBoundingClientRect();
                   return {seq: Number(li.dataset.seq), marks: [...li.querySelectorAll('mark')]
                       .map(m => m.textContent), text: li.querySelector('.body').textContent,
                       visible: r.bottom > s.top && r.top < s.bottom}; }"""
    )
    assert found == {
        "seq": 1,
        "marks": ["running"],
        "text": "Meet me at the zebra crossing, running late",
        "visible": True,
    }
    # Everything between the hit and the newest message is held: nothing skipped.
    seqs = page.eval_on_selector_all("#messages .msg", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == list(range(1, 202))
    # The chat's own Search: the box narrows to it, and says so.
    page.click("#search-room")
    page.wait_for_selector("#find-scope:not([hidden])")
    assert page.text_content("#find-scope-name") == f"In {bob['name']}"
    page.fill("#find", "nowhere-said")
    page.wait_for_function(
        "() => document.getElementById('find-state').textContent === 'No messages found.'"
    )
    page.click("#find-scope-clear")
    assert page.is_hidden("#find-scope")


def test_a_deleted_account_shows_as_deleted_user(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    send_over_rest(base, room, "goodbye", bob["token"])
    status, _ = api(base, "DELETE", "/me", {"password": bob["password"]}, bob["token"])
    assert status == 204
    page = sign_in(watch, browser.new_context(), base, alice)
    open_room(page, "Deleted user")
    page.wait_for_selector("#messages .msg .body:text-is('goodbye')")
    status, _ = api(base, "GET", "/rooms", token=bob["token"])
    assert status == 401  # bob's token ended with him


def server_python(web: dict[str, Any], code: str) -> str:
    """Run Python with the live server's settings and database; its output."""
    setup = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'linkup_server.settings';"
        "django.setup();"
    )
    done = subprocess.run(
        [sys.executable, "-c", setup + code],
        cwd=ROOT,
        env=web["env"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_block_in_a_direct_chat_then_report_a_message_to_the_admins_queue(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    status, _ = send_over_rest(base, room, "you are awful", bob["token"])
    assert status == 201
    page = sign_in(watch, browser.new_context(), base, alice)
    page.on("dialog", lambda dialog: dialog.accept())  # "Block bob?"
    open_room(page, bob["name"])
    page.click("#block")
    page.wait_for_selector("#blocked-bar:not([hidden])")
    assert page.is_hidden("#composer")
    assert page.text_content("#blocked-text") == f"You blocked {bob['name']}."
    status, refused = send_over_rest(base, room, "let me in", bob["token"])
    assert status == 403 and refused["error"]["code"] == "forbidden"
    assert "block" not in refused["error"]["detail"]  # bob is not told why
    page.click("#unblock")
    page.wait_for_selector("#composer:not([hidden])")
    assert page.text_content("#block") == "Block"
    assert send_over_rest(base, room, "sorry", bob["token"])[0] == 201
    # Report bob's message: the menu's Report…, a reason, sent.
    page.hover(bubble(1))
    page.click(f"{bubble(1)} .more")
    page.click(f"{bubble(1)} .menu [data-action='report']")
    page.fill("#report-reason", "insults me")
    page.click("#report-send")
    page.wait_for_function(
        "() => document.getElementById('notice').textContent.startsWith('Reported.')"
    )
    # A moderator (staff with `linkup.moderate` alone) finds it in the admin's queue.
    password = "mod-" + uuid.uuid4().hex
    name = "mod" + uuid.uuid4().hex[:8]
    server_python(
        web,
        "from django.contrib.auth import get_user_model;"
        "from django.contrib.auth.models import Permission;"
        f"u = get_user_model().objects.create_user({name!r}, password={password!r}, is_staff=True);"
        "u.user_permissions.add(Permission.objects.get(codename='moderate'))",
    )
    admin = browser.new_context().new_page()  # the admin's own pages, not the client's
    admin.goto(base + "/admin/login/?next=/admin/linkup/report/")
    admin.fill("#id_username", name)
    admin.fill("#id_password", password)
    admin.click("input[type=submit]")
    admin.wait_for_selector("#result_list")
    assert "insults me" in admin.text_content("#result_list")
    admin.click("#result_list tbody tr th a")
    context = admin.text_content(".field-in_context")
    assert "you are awful" in context and "sorry" in context
    admin.go_back()
    admin.check("#result_list tbody input[name=_selected_action]")
    admin.select_option("select[name=action]", "dismiss_reports")
    admin.click("button[name=index]")
    admin.wait_for_selector("text=1 report(s) dismissed.")
    state = server_python(
        web, "from linkup.models import Report; print(Report.objects.get().state)"
    )
    assert state == "dismissed"
    # And bob himself, from the chat's header.
    page.click("#report-person")
    page.fill("#report-reason", "keeps writing")
    page.click("#report-send")
    page.wait_for_function(
        "() => document.getElementById('notice').textContent.startsWith('Reported.')"
    )
    person = server_python(
        web,
        "from linkup.models import Report;"
        "r = Report.objects.get(seq=None); print(r.reported_user_id, r.reason)",
    )
    assert person == f"{bob['id']} keeps writing"


def test_a_person_deletes_their_account_from_its_page_and_the_other_sees_deleted_user(
    web: dict[str, Any], browser: Any, watch: Watch
) -> None:
    base = web["base"]
    alice, bob, room = pair(base)
    send_over_rest(base, room, "see you", bob["token"])
    page = sign_in(watch, browser.new_context(), base, bob)
    page.click("#account-link")
    page.wait_for_selector("#delete-form")
    page.click("#export")  # a copy of the data first: asked, being prepared
    page.wait_for_selector("#exports li[data-state=pending]")
    page.fill("#delete-password", "not it")
    page.click("#delete-account")
    assert "not your password" in page.text_content("#account-error")
    page.fill("#delete-password", bob["password"])
    page.click("#delete-account")
    page.wait_for_url("**/sign-in/**")
    other = sign_in(watch, browser.new_context(), base, alice)
    open_room(other, "Deleted user")
    other.wait_for_selector("#messages .msg .body:text-is('see you')")
