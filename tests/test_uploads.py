"""Attachments (issue 18): upload, then send; what is stored (typed by content, images
without EXIF, upright, with size and placeholder; thumbnails by the task worker); serving to
members only with ranges and safe headers; limits; hostile files; the lifecycle (unsent
uploads expire, deleted and purged messages take their files, orphans are found).

The storage is a folder of the test's own on the embedded default, and a bucket of moto's
S3 server on loopback in the PostgreSQL + Redis pass (the `storage` fixture);
tests/test_uploads_s3.py adds what only S3 does (signed redirects, two processes)."""

from __future__ import annotations

import datetime as dt
import io
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from linkup.actions.changes import do_delete_message
from linkup.actions.messages import do_purge_history
from linkup.actions.rooms import do_create_room
from linkup.actions.uploads import orphans
from linkup.core import media
from linkup.core.errors import InvalidInput
from linkup.models import Message, Upload
from linkup.store import files
from tests.conftest import SCALEOUT, new_bucket, s3_storage, token_for
from tests.test_api import API, Api, assert_error
from tests.wsutil import connect, db, recv, recv_type
from tests.wsutil import send as send_frame

pytestmark = pytest.mark.django_db(transaction=True)


# -- files to upload ------------------------------------------------------------------------


def image(fmt: str = "PNG", size: tuple[int, int] = (40, 30), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt, **save)
    return out.getvalue()


def photo_with_gps(orientation: int = 1) -> bytes:
    """A JPEG as a phone takes it: EXIF with GPS, a camera model and an orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "LinkupCam"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
    }
    return image("JPEG", (60, 20), exif=exif.tobytes())


PDF = image("PDF")


def upload(api: Api, data: bytes, name: str = "file.bin") -> Any:
    """POST one file (the test client labels the part by its name's extension: a label the
    server ignores)."""
    part = io.BytesIO(data)
    part.name = name
    return api.client.post(API + "/uploads", {"file": part}, **api.headers)


def uploaded(api: Api, data: bytes, name: str = "file.bin") -> dict[str, Any]:
    response = upload(api, data, name)
    assert response.status_code == 201, response.content
    return dict(response.json()["upload"])


def stored_files() -> list[str]:
    return sorted(files.stored_names())


@pytest.fixture(autouse=True)
def storage(settings: Any, tmp_path: Any, request: Any) -> str:
    """Each test's files in a storage of its own: a folder on the embedded default; in the
    PostgreSQL + Redis pass a bucket of moto's S3 server, as a deployment of several
    processes keeps them. Returns "disk" or "s3"."""
    if SCALEOUT:
        endpoint = request.getfixturevalue("s3_endpoint")
        default = s3_storage(endpoint, new_bucket(endpoint))
    else:
        default = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        }
    settings.STORAGES = {**settings.STORAGES, "default": default}
    return "s3" if SCALEOUT else "disk"


def fetch(api: Api, path: str, byte_range: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET an attachment as a browser would: streamed by Linkup, or (S3) the signed URL it
    redirects to, asked with the same Range. (status, headers in lower case, body)."""
    extra = {"HTTP_RANGE": byte_range} if byte_range else {}
    response = api.client.get(API + path, **api.headers, **extra)
    if response.status_code != 302:
        headers = {k.lower(): v for k, v in response.items()}
        body = content(response) if response.streaming else response.content
        return response.status_code, headers, body
    request = urllib.request.Request(response["Location"])
    if byte_range:
        request.add_header("Range", byte_range)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            headers = {k.lower(): v for k, v in answer.headers.items()}
            return answer.status, headers, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture
def room(alice: Any, bob: Any) -> int:
    created, _ = do_create_room(alice, "direct", [bob.pk])
    return int(created["id"])


def send(api: Api, room: int, attachments: list[str], body: str = "", **more: Any) -> Any:
    payload = {"client_id": str(uuid.uuid4()), "body": body, "attachments": attachments, **more}
    return api.post(f"/rooms/{room}/messages", payload)


def content(response: Any) -> bytes:
    """A streamed answer's bytes (Linkup streams files asynchronously)."""

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    try:
        return async_to_sync(read)()
    finally:
        response.close()


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)


# -- what a file is ---------------------------------------------------------------------------


