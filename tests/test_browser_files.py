"""Attachments in a real Chromium: a photo and a PDF sent by one person appear for the other
(the photo as its thumbnail over its placeholder, the full image in the viewer; the PDF as a
card that downloads); an oversize file is refused at once with the reason; an outsider's
fetch of the URL is 404; a message with a file written offline waits in the outbox (its file
in IndexedDB) and is sent once when the network is back; a voice note is recorded (a fake
microphone), sent and played.

Same fixtures and rules as tests/test_browser.py (CI=true fails without Chromium)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.live import ROOT, api, new_user
from tests.test_browser import (  # noqa: F401  (fixtures: browser, web, watch)
    Watch,
    browser,
    in_room,
    pair,
    send,
    shot,
    sign_in,
    wait_bubble,
    watch,
    web,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]


def run_worker(web: dict[str, Any]) -> None:
    """One pass of the task worker (thumbnails), as `make demo` runs it beside the server."""
    command = [sys.executable, "-m", "linkup_server", "manage", "db_worker", "--batch"]
    subprocess.run([*command, "--no-startup-delay"], cwd=ROOT, env=web["env"], check=True)


def photo(path: Path) -> Path:
    image = Image.new("RGB", (1200, 800), (30, 120, 200))
    for x in range(0, 1200, 100):  # stripes, so the thumbnail is no flat colour
        image.paste((240, 200, 40), (x, 0, x + 50, 800))
    image.save(path, "JPEG", quality=85)
    return path


def pdf(path: Path) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (60, 80), (255, 255, 255)).save(out, "PDF")
    path.write_bytes(out.getvalue())
    return path


def last_message_seq(page: Any) -> int:
    return int(page.eval_on_selector_all("#messages .msg[data-seq]", "els => els.length"))


@pytest.mark.embedded_only  # the page's side; the server's is tested on both passes
def test_a_photo_and_a_pdf_reach_the_other_thumbnail_first(
    web: dict[str, Any], browser: Any, watch: Watch, tmp_path: Path
):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    b_ctx, b = in_room(watch, browser, base, bob, alice)

    a.set_input_files(
        "#file-input", [str(photo(tmp_path / "lake.jpg")), str(pdf(tmp_path / "plan.pdf"))]
    )
    a.wait_for_selector("#tray .tray-file >> nth=1")
    assert a.eval_on_selector_all("#tray .file-name", "els => els.map(e => e.textContent)") == [
        "lake.jpg",
        "plan.pdf",
    ]
    a.fill("#composer-input", "the lake, and the plan")
    a.press("#composer-input", "Enter")
    assert a.is_hidden("#tray")
    wait_bubble(b, "the lake, and the plan")
    b.wait_for_selector("#messages .msg .photo img.picture")
    b.wait_for_selector("#messages .msg .file-card .file-name:text-is('plan.pdf')")
    # The photo: its thumbnail in a box of its shape, loaded over its placeholder.
    picture = b.eval_on_selector(
        "#messages .msg .photo img.picture",
        "e => ({src: e.getAttribute('src'), w: e.width, h: e.height})",
    )
    assert picture["src"].endswith("/thumbnail") and (picture["w"], picture["h"]) == (280, 187)
    assert b.eval_on_selector(".photo img.placeholder", "e => e.src").startswith("data:image/webp")
    b.wait_for_function(
        "() => document.querySelector('.photo img.picture').complete"
        " && document.querySelector('.photo img.picture').naturalWidth > 0"
    )
    b.wait_for_selector(".photo.loaded")
    # The worker makes the real thumbnail; a page opened afterwards loads 320 px, not 1200.
    run_worker(web)
    status, held = api(base, "GET", f"/rooms/{room}/messages", token=bob["token"])
    assert status == 200
    thumb_url = held["messages"][0]["attachments"][0]["thumbnail_url"]
    width = b.evaluate(
        """url => new Promise(done => {
            const i = new Image(); i.onload = () => done(i.naturalWidth); i.src = url + '?fresh';
        })""",
        thumb_url,
    )
    assert width == 320
    shot(b, "attachments")
    # The viewer shows the full image.
    b.click("#messages .msg .photo")
    b.wait_for_selector("#viewer[open]")
    b.wait_for_function("() => document.getElementById('viewer-image').naturalWidth === 1200")
    b.keyboard.press("Escape")
    b.wait_for_selector("#viewer", state="hidden")
    # The PDF downloads under its name.
    with b.expect_download() as download:
        b.click("#messages .msg .file-card")
    assert download.value.suggested_filename == "plan.pdf"
    # An outsider, signed in in a browser of her own, gets 404 for the same URLs (her page
    # is not watched: the console reports the 404s this test asks for).
    carol = new_user(base, "carol")
    c_ctx = browser.new_context()
    c = sign_in(Watch(), c_ctx, base, carol)
    urls = [a_["url"] for a_ in held["messages"][0]["attachments"]] + [thumb_url]
    statuses = c.evaluate("urls => Promise.all(urls.map(u => fetch(u).then(r => r.status)))", urls)
    assert statuses == [404, 404, 404]
    for context in (a_ctx, b_ctx, c_ctx):
        context.close()


@pytest.mark.embedded_only
def test_an_oversize_file_is_refused_at_once_with_the_reason(
    web: dict[str, Any], browser: Any, watch: Watch, tmp_path: Path
):
    base = web["base"]
    alice, bob, _ = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    big = tmp_path / "film.mov"
    with big.open("wb") as out:
        out.truncate(26 * 1024 * 1024)  # 26 MB (sparse: instant)
    small = tmp_path / "notes.txt"
    small.write_text("kept\n")
    a.set_input_files("#file-input", [str(big), str(small)])
    a.wait_for_selector("#notice:not([hidden])")
    assert a.text_content("#notice") == "film.mov was not added: it is larger than 25 MB."
    assert a.eval_on_selector_all("#tray .file-name", "els => els.map(e => e.textContent)") == [
        "notes.txt"
    ]
    a_ctx.close()


def test_a_file_written_offline_is_sent_once_back_online(
    web: dict[str, Any], browser: Any, watch: Watch, tmp_path: Path
):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    a_ctx.set_offline(True)
    a.wait_for_selector("#conn[data-state=offline]")
    a.set_input_files("#file-input", [str(pdf(tmp_path / "offline.pdf"))])
    a.fill("#composer-input", "written offline, with a file")
    a.press("#composer-input", "Enter")
    wait_bubble(a, "written offline, with a file", "pending")
    a.wait_for_selector("#messages .msg .upload .file-name:text-is('offline.pdf')")
    # Kept in IndexedDB, beside its outbox entry.
    (queued,) = a.evaluate("window.linkup.outbox.all()")
    assert queued["files"][0]["name"] == "offline.pdf" and queued["uploads"] == []
    kept = a.evaluate(
        """key => new Promise((done, fail) => {
            const open = indexedDB.open('linkup-files');
            open.onsuccess = () => {
                const get = open.result.transaction('files').objectStore('files').get(key);
                get.onsuccess = () => done(get.result ? get.result.file.size : null);
                get.onerror = fail;
            };
        })""",
        f"{alice['id']}:{queued['client_id']}:0",  # the user's own key space
    )
    assert kept == (tmp_path / "offline.pdf").stat().st_size
    a_ctx.set_offline(False)
    a.wait_for_selector("#conn[data-state=online]")
    wait_bubble(a, "written offline, with a file", "sent")
    status, held = api(base, "GET", f"/rooms/{room}/messages", token=alice["token"])
    assert status == 200
    (message,) = held["messages"]
    assert message["client_id"] == queued["client_id"]
    assert [f["name"] for f in message["attachments"]] == ["offline.pdf"]
    assert a.evaluate("window.linkup.outbox.all()") == []
    a.wait_for_selector("#messages .msg .file-card .file-name:text-is('offline.pdf')")
    a_ctx.close()


@pytest.mark.embedded_only
def test_a_voice_note_is_recorded_sent_and_played(web: dict[str, Any], browser: Any, watch: Watch):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx = browser.new_context(permissions=["microphone"])
    a = sign_in(watch, a_ctx, base, alice)
    a.click(f"#rooms button:has(.room-name:text-is('{bob['name']}'))")
    b_ctx, b = in_room(watch, browser, base, bob, alice)
    a.click("#record")
    a.wait_for_selector("#recording:not([hidden])")
    a.wait_for_function("() => document.getElementById('record-time').textContent === '0:01'")
    a.click("#record-send")
    a.wait_for_selector("#recording", state="hidden")
    b.wait_for_selector("#messages .msg .media.audio audio")
    status, held = api(base, "GET", f"/rooms/{room}/messages", token=bob["token"])
    assert status == 200
    (note,) = held["messages"][0]["attachments"]
    assert note["kind"] == "audio" and note["content_type"] == "audio/webm", note
    assert note["name"].startswith("voice-note-") and 0.5 < note["duration_s"] < 10
    assert b.text_content("#messages .msg .media .length") == "0:0" + str(round(note["duration_s"]))
    playable = b.eval_on_selector(
        "#messages .msg audio",
        "a => new Promise(done => { if (a.readyState >= 1) done(true);"
        " a.addEventListener('loadedmetadata', () => done(true));"
        " a.addEventListener('error', () => done(false)); a.load(); })",
    )
    assert playable
    a_ctx.close()
    b_ctx.close()


@pytest.mark.embedded_only
def test_files_dropped_or_pasted_join_the_tray_and_a_queued_one_can_be_cancelled(
    web: dict[str, Any], browser: Any, watch: Watch
):
    base = web["base"]
    alice, bob, room = pair(base)
    a_ctx, a = in_room(watch, browser, base, alice, bob)
    a.evaluate(
        """() => {
            const files = name => { const d = new DataTransfer();
                d.items.add(new File(['some text\\n'], name, {type: 'text/plain'})); return d; };
            const pane = document.getElementById('conversation');
            const dropped = files('dropped.txt');
            for (const type of ['dragover', 'drop']) {
                pane.dispatchEvent(new DragEvent(type,
                    {dataTransfer: dropped, bubbles: true, cancelable: true}));
            }
            document.getElementById('composer-input').dispatchEvent(new ClipboardEvent('paste',
                {clipboardData: files('pasted.txt'), bubbles: true, cancelable: true}));
        }"""
    )
    assert a.eval_on_selector_all("#tray .file-name", "els => els.map(e => e.textContent)") == [
        "dropped.txt",
        "pasted.txt",
    ]
    a.click("#tray .tray-remove >> nth=0")
    assert a.eval_on_selector_all("#tray .file-name", "els => els.map(e => e.textContent)") == [
        "pasted.txt"
    ]
    # Queued while offline, then cancelled: nothing is sent when the network is back.
    a_ctx.set_offline(True)
    a.wait_for_selector("#conn[data-state=offline]")
    a.fill("#composer-input", "never mind")
    a.press("#composer-input", "Enter")
    a.wait_for_selector("#messages .msg .cancel-upload")
    a.click("#messages .msg .cancel-upload")
    a.wait_for_selector("#messages .msg", state="detached")
    assert a.evaluate("window.linkup.outbox.all()") == []
    a_ctx.set_offline(False)
    a.wait_for_selector("#conn[data-state=online]")
    send(a, "only this")
    wait_bubble(a, "only this", "sent")
    status, held = api(base, "GET", f"/rooms/{room}/messages", token=alice["token"])
    assert status == 200 and [m["body"] for m in held["messages"]] == ["only this"]
    a_ctx.close()