def test_the_type_comes_from_the_content_never_the_name(alice: Any) -> None:
    api = Api(alice)
    png = uploaded(api, image(), "report.pdf")
    assert (png["kind"], png["content_type"], png["name"]) == ("image", "image/png", "report.pdf")
    pdf = uploaded(api, PDF, "holiday.png")
    assert (pdf["kind"], pdf["content_type"]) == ("file", "application/pdf")
    text = uploaded(api, "naïve café notes\n".encode(), "notes.exe")
    assert (text["kind"], text["content_type"]) == ("file", "text/plain")
    assert uuid.UUID(png["id"]) and png["size"] > 0


def test_an_image_is_stored_upright_without_exif_with_its_size_and_placeholder(
    alice: Any,
) -> None:
    original = photo_with_gps(orientation=6)  # "rotate 90°": the pixels lie on their side
    assert b"LinkupCam" in original
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    sent = uploaded(Api(alice), original, "IMG_0001.jpg")
    row = Upload.objects.get(pk=sent["id"])
    with files.open_file(row.file) as stored:
        data = stored.read()
    kept = Image.open(io.BytesIO(data))
    assert kept.format == "JPEG"
    assert not kept.getexif(), dict(kept.getexif())  # no EXIF at all: no GPS, no camera
    assert b"LinkupCam" not in data
    assert (kept.width, kept.height) == (20, 60)  # turned upright
    assert (row.width, row.height) == (20, 60) and row.size == len(data)
    assert row.placeholder.startswith("data:image/webp;base64,")
    assert len(row.placeholder) < 400


@pytest.mark.parametrize(
    ("name", "data", "detail"),
    [
        ("empty.txt", b"", "empty"),
        ("page.html", image()[:16] + b"<html><script>alert(1)</script></html>", "image"),
        ("tool.exe", b"MZ" + b"\x90" * 300, "not accepted"),
        ("blob.bin", bytes(range(256)) * 4, "not accepted"),
    ],
    ids=["zero-bytes", "png-header-on-html", "executable", "binary-unknown"],
)
def test_hostile_files_are_refused_and_nothing_is_stored(
    alice: Any, name: str, data: bytes, detail: str
) -> None:
    response = upload(Api(alice), data, name)
    body = assert_error(response, 400, "invalid_request")["error"]
    assert detail in body["detail"], body
    assert not Upload.objects.exists() and stored_files() == []


def test_a_polyglot_keeps_its_pixels_and_loses_its_passenger(alice: Any) -> None:
    """A valid PNG that also carries an HTML page (in a text chunk) and trailing bytes after
    its end: stored as pixels only."""
    from PIL.PngImagePlugin import PngInfo

    page = b"<html><script>alert(document.cookie)</script></html>"
    info = PngInfo()
    info.add_text("Comment", page.decode())
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (9, 9, 9)).save(out, "PNG", pnginfo=info)
    polyglot = out.getvalue() + page
    assert page in polyglot and Image.open(io.BytesIO(polyglot)).text["Comment"]
    sent = uploaded(Api(alice), polyglot, "cat.png")
    assert (sent["kind"], sent["content_type"]) == ("image", "image/png")
    with files.open_file(Upload.objects.get(pk=sent["id"]).file) as stored:
        data = stored.read()
    assert b"script" not in data and b"html" not in data
    kept = Image.open(io.BytesIO(data))
    assert kept.size == (20, 20) and not getattr(kept, "text", {})


def test_a_decompression_bomb_is_refused_before_it_is_decoded(alice: Any, settings: Any) -> None:
    # 10,000 x 10,000 pixels of one colour: a few kilobytes on the wire, 300 MB decoded.
    bomb = image("PNG", (10_000, 10_000))
    assert len(bomb) < 400_000
    response = upload(Api(alice), bomb, "bomb.png")
    assert "pixels" in assert_error(response, 400, "invalid_request")["error"]["detail"]
    assert not Upload.objects.exists() and stored_files() == []


def test_a_path_in_the_name_is_only_shown_never_used(alice: Any) -> None:
    sent = uploaded(Api(alice), b"secret plans\n", "../../etc/\u202epasswd")
    row = Upload.objects.get(pk=sent["id"])
    assert sent["name"] == "passwd"
    assert row.file == files.name_for(row.id) and ".." not in row.file


def test_a_body_cut_off_mid_upload_is_refused(alice: Any) -> None:
    boundary = "linkupboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nhello, th"
    ).encode()
    response = Client().generic(
        "POST",
        API + "/uploads",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}",
    )
    assert response.status_code == 400, response.content
    assert not Upload.objects.exists() and stored_files() == []


# -- limits ----------------------------------------------------------------------------------


def test_too_large_is_413_by_its_length_before_anything_is_read(alice: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "UPLOAD_MAX_BYTES": 1000}
    response = upload(Api(alice), b"x" * 100_000, "big.txt")
    assert_error(response, 413, "too_large")
    assert not Upload.objects.exists() and stored_files() == []
    # Just under the limit (the multipart framing is not the file's): stored.
    assert upload(Api(alice), b"y" * 1000, "fits.txt").status_code == 201


def test_an_upload_without_a_length_is_411(alice: Any) -> None:
    response = Client().generic(
        "POST",
        API + "/uploads",
        b"",
        content_type="multipart/form-data; boundary=x",
        HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}",
        CONTENT_LENGTH="",
    )
    assert_error(response, 411, "length_required")


def test_the_quota_counts_every_file_of_a_user(alice: Any, bob: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "UPLOAD_QUOTA_BYTES": 2500}
    uploaded(Api(alice), b"a" * 1200, "1.txt")
    uploaded(Api(alice), b"b" * 1200, "2.txt")
    assert (
        "quota"
        in assert_error(upload(Api(alice), b"c" * 200, "3.txt"), 413, "too_large")["error"][
            "detail"
        ]
    )
    uploaded(Api(bob), b"d" * 1200, "mine.txt")  # a quota is per user


def test_uploads_spend_a_budget_of_their_own(alice: Any, settings: Any) -> None:
    settings.LINKUP = {**settings.LINKUP, "UPLOAD_BURST": 2, "UPLOAD_RATE_PER_S": 0.01}
    api = Api(alice)
    uploaded(api, b"one\n")
    uploaded(api, b"two\n")
    refused = upload(api, b"three\n")
    assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert Upload.objects.count() == 2


def test_storage_down_is_503_and_nothing_is_half_written(alice: Any, monkeypatch: Any) -> None:
    # The disk's OSError here; botocore's errors on S3 go the same way (files.save).
    store = files.storage()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(type(store), "save", broken)
    response = upload(Api(alice), image(), "a.png")
    assert_error(response, 503, "unavailable")
    assert int(response["Retry-After"]) >= 1
    assert not Upload.objects.exists()


# -- sending ---------------------------------------------------------------------------------


def test_a_send_carries_its_uploads_once_in_order(alice: Any, bob: Any, room: int) -> None:
    api = Api(alice)
    png = uploaded(api, image(), "a.png")
    pdf = uploaded(api, PDF, "b.pdf")
    payload = {"client_id": "c-1", "body": "", "attachments": [png["id"], pdf["id"]]}
    first = api.post(f"/rooms/{room}/messages", payload)
    assert first.status_code == 201, first.content
    message = first.json()
    assert message["body"] == ""
    assert [a["id"] for a in message["attachments"]] == [png["id"], pdf["id"]]
    photo, doc = message["attachments"]
    assert photo["url"] == f"{API}/attachments/{png['id']}"
    assert (photo["width"], photo["height"], photo["kind"]) == (40, 30, "image")
    assert photo["placeholder"].startswith("data:image/webp;base64,")
    assert doc == {
        "id": pdf["id"],
        "name": "b.pdf",
        "size": pdf["size"],
        "content_type": "application/pdf",
        "kind": "file",
        "url": f"{API}/attachments/{pdf['id']}",
    }
    # The same client_id again: the same message, nothing attached twice.
    again = api.post(f"/rooms/{room}/messages", payload)
    assert again.status_code == 200 and again.json() == message
    assert Message.objects.get().attachment_count == 2
    # History and Bob's view carry them too.
    (held,) = Api(bob).get(f"/rooms/{room}/messages").json()["messages"]
    assert held["attachments"] == message["attachments"]


def test_a_send_names_only_its_sender_s_unsent_uploads(
    alice: Any, bob: Any, room: int, settings: Any
) -> None:
    mine = uploaded(Api(alice), b"mine\n")
    theirs = uploaded(Api(bob), b"theirs\n")
    assert_error(send(Api(alice), room, [theirs["id"]]), 400, "invalid_request")
    assert_error(send(Api(alice), room, ["not-an-id"]), 400, "invalid_request")
    assert_error(send(Api(alice), room, [mine["id"], mine["id"]]), 400, "invalid_request")
    assert_error(send(Api(alice), room, []), 400, "invalid_request")  # no body, no files
    assert send(Api(alice), room, [mine["id"]]).status_code == 201
    assert_error(send(Api(alice), room, [mine["id"]]), 400, "invalid_request")  # used
    settings.LINKUP = {**settings.LINKUP, "ATTACHMENTS_PER_MESSAGE_MAX": 2}
    many = [uploaded(Api(alice), f"{n}\n".encode())["id"] for n in range(3)]
    assert_error(send(Api(alice), room, many), 400, "invalid_request")
    assert Message.objects.count() == 1


async def next_of(comm: Any, kind: str) -> dict[str, Any]:
    """The next frame of `kind` (the sender's socket also gets its own message.new)."""
    while (frame := await recv(comm))["type"] != kind:
        pass
    return frame


async def test_a_socket_send_carries_attachments_and_members_see_them(alice: Any, bob: Any) -> None:
    room, _ = await db(do_create_room)(alice, "direct", [bob.pk])
    up = await db(lambda: uploaded(Api(alice), b"voice?\n", "note.txt"))()
    a = await connect(await db(token_for)(alice))
    b = await connect(await db(token_for)(bob))
    frame = {"type": "message.send", "room": room["id"], "client_id": "s1"}
    await send_frame(a, {**frame, "attachments": [up["id"]]})
    ack = await next_of(a, "message.ack")
    new = await recv_type(b, "message.new")
    assert ack["message"]["attachments"] == new["message"]["attachments"]
    assert new["message"]["attachments"][0]["name"] == "note.txt"
    await send_frame(a, {**frame, "client_id": "s2", "attachments": ["nope"]})
    error = await next_of(a, "error")
    assert (error["code"], error["ref"]) == ("invalid_frame", "s2")
    await a.disconnect()
    await b.disconnect()


# -- serving ---------------------------------------------------------------------------------


def test_members_fetch_with_ranges_and_safe_headers_others_get_404(
    alice: Any, bob: Any, carol: Any, room: int, storage: str
) -> None:
    api = Api(alice)
    text = "x" * 100 + "the end\n"
    note = uploaded(api, text.encode(), "n.txt")
    pic = uploaded(api, image(), "p.png")
    # Before it is sent: its uploader only.
    assert fetch(api, f"/attachments/{note['id']}")[2] == text.encode()
    assert_error(Api(bob).get(f"/attachments/{note['id']}"), 404, "not_found")
    message = send(api, room, [note["id"], pic["id"]], "see").json()
    url = message["attachments"][0]["url"].removeprefix(API)
    status, got, body = fetch(Api(bob), url)
    assert status == 200 and body == text.encode()
    assert got["content-type"] == (
        "text/plain; charset=utf-8" if storage == "disk" else "text/plain"
    )
    assert got["content-disposition"].startswith('attachment; filename="n.txt"')
    assert got["content-length"] == str(len(text))
    if storage == "disk":  # Linkup's own answer (on S3 the bucket's origin answers)
        assert got["x-content-type-options"] == "nosniff"
        assert "sandbox" in got["content-security-policy"]
        assert got["accept-ranges"] == "bytes"
    _, shown, _ = fetch(Api(bob), f"/attachments/{pic['id']}")
    assert (
        shown["content-disposition"].startswith("inline") and shown["content-type"] == "image/png"
    )
    status, part, body = fetch(Api(bob), url, "bytes=100-102")
    assert status == 206 and body == b"the"
    assert part["content-range"] == f"bytes 100-102/{len(text)}"
    status, _, body = fetch(Api(bob), url, "bytes=-4")
    assert status == 206 and body == b"end\n"
    status, refused, _ = fetch(Api(bob), url, "bytes=999-")
    assert status == 416
    if storage == "disk":
        assert refused["content-range"] == f"bytes */{len(text)}", refused
    # Carol is no member, nobody is signed in, or the id is made up: the same 404.
    outsider = Api(carol).get(url)
    anonymous = Api().get(url)
    missing = Api(bob).get(f"/attachments/{uuid.uuid4()}")
    for answer in (outsider, anonymous, missing):
        assert_error(answer, 404, "not_found")
    assert outsider.content == anonymous.content == missing.content


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 300), first=st.integers(0, 400), last=st.integers(0, 400))
def test_a_byte_range_is_exactly_the_slice_asked_for(size: int, first: int, last: int) -> None:
    data = bytes(i % 251 for i in range(size))
    for header in (f"bytes={first}-{last}", f"bytes={first}-", f"bytes=-{last}"):
        got = media.byte_range(header, size)
        if header.startswith("bytes=-"):
            expected = data[-last:] if last else b""
            if last == 0 or size == 0:
                assert got is False
                continue
        else:
            end = size - 1 if header.endswith("-") else min(last, size - 1)
            if first >= size:
                assert got is False
                continue
            if end < first:
                assert got is None  # ignored: the whole file
                continue
            expected = data[first : end + 1]
        assert got not in (None, False)
        assert isinstance(got, tuple)
        assert data[got[0] : got[1] + 1] == expected, (header, got)


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=400))
def test_a_shown_name_is_never_a_path_nor_hides_its_extension(name: str) -> None:
    shown = media.clean_name(name)
    assert shown and len(shown) <= 255
    assert "/" not in shown and "\\" not in shown and not shown.startswith(".")
    assert not any(ord(c) < 32 or c in "\u202e\u200f\u2066" for c in shown)
    assert media.clean_name(shown) == shown  # cleaning is stable


# -- the task worker and the lifecycle ---------------------------------------------------------


def test_the_worker_makes_a_thumbnail_that_messages_then_link(
    alice: Any, room: int, storage: str
) -> None:
    big = uploaded(Api(alice), image("JPEG", (1200, 900)), "wide.jpg")
    message = send(Api(alice), room, [big["id"]]).json()
    early = message["attachments"][0]["thumbnail_url"].removeprefix(API)
    # Before the worker: the image itself stands in, not to be cached.
    status, headers, data = fetch(Api(alice), early)
    assert status == 200 and Image.open(io.BytesIO(data)).size == (1200, 900)
    if storage == "disk":
        assert headers["cache-control"] == "private, no-store"
    run_worker()
    (held,) = Api(alice).get(f"/rooms/{room}/messages").json()["messages"]
    thumb_url = held["attachments"][0]["thumbnail_url"]
    assert thumb_url == f"{API}/attachments/{big['id']}/thumbnail"
    status, _, data = fetch(Api(alice), thumb_url.removeprefix(API))
    assert status == 200
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG" and max(thumb.size) == 320 and thumb.size == (320, 240)


def test_an_upload_nobody_sent_is_deleted_after_a_day(alice: Any, room: int) -> None:
    old = timezone.now() - dt.timedelta(days=2)
    api = Api(alice)
    kept = uploaded(api, b"sent\n")
    send(api, room, [kept["id"]])
    stale = uploaded(api, b"forgotten\n")
    fresh = uploaded(api, b"just now\n")
    Upload.objects.filter(pk__in=[kept["id"], stale["id"]]).update(created_at=old)
    # The expiry tasks were due a day after each upload: make the stale ones due now.
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.update(run_after=timezone.now())
    run_worker()
    assert set(Upload.objects.values_list("pk", flat=True)) == {
        uuid.UUID(kept["id"]),
        uuid.UUID(fresh["id"]),
    }
    assert len(stored_files()) == 2


def test_deleting_for_everyone_and_purging_take_the_files(alice: Any, bob: Any, room: int) -> None:
    api = Api(alice)
    first = uploaded(api, image(), "1.png")
    second = uploaded(api, b"two\n", "2.txt")
    m1 = send(api, room, [first["id"]]).json()
    send(api, room, [second["id"]])
    run_worker()  # the thumbnail of the first
    assert len(stored_files()) == 3
    gone = do_delete_message(alice, room, m1["seq"], "everyone")
    assert gone["attachments"] == [] and Message.objects.get(seq=1).attachment_count == 0
    assert_error(Api(bob).get(f"/attachments/{first['id']}"), 404, "not_found")
    assert stored_files() == [files.name_for(uuid.UUID(second["id"]))]
    do_purge_history(timezone.now() + dt.timedelta(seconds=1))
    assert not Upload.objects.exists() and stored_files() == []


def test_orphans_are_reported_and_removed_once_an_hour_old(alice: Any, capsys: Any) -> None:
    kept = uploaded(Api(alice), b"kept\n")
    stray = files.name_for(uuid.uuid4())
    files.save(stray, io.BytesIO(b"a crash left me here"))
    Upload.objects.filter(pk=kept["id"]).update(file=files.name_for(uuid.uuid4()))
    # Just written: maybe an upload whose row is about to commit. Left alone.
    call_command("linkup_attachments", "--orphans", "--delete")
    out = capsys.readouterr().out
    assert "Deleted 0 stored files" in out and "1 uploads whose file is missing" in out
    assert len(stored_files()) == 2
    later = timezone.now() + dt.timedelta(hours=2)
    found = orphans(now=later)
    assert sorted(found["files_without_rows"]) == sorted(stored_files())
    assert stray in found["files_without_rows"] and len(found["rows_without_files"]) == 1
    orphans(delete=True, now=later)
    assert stored_files() == []


def test_a_failed_expiry_is_swept_and_an_early_one_waits(alice: Any) -> None:
    from linkup.tasks.uploads import expire_unsent as expire_one

    early = uploaded(Api(alice), b"just now\n")
    assert expire_one.call(early["id"]) is False  # not due: enqueued again for then
    assert Upload.objects.filter(pk=early["id"]).exists()
    Upload.objects.filter(pk=early["id"]).update(created_at=timezone.now() - dt.timedelta(days=2))
    call_command("linkup_attachments", "--expire")
    assert not Upload.objects.exists() and stored_files() == []


def test_an_animation_of_too_many_frames_is_refused_and_a_short_one_stays_animated(
    alice: Any,
) -> None:
    def gif(frames: int) -> bytes:
        out = io.BytesIO()
        images = [Image.new("RGB", (8, 8), (n % 256, 0, 0)) for n in range(frames)]
        images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=40)
        return out.getvalue()

    response = upload(Api(alice), gif(600), "many.gif")
    assert "frames" in assert_error(response, 400, "invalid_request")["error"]["detail"]
    sent = uploaded(Api(alice), gif(3), "wink.gif")
    with files.open_file(Upload.objects.get(pk=sent["id"]).file) as stored:
        assert Image.open(io.BytesIO(stored.read())).n_frames == 3


def test_a_photo_keeps_its_colour_profile(alice: Any) -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    sent = uploaded(Api(alice), image("JPEG", icc_profile=profile), "wide-gamut.jpg")
    with files.open_file(Upload.objects.get(pk=sent["id"]).file) as stored:
        assert Image.open(io.BytesIO(stored.read())).info.get("icc_profile") == profile


# What a browser's MediaRecorder writes: an EBML header, the "webm" doc type, then tracks.
EBML = bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01\x42\x82\x84webm"


def test_a_recorded_voice_note_is_audio_and_keeps_the_length_its_recorder_measured(
    alice: Any,
) -> None:
    voice = EBML + b"\x00" * 40 + b"\x86\x86A_OPUS" + b"\x00" * 300
    film = EBML + b"\x00" * 40 + b"\x86\x85V_VP8" + b"\x86\x86A_OPUS" + b"\x00" * 300
    assert media.sniff(voice) == media.Sniffed("audio/webm", "audio")
    assert media.sniff(film) == media.Sniffed("video/webm", "video")
    part = io.BytesIO(voice)
    part.name = "voice-note.webm"
    api = Api(alice)
    answer = api.client.post(API + "/uploads", {"file": part, "duration_s": "7.25"}, **api.headers)
    assert answer.status_code == 201, answer.content
    row = Upload.objects.get(pk=answer.json()["upload"]["id"])
    assert (row.kind, row.content_type, row.duration_s) == ("audio", "audio/webm", 7.25)
    part = io.BytesIO(voice)
    part.name = "x.webm"
    bad = api.client.post(API + "/uploads", {"file": part, "duration_s": "soon"}, **api.headers)
    assert_error(bad, 400, "invalid_request")


def test_media_rules_refuse_what_is_not_an_image() -> None:
    with pytest.raises(InvalidInput):
        media.picture(b"not an image", "image/png", 10**6)
    with pytest.raises(InvalidInput):
        media.picture(image("GIF"), "image/png", 10**6)  # content and type disagree
    assert media.served_inline("image/png") and media.served_inline("audio/ogg")
    assert not media.served_inline("image/svg+xml") and not media.served_inline("text/html")
